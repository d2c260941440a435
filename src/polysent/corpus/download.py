"""Fetching raw media that survives a flaky server: retries, resume, verification, reports.

The CMU-MOSEAS server is known to time out and return 403/404/5xx for hours at a time
(CMU-MultimodalSDK issues #292, #300, #306, #346), and YouTube videos go private. So:

* transient faults (timeouts, connection resets, truncated bodies, HTTP 5xx/429) are retried
  with exponential backoff and full jitter; the bytes already received are kept in
  ``<file>.part`` and the next attempt asks for the rest with a ``Range`` request (restarting
  from zero when the server ignores ``Range`` or answers with another range);
* the finished file is checked against the expected size (``Content-Length``/``Content-Range``
  or a known size) and SHA-256 when known, then atomically renamed into place, so a file that
  exists is complete;
* permanent faults (404, 403, 410, a private or removed video) are not retried; every failure
  becomes a :class:`Outcome` with a reason, which the corpus source turns into QC records; the
  DAG continues unless fewer than ``min_success_rate`` of the videos arrived;
* request starts are rate-limited and run on a bounded thread pool.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import requests

from polysent.config import complete, schema_defaults
from polysent.errors import data_errors, raise_if_environment
from polysent.filehash import sha256_file
from polysent.io import write_json

log = logging.getLogger("polysent.corpus.download")

PERMANENT_STATUS = {400, 401, 403, 404, 410, 451}
TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


class DownloadFailed(Exception):
    """One fetch failed; ``permanent`` says whether retrying can help."""

    def __init__(self, reason: str, permanent: bool, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after  # seconds the server asked us to wait (Retry-After)


class TooManyFailures(RuntimeError):
    """Fewer media files arrived than ``min_success_rate`` demands."""


@dataclass
class Job:
    """One file to obtain: try ``sources`` in order until one delivers ``dest``."""

    key: str  # the video id
    dest: str
    sources: list[dict]  # {"kind": "local"|"http"|"youtube", "location": ..., extra options}
    size: int | None = None
    sha256: str | None = None


@dataclass
class Outcome:
    key: str
    dest: str
    ok: bool
    source: str = ""  # kind that delivered it
    location: str = ""
    attempts: int = 0
    bytes: int = 0
    seconds: float = 0.0
    reason: str = ""
    permanent: bool = False
    tried: list[str] = field(default_factory=list)
    # (start, end) seconds of the source video that the file holds, when only a span was fetched.
    section: tuple[float, float] | None = None

    def row(self) -> dict:
        d = asdict(self)
        d["tried"] = " | ".join(self.tried)
        d["section_start"], d["section_end"] = self.section if self.section else (None, None)
        del d["section"]
        return d


def sidecar_path(dest: str | os.PathLike) -> Path:
    """Where the provenance of a fetched file is kept (source, location, section)."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".json")


class RateLimiter:
    """At most ``rate`` request starts per second across threads (0 = unlimited)."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate if rate and rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next)
            self._next = at + self.interval
        if at > now:
            time.sleep(at - now)


def backoff_delay(attempt: int, settings: dict, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(max, base * 2**attempt)]."""
    cap = min(float(settings["backoff_max_s"]), float(settings["backoff_base_s"]) * (2**attempt))
    return rng.uniform(0.0, cap)


class TryAgain(Exception):
    """One attempt failed in a way a later attempt may fix (:func:`with_retries` waits and retries)."""

    def __init__(self, reason: str, wait_at_least: float = 0.0):
        super().__init__(reason)
        self.reason = reason
        self.wait_at_least = wait_at_least


T = TypeVar("T")


def with_retries(
    what: str,
    attempt: Callable[[], T],
    settings: dict,
    rng: random.Random,
    sleep: Callable[[float], None],
    limiter: RateLimiter,
) -> tuple[T, int]:
    """``attempt()``'s result and the number of attempts it took: up to ``settings["retries"]``
    retries after :class:`TryAgain`, each after a full-jitter backoff (at least the failure's
    ``wait_at_least``) and a rate-limiter slot. Any other exception ends the retries at once;
    running out raises a transient :class:`DownloadFailed` naming the last failure."""
    retries = int(settings["retries"])
    last, wait_at_least = "no attempt", 0.0
    for n in range(retries + 1):
        if n:
            sleep(max(backoff_delay(n - 1, settings, rng), wait_at_least))
        limiter.wait()
        try:
            return attempt(), n + 1
        except TryAgain as again:
            last, wait_at_least = again.reason, again.wait_at_least
            log.warning("%s: attempt %d/%d failed: %s", what, n + 1, retries + 1, last)
    raise DownloadFailed(f"gave up after {retries + 1} attempts; last error: {last}", permanent=False)


def verify(path: Path, size: int | None, sha256: str | None) -> str | None:
    """Why ``path`` does not match the expected size/hash (None when it does or nothing is known)."""
    have = path.stat().st_size
    if size is not None and have != size:
        return f"size {have} bytes, expected {size}"
    if sha256 and sha256_file(path).lower() != sha256.lower():
        return "SHA-256 mismatch"
    return None


# --------------------------------------------------------------------------- HTTP


def _total_from_headers(resp: requests.Response, offset: int) -> int | None:
    """Total file size from Content-Range (206) or Content-Length (200)."""
    rng = resp.headers.get("Content-Range", "")
    if "/" in rng and not rng.endswith("/*"):
        try:
            return int(rng.rsplit("/", 1)[1])
        except ValueError:
            return None
    length = resp.headers.get("Content-Length")
    if length is not None and length.isdigit():
        return int(length) + offset
    return None


def _range_start(resp: requests.Response) -> int | None:
    rng = resp.headers.get("Content-Range", "")  # "bytes 100-199/200"
    try:
        return int(rng.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def http_attempt(
    session: requests.Session,
    url: str,
    part: Path,
    settings: dict,
    size: int | None,
) -> int | None:
    """One GET that appends to ``part`` (resuming from its length); return the total size if known.

    Raises :class:`DownloadFailed` (transient or permanent). On success ``part`` holds the
    complete body as far as the server told us its length.
    """
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        part.unlink()
        offset = 0
    vfile = _validator_path(part)
    validator = vfile.read_text(encoding="utf-8").strip() if offset and vfile.exists() else ""
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    if validator:
        # If the resource changed since the part was started, the server sends it whole (200).
        headers["If-Range"] = validator
    timeout = (float(settings["connect_timeout_s"]), float(settings["read_timeout_s"]))
    try:
        with session.get(url, headers=headers, stream=True, timeout=timeout) as resp:
            status = resp.status_code
            if status == 416 and offset:
                # Our partial file is already as long as the resource (or longer): check it.
                total = _total_from_headers(resp, 0) if "/" in resp.headers.get("Content-Range", "") else None
                if total is not None and total == offset:
                    return total
                part.unlink()
                raise DownloadFailed("HTTP 416 for a stale partial file; restarting", permanent=False)
            if status in PERMANENT_STATUS:
                raise DownloadFailed(f"HTTP {status} {resp.reason or ''}".strip(), permanent=True)
            if status in TRANSIENT_STATUS or status >= 500:
                raise DownloadFailed(
                    f"HTTP {status} {resp.reason or ''}".strip(), permanent=False, retry_after=_retry_after(resp)
                )
            if status not in (200, 206):
                raise DownloadFailed(f"unexpected HTTP {status}", permanent=True)
            mode = "ab"
            if status == 200 and offset:
                log.info("%s: server sent the whole file (Range ignored or resource changed), restarting", url)
                offset, mode = 0, "wb"
            elif status == 206 and _range_start(resp) != offset:
                part.unlink(missing_ok=True)
                raise DownloadFailed("server answered with another byte range; restarting", False)
            elif status == 206 and validator and _validator(resp) and _validator(resp) != validator:
                part.unlink(missing_ok=True)
                raise DownloadFailed("resource changed during download; restarting", False)
            if offset == 0:
                current = _validator(resp)
                if current:
                    vfile.write_text(current, encoding="utf-8")
                else:
                    vfile.unlink(missing_ok=True)
            total = _total_from_headers(resp, offset)
            received = 0
            with open(part, mode) as fh:
                for chunk in resp.iter_content(chunk_size=int(settings["chunk_bytes"])):
                    fh.write(chunk)
                    received += len(chunk)
            if total is not None and offset + received < total:
                raise DownloadFailed(f"truncated body ({offset + received} of {total} bytes)", permanent=False)
            return total
    except DownloadFailed:
        raise
    except requests.Timeout as err:
        raise DownloadFailed(f"timeout ({type(err).__name__})", permanent=False) from err
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as err:
        raise DownloadFailed(f"connection error ({_short(err)})", permanent=False) from err
    except requests.RequestException as err:
        raise DownloadFailed(f"request failed ({_short(err)})", permanent=False) from err


def _validator_path(part: Path) -> Path:
    return part.with_name(part.name + ".validator")


def _validator(resp: requests.Response) -> str:
    """A strong ETag, else Last-Modified: what If-Range may carry (RFC 9110 §13.1.5)."""
    etag = resp.headers.get("ETag", "")
    if etag and not etag.startswith("W/"):
        return etag
    return resp.headers.get("Last-Modified", "")


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None


def _short(err: Exception) -> str:
    text = str(err)
    for marker in (
        "Connection reset",
        "IncompleteRead",
        "Connection aborted",
        "Read timed out",
        "Connection refused",
        "RemoteDisconnected",
    ):
        if marker in text:
            return marker
    return type(err).__name__


def fetch_http(
    url: str,
    dest: Path,
    settings: dict,
    session: requests.Session | None = None,
    limiter: RateLimiter | None = None,
    size: int | None = None,
    sha256: str | None = None,
    rng: random.Random | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Download ``url`` to ``dest`` with retries and resume; return the number of attempts."""
    session = session or requests.Session()
    limiter = limiter or RateLimiter(0)
    rng = rng or random.Random()
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)

    def attempt() -> None:
        try:
            total = http_attempt(session, url, part, settings, size)
        except DownloadFailed as err:
            if err.permanent:
                part.unlink(missing_ok=True)
                _validator_path(part).unlink(missing_ok=True)
                raise
            # Honour Retry-After, but never beyond the configured longest backoff.
            raise TryAgain(err.reason, min(err.retry_after or 0.0, float(settings["backoff_max_s"]))) from err
        why = verify(part, size if size is not None else total, sha256)
        if why:
            part.unlink(missing_ok=True)  # corrupt beyond what resuming can fix: start over
            raise TryAgain(f"verification failed: {why}")
        os.replace(part, dest)
        _validator_path(part).unlink(missing_ok=True)

    return with_retries(url, attempt, settings, rng, sleep, limiter)[1]


# --------------------------------------------------------------------------- local and YouTube


def fetch_local(path: str, dest: Path, size: int | None = None, sha256: str | None = None) -> int:
    """Link (or copy) a file from a local mirror; missing is a permanent failure of this source."""
    src = Path(path)
    if not src.is_file():
        raise DownloadFailed(f"not in local folder ({path})", permanent=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)  # no copy when the mirror is on the same file system
    except OSError:
        shutil.copyfile(src, tmp)
    why = verify(tmp, size, sha256)
    if why:
        tmp.unlink()
        raise DownloadFailed(f"local file {path}: {why}", permanent=True)
    os.replace(tmp, dest)
    return 1


_YT_PERMANENT = (
    "private video",
    "video unavailable",
    "has been removed",
    "not available",
    "404",
    "sign in to confirm your age",
    "account associated with this video has been terminated",
    "unsupported url",
    "copyright",
)


def fetch_youtube(
    url: str,
    dest: Path,
    options: dict,
    settings: dict,
    section: tuple[float, float] | None = None,
    limiter: RateLimiter | None = None,
    rng: random.Random | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Download with yt-dlp's Python API (optionally only ``section`` = (start, end) seconds).

    ``options``: ``format``, ``force_keyframes_at_cuts`` and ``extra`` (raw YoutubeDL options).
    yt-dlp retries fragments itself; this loop adds whole-download retries with backoff and
    classifies its errors into permanent (private/removed video, 404) and transient.
    """
    import yt_dlp
    from yt_dlp.utils import DownloadError, YoutubeDLError, download_range_func

    options = {**schema_defaults("corpus", "moseas", "media", "youtube"), **options}
    limiter = limiter or RateLimiter(0)
    rng = rng or random.Random()
    dest.parent.mkdir(parents=True, exist_ok=True)
    stem = dest.with_name(f".{dest.stem}.ytdlp")
    ydl_opts = {
        "outtmpl": str(stem) + ".%(ext)s",
        "format": options["format"],
        "merge_output_format": dest.suffix.lstrip(".") or "mp4",
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "noplaylist": True,
        "retries": int(settings["retries"]),
        "socket_timeout": float(settings["read_timeout_s"]),
        "continuedl": True,
        **(options["extra"] or {}),
    }
    if section is not None:
        ydl_opts["download_ranges"] = download_range_func(None, [tuple(map(float, section))])
        ydl_opts["force_keyframes_at_cuts"] = bool(options["force_keyframes_at_cuts"])

    def attempt() -> None:
        try:
            with yt_dlp.YoutubeDL(ydl_opts) as ydl:
                ydl.download([url])
        except DownloadError as err:
            text = str(err)
            if any(m in text.lower() for m in _YT_PERMANENT):
                raise DownloadFailed(f"yt-dlp: {text.removeprefix('ERROR: ')[:300]}", permanent=True) from err
            raise_if_environment(err, text)
            raise TryAgain(f"yt-dlp: {text[:300]}") from err
        except data_errors(YoutubeDLError) as err:  # post-processing (ffmpeg), network: retry
            raise_if_environment(err, str(err))  # a full disk is not fixed by waiting
            raise TryAgain(f"yt-dlp: {type(err).__name__}: {str(err)[:300]}") from err
        # The merged/cut result; format fragments (.f137.mp4) and .part files are leftovers.
        final = Path(str(stem) + dest.suffix)
        produced = (
            [final]
            if final.is_file()
            else sorted(
                p
                for p in stem.parent.glob(stem.name + ".*")
                if not p.name.endswith((".part", ".ytdl")) and not re.search(r"\.f\d+\.", p.name)
            )
        )
        if not produced:
            raise TryAgain("yt-dlp reported success but wrote no file")
        os.replace(produced[-1], dest)
        for left in stem.parent.glob(stem.name + ".*"):
            left.unlink(missing_ok=True)

    return with_retries(url, attempt, settings, rng, sleep, limiter)[1]


# --------------------------------------------------------------------------- many jobs


class Fetcher:
    """Runs :class:`Job` lists on a bounded pool with a shared rate limit; one Outcome per job."""

    def __init__(self, settings: dict, seed: int = 0, sleep: Callable[[float], None] = time.sleep):
        self.settings = complete(settings, "corpus", "moseas", "download")
        self.limiter = RateLimiter(float(self.settings["rate_per_s"]))
        self.seed = seed
        self.sleep = sleep
        self._local = threading.local()

    def _session(self) -> requests.Session:
        # requests.Session is not guaranteed thread-safe: one per worker thread.
        if not hasattr(self._local, "session"):
            s = requests.Session()
            s.headers["User-Agent"] = self.settings["user_agent"]
            self._local.session = s
        return self._local.session

    def run_one(self, job: Job) -> Outcome:
        try:
            return self._run_one(job)
        except data_errors() as err:  # a network error in one job must not stop the others
            raise_if_environment(err, str(err))  # a full or read-only disk stops them all
            log.exception("%s: failed", job.key)
            return Outcome(
                key=job.key,
                dest=job.dest,
                ok=False,
                reason=f"unexpected error: {type(err).__name__}: {err}",
                permanent=False,
            )

    def _run_one(self, job: Job) -> Outcome:
        dest = Path(job.dest)
        t0 = time.monotonic()
        out = Outcome(key=job.key, dest=job.dest, ok=False)
        if dest.is_file() and verify(dest, job.size, job.sha256) is None:
            # A file from an earlier run is complete (atomic rename); reuse it unless it is a cut
            # of a span that the current segments no longer match.
            meta = _read_sidecar(dest)
            section = tuple(meta["section"]) if meta.get("section") else None
            wanted = {tuple(map(float, s["section"])) for s in job.sources if s.get("section")}
            if section is None or section in wanted:
                out.ok, out.source, out.bytes, out.section = True, "existing", dest.stat().st_size, section
                out.location = meta.get("location", "")
                return out
            log.info("%s: cached file holds %s, segments now need %s; fetching again", dest, section, wanted)
        rng = random.Random(f"{self.seed}/{job.key}")
        reasons, permanent = [], True
        for src in job.sources:
            kind, where = src["kind"], src["location"]
            out.tried.append(f"{kind}:{where}")
            try:
                if kind == "local":
                    n = fetch_local(where, dest, job.size, job.sha256)
                elif kind == "http":
                    n = fetch_http(
                        where, dest, self.settings, self._session(), self.limiter, job.size, job.sha256, rng, self.sleep
                    )
                elif kind == "youtube":
                    n = fetch_youtube(
                        where,
                        dest,
                        src.get("options", {}),
                        self.settings,
                        src.get("section"),
                        self.limiter,
                        rng,
                        self.sleep,
                    )
                else:
                    raise DownloadFailed(f"unknown media source kind {kind!r}", permanent=True)
            except DownloadFailed as err:
                reasons.append(f"{kind}: {err.reason}")
                permanent = permanent and err.permanent
                out.attempts += 1
                continue
            out.ok, out.source, out.location = True, kind, where
            out.section = tuple(map(float, src["section"])) if kind == "youtube" and src.get("section") else None
            out.attempts += n
            out.bytes = dest.stat().st_size
            write_json(sidecar_path(dest), {"source": kind, "location": where, "section": out.section})
            break
        if not out.ok:
            out.reason = "; ".join(reasons) if reasons else "no media source configured"
            out.permanent = permanent
        out.seconds = round(time.monotonic() - t0, 3)
        return out

    def run(self, jobs: Sequence[Job], progress: Callable[[Outcome], None] | None = None) -> list[Outcome]:
        workers = max(1, int(self.settings["concurrency"]))
        results: list[Outcome] = []
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
            for outcome in pool.map(self.run_one, jobs):
                results.append(outcome)
                if progress:
                    progress(outcome)
        return results


def _read_sidecar(dest: Path) -> dict:
    try:
        return json.loads(sidecar_path(dest).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def check_success_rate(outcomes: Sequence[Outcome], min_rate: float) -> float:
    """Fraction of jobs that delivered; raise :class:`TooManyFailures` below ``min_rate``."""
    if not outcomes:
        return 1.0
    rate = sum(o.ok for o in outcomes) / len(outcomes)
    if rate < min_rate:
        failed = [o for o in outcomes if not o.ok]
        examples = "\n".join(f"  {o.key}: {o.reason}" for o in failed[:10])
        raise TooManyFailures(
            f"only {rate:.1%} of {len(outcomes)} media files arrived (min_success_rate "
            f"{min_rate:.1%}); {len(failed)} failed, e.g.:\n{examples}\n"
            "The reasons are in the download report; lower corpus.<source>.download.min_success_rate "
            "to continue with what arrived."
        )
    return rate
