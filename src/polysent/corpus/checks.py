"""Checks of a corpus manifest before anything is extracted from it (shared by every source).

This module imports no corpus source, so every source (and ``polysent validate-manifest`` in
:mod:`polysent.corpus.validate`) can import it without an import cycle.

Every corpus source (demo, moseas, folder) builds a *candidate* manifest: a pandas frame with
the manifest columns plus two provenance columns, ``_file`` and ``_line``, naming where each row
came from (a CSV line, a transcript line, a Parquet row). :func:`validate_rows` checks all rows
and returns **every** problem at once, each with its file and line, so a user fixes a broken
corpus in one pass instead of one error per run. :func:`resolve` then either fails with one
report (``on_invalid: fail``) or drops the offending segments and records each one in QC
(``on_invalid: drop``).

Ids become file names further down the DAG, so they are validated here too
(:func:`check_id`): a manifest can never make the pipeline write outside ``results/``.
:func:`split_problems` finds a video or speaker in more than one split (a test-set leak), and
:func:`is_inside`/:func:`outside_message` back the folder source's refusal of paths that
resolve outside its media roots.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from polysent.contracts import SENTIMENT_RANGE, SPLITS
from polysent.errors import PolysentError
from polysent.filehash import sha256_file
from polysent.languages import ISO_639_1
from polysent.probe import MediaError, media_problems, probe

# Ids end up in file names (media, per-video WAVs): letters, digits, '_', '-', '.'; no path
# separators, no '..', no leading dot. YouTube ids ([A-Za-z0-9_-]{11}, may start with '-') pass.
_ID_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$")


class ManifestError(PolysentError, ValueError):
    """A manifest has problems; ``problems`` lists every one (file, line, message)."""

    def __init__(self, problems: Sequence[Problem], title: str = "corpus manifest"):
        # File by file, line by line: the order in which a user fixes them.
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0))
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the {title}:\n{lines}")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, located by file and (1-based) line or row."""

    file: str
    line: int | None
    message: str
    segment_id: str | None = None
    video_id: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"

    @property
    def fatal(self) -> bool:
        """A problem not tied to a segment or video cannot be handled by dropping rows."""
        return self.segment_id is None and self.video_id is None


def evidence_path(out_qc: str | os.PathLike) -> Path:
    """Where a corpus stage that stops leaves its QC records: beside ``out_qc`` under another
    name (``all.rejected.parquet``), because Snakemake deletes a failed job's outputs, ``out_qc``
    among them, and a message must point to a file that is still there."""
    p = Path(out_qc)
    return p.with_name(f"{p.stem}.rejected{p.suffix}")


def unusable_languages(
    frame: pd.DataFrame, languages: Iterable[str], where: str, out_qc: str | os.PathLike
) -> list[Problem]:
    """One fatal problem per configured language without a usable segment left in ``frame``.

    Such a language would build an empty store and fail only at training, many jobs later; the
    caller stops the corpus stage with these, after writing the dropped rows' QC to
    :func:`evidence_path` of ``out_qc`` (which the messages name).
    """
    evidence = evidence_path(out_qc)
    present = set(frame["lang"]) if "lang" in frame else set()
    return [
        Problem(
            where,
            None,
            f"{lang}: 0 usable segments (in `languages`; see {evidence} for dropped rows, or remove it from `languages`)",
        )
        for lang in languages
        if lang not in present
    ]


def check_id(value: object, what: str = "id") -> str | None:
    """Why ``value`` is not a safe id (None when it is)."""
    if not isinstance(value, str) or value == "":
        return f"{what} is empty"
    if ".." in value or not _ID_RE.match(value):
        return (
            f"{what} {value!r} is not a safe id (letters, digits, '_', '-', '.'; "
            "at most 128 characters; no '/', no '..', no leading '.')"
        )
    return None


def safe_join(root: str | os.PathLike, *parts: str) -> Path:
    """``root/parts...``, refusing any result outside ``root`` (defence in depth behind check_id)."""
    base = Path(root).resolve()
    target = base.joinpath(*parts).resolve()
    if target != base and base not in target.parents:
        raise ValueError(f"path {'/'.join(parts)!r} escapes {root}")
    return Path(root).joinpath(*parts)


# --------------------------------------------------------------------------- reading text safely


def decode_text(raw: bytes, file: str) -> tuple[str, list[Problem]]:
    """Decode UTF-8 (BOM allowed); on bad bytes report the line and decode what can be decoded."""
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        bad = raw[err.start : err.start + 4]
        msg = f"not valid UTF-8 (byte {bad[:1]!r} at offset {err.start}); re-encode the file as UTF-8"
        return raw.decode("utf-8-sig", errors="replace"), [Problem(file, line, msg)]


def read_csv_records(path: str | os.PathLike) -> tuple[list[str], list[tuple[int, dict]], list[Problem]]:
    """Header, ``(line, row)`` records with the line where each record starts, and problems.

    Uses the csv module (not pandas) so that line numbers stay right when a quoted field spans
    several lines, and every value stays the string the file holds.
    """
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        return [], [], [Problem(file, None, f"cannot read file: {err.strerror}")]
    text, problems = decode_text(raw, file)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return [], [], problems + [Problem(file, None, "file is empty (no header line)")]
    header = [h.strip() for h in header]
    records = []
    start = reader.line_num + 1
    for row in reader:
        if not any(cell.strip() for cell in row):
            start = reader.line_num + 1
            continue
        if len(row) != len(header):
            problems.append(Problem(file, start, f"has {len(row)} fields, the header has {len(header)}"))
        else:
            records.append((start, dict(zip(header, row))))
        start = reader.line_num + 1
    return header, records, problems


def duplicate_columns(header: Iterable[str], file: str) -> list[Problem]:
    """A column name the header holds more than once (after a ``columns`` rename): which of the
    two a check would read is undefined, so it is a fatal problem naming the column positions."""
    seen: dict[str, list[int]] = {}
    for i, name in enumerate(header, 1):
        seen.setdefault(str(name), []).append(i)
    return [
        Problem(
            file,
            1,
            f"column '{name}' appears {len(at)} times in the header (columns {', '.join(map(str, at))}); rename or remove all but one",
        )
        for name, at in seen.items()
        if len(at) > 1
    ]


def missing_columns(header: Iterable[str], required: Iterable[str], file: str) -> list[Problem]:
    have = set(header)
    return [Problem(file, 1, f"missing column '{c}'") for c in required if c not in have]


def parse_float(value: object) -> float | None:
    """A finite or NaN float from a cell, or None when it is not a number at all."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if value is None:
        return math.nan
    text = str(value).strip()
    if text == "" or text.lower() in {"nan", "na", "null", "none"}:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return None


# --------------------------------------------------------------------------- row checks


def validate_rows(
    frame: pd.DataFrame,
    labels: Sequence[str] = (),
    label_range: Sequence[float] = (0.0, 1.0),
    check_media: bool = False,
    source: str = "<manifest>",
) -> list[Problem]:
    """Every problem of a candidate manifest (see module doc), in file/line order.

    ``frame`` holds ``segment_id``, ``video_id``, ``lang``, ``start``, ``end``, ``transcript``,
    ``sentiment`` and the ``labels`` columns (values may still be strings); ``split``,
    ``video_path`` and ``audio_path`` are checked when present. ``_file``/``_line`` locate rows.
    """
    required = ["segment_id", "video_id", "lang", "start", "end", "transcript", "sentiment", *labels]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        return [Problem(source, None, f"missing column '{c}'") for c in missing]
    files = frame["_file"] if "_file" in frame.columns else pd.Series([source] * len(frame))
    lines = frame["_line"] if "_line" in frame.columns else pd.Series(range(1, len(frame) + 1))
    lo, hi = float(label_range[0]), float(label_range[1])
    problems: list[Problem] = []
    first_seen: dict[str, str] = {}
    video_lang: dict[str, tuple[str, str]] = {}

    for (_, row), file, line in zip(frame.iterrows(), files, lines):
        line = None if line is None or (isinstance(line, float) and math.isnan(line)) else int(line)
        file = str(file)
        seg = row["segment_id"] if isinstance(row["segment_id"], str) else None
        vid = row["video_id"] if isinstance(row["video_id"], str) else None

        def add(msg: str) -> None:
            problems.append(Problem(file, line, msg, segment_id=seg or None, video_id=vid or None))

        for what, value in (("segment_id", row["segment_id"]), ("video_id", row["video_id"])):
            why = check_id(value, what)
            if why:
                add(why)
        if seg and seg in first_seen:
            add(f"duplicate segment_id '{seg}' (first at {first_seen[seg]})")
        elif seg:
            first_seen[seg] = f"{file}:{line}"

        lang = row["lang"]
        if not isinstance(lang, str) or lang not in ISO_639_1:
            add(f"unknown language code {lang!r} (expected an ISO 639-1 code such as 'fr')")
        elif vid:
            prev = video_lang.setdefault(vid, (lang, f"{file}:{line}"))
            if prev[0] != lang:
                add(f"video '{vid}' is '{lang}' here but '{prev[0]}' at {prev[1]}")

        start, end = parse_float(row["start"]), parse_float(row["end"])
        for name, raw, val in (("start", row["start"], start), ("end", row["end"], end)):
            if val is None:
                add(f"{name} is not a number: {str(raw)!r}")
            elif math.isnan(val) or math.isinf(val):
                add(f"{name} is missing or not finite")
        if start is not None and end is not None and math.isfinite(start) and math.isfinite(end):
            if start < 0:
                add(f"start {start:g} is negative")
            if end <= start:
                add(f"end {end:g} <= start {start:g}")

        for name, (a, b) in [("sentiment", SENTIMENT_RANGE)] + [(c, (lo, hi)) for c in labels]:
            raw = row[name]
            val = parse_float(raw)
            if val is None:
                add(f"{name} is not a number: {str(raw)!r}")
            elif math.isnan(val):
                add(f"{name} is missing (NaN)")
            elif not a <= val <= b:
                add(f"{name} {val:g} is outside [{a:g}, {b:g}]")

        text = row["transcript"]
        if not isinstance(text, str) or not text.strip():
            add("transcript is empty")

        if "split" in frame.columns and row["split"] not in SPLITS:
            add(f"split {row['split']!r} is not one of {', '.join(SPLITS)}")
        if check_media and "video_path" in frame.columns:
            path = row["video_path"]
            if not isinstance(path, str) or not path:
                add("no media file for this video")
            elif not Path(path).is_file():
                add(f"media file not found: {path}")
    return problems + split_problems(frame, source) + conflicting_overlaps(frame, source)


# --------------------------------------------------------------------------- split leakage


def _locations(files, lines, limit: int = 5) -> str:
    where = [f"{f}:{int(n)}" if n is not None and n == n else str(f) for f, n in zip(files, lines)]
    more = f" and {len(where) - limit} more" if len(where) > limit else ""
    return ", ".join(where[:limit]) + more


OVERLAP_SHARE = 0.5  # of the shorter segment: past it, two segments say mostly the same words


def conflicting_overlaps(frame: pd.DataFrame, source: str = "<manifest>") -> list[Problem]:
    """Two segments of one video that overlap by more than half of the shorter one and carry
    sentiments of opposite sign: the same words labelled both ways, which no model can fit and
    which, split across train and test, leaks. Each of the two rows is a segment-level problem
    naming the other (``on_invalid`` applies: dropped into QC, or the run stops). Overlaps with
    agreeing labels (context windows, re-cut segments) pass."""
    cols = ["segment_id", "video_id", "start", "end", "sentiment"]
    if frame.empty or any(c not in frame.columns for c in cols):
        return []
    rows = pd.DataFrame(
        {
            "segment_id": frame["segment_id"],
            "video_id": frame["video_id"],
            "start": [parse_float(v) for v in frame["start"]],
            "end": [parse_float(v) for v in frame["end"]],
            "sentiment": [parse_float(v) for v in frame["sentiment"]],
            "_file": frame["_file"] if "_file" in frame.columns else source,
            "_line": frame["_line"] if "_line" in frame.columns else range(1, len(frame) + 1),
        }
    ).dropna(subset=["start", "end", "sentiment"])
    rows = rows[(rows["end"] > rows["start"]) & rows["sentiment"].map(math.isfinite)]
    problems = []
    for vid, part in rows.groupby("video_id", sort=True):
        if len(part) < 2:
            continue
        seg = part.sort_values(["start", "end"]).to_dict("records")
        for i, a in enumerate(seg):
            for b in seg[i + 1 :]:
                if b["start"] >= a["end"]:
                    break
                shared = min(a["end"], b["end"]) - b["start"]
                shorter = min(a["end"] - a["start"], b["end"] - b["start"])
                if shared <= OVERLAP_SHARE * shorter or a["sentiment"] * b["sentiment"] >= 0:
                    continue
                for x, y in ((a, b), (b, a)):
                    problems.append(
                        Problem(
                            str(x["_file"]),
                            int(x["_line"]),
                            f"segment '{x['segment_id']}' ({x['start']:g}-{x['end']:g} s, sentiment {x['sentiment']:g}) "
                            f"overlaps '{y['segment_id']}' of the same video ({y['_file']}:{int(y['_line'])}, "
                            f"{y['start']:g}-{y['end']:g} s, sentiment {y['sentiment']:g}) by {shared / shorter:.0%} "
                            "of the shorter with the opposite sentiment; fix one label or drop one segment",
                            segment_id=str(x["segment_id"]),
                            video_id=str(vid),
                        )
                    )
    return problems


def split_problems(frame: pd.DataFrame, source: str = "<manifest>") -> list[Problem]:
    """A video, or a speaker where a ``speaker`` column is given, in more than one split.

    Either leaks the test set into training (the same face and voice on both sides), so each is
    a video-level problem naming the rows: dropping drops the whole video (every video of the
    speaker), failing stops. Rows with an invalid split value are left to :func:`validate_rows`.
    """
    if "split" not in frame.columns or frame.empty:
        return []
    rows = pd.DataFrame(
        {
            "video_id": frame["video_id"],
            "split": frame["split"],
            "speaker": frame["speaker"].fillna("").astype(str).str.strip() if "speaker" in frame.columns else "",
            "_file": frame["_file"] if "_file" in frame.columns else source,
            "_line": frame["_line"] if "_line" in frame.columns else range(1, len(frame) + 1),
        }
    )
    rows = rows[rows["split"].isin(list(SPLITS)) & rows["video_id"].map(lambda v: isinstance(v, str) and v != "")]
    problems = []
    for vid, part in rows.groupby("video_id", sort=True):
        if part["split"].nunique() > 1:
            per_split = "; ".join(
                f"{split} at {_locations(g['_file'], g['_line'])}" for split, g in part.groupby("split", sort=False)
            )
            problems.append(
                Problem(
                    str(part["_file"].iat[0]),
                    int(part["_line"].iat[0]),
                    f"video '{vid}' is in more than one split ({per_split}); "
                    "all segments of a video must share one split",
                    video_id=vid,
                )
            )
    for speaker, part in rows[rows["speaker"] != ""].groupby("speaker", sort=True):
        if part["split"].nunique() < 2:
            continue
        firsts = part.drop_duplicates("video_id")
        per_split = "; ".join(
            f"{split}: " + ", ".join(f"'{v}' ({f}:{int(n)})" for v, f, n in zip(g["video_id"], g["_file"], g["_line"]))
            for split, g in firsts.groupby("split", sort=False)
        )
        for vid, file, line in zip(firsts["video_id"], firsts["_file"], firsts["_line"]):
            problems.append(
                Problem(
                    str(file),
                    int(line),
                    f"speaker '{speaker}' is in more than one split (videos {per_split}); "
                    "all videos of a speaker must share one split",
                    video_id=vid,
                )
            )
    return problems


# --------------------------------------------------------------------------- paths inside the roots


def resolved(path: str | os.PathLike) -> Path | None:
    """``path`` with every symlink followed, or None when it cannot be (a symlink loop)."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):
        return None


def is_inside(path: Path, roots: Sequence[Path]) -> bool:
    """Whether the resolved ``path`` lies in one of the resolved ``roots``."""
    return any(path == root or root in path.parents for root in roots)


def outside_message(what: str, given: str, real: Path, roots: Sequence[Path], switch: str) -> str:
    names = ", ".join(str(r) for r in roots)
    return (
        f"{what} {given!r} resolves to {real}, outside the media root(s) {names} "
        f"(move it inside, or set {switch}: true to allow paths outside)"
    )


def resolve(
    frame: pd.DataFrame,
    problems: Sequence[Problem],
    on_invalid: str,
    qc=None,
    title: str = "corpus manifest",
) -> pd.DataFrame:
    """Apply the ``on_invalid`` policy: ``fail`` raises one report; ``drop`` removes the rows.

    Dropped segments are recorded in ``qc`` (a :class:`polysent.qc.QCLog`) with the message and
    location. Problems that belong to no segment or video (a missing column, an unreadable
    label file) are fatal in both modes.
    """
    if not problems:
        return frame
    if on_invalid not in ("fail", "drop"):
        raise ValueError(f"on_invalid must be 'fail' or 'drop', got {on_invalid!r}")
    fatal = [p for p in problems if p.fatal]
    if on_invalid == "fail" or fatal:
        raise ManifestError(problems if on_invalid == "fail" else fatal, title=title)
    by_segment: dict[str, list[str]] = {}
    by_video: dict[str, list[str]] = {}
    for p in problems:
        if p.segment_id:
            by_segment.setdefault(p.segment_id, []).append(str(p))
        else:
            by_video.setdefault(p.video_id, []).append(str(p))
    drop = frame["segment_id"].isin(list(by_segment)) | frame["video_id"].isin(list(by_video))
    if qc is not None:
        # One QC record per dropped row, always: two rows sharing a segment id are two records,
        # so rows in = rows kept + QC records.
        for seg, vid in zip(frame.loc[drop, "segment_id"], frame.loc[drop, "video_id"]):
            msgs = by_segment.get(seg, []) + by_video.get(vid, [])
            qc.add("invalid manifest: " + "; ".join(msgs), segment_id=seg, video_id=vid)
        # A problem whose segment or video has no row left still gets its record.
        for seg, msgs in by_segment.items():
            if not (frame["segment_id"] == seg).any():
                qc.add("invalid manifest: " + "; ".join(msgs), segment_id=seg)
        for vid, msgs in by_video.items():
            if not (frame["video_id"] == vid).any():
                qc.add("invalid manifest: " + "; ".join(msgs), video_id=vid)
    return frame.loc[~drop].reset_index(drop=True)


# --------------------------------------------------------------------------- media probed up front


PROBE_PREFIX = "probe: "  # marks the problems found by opening the media (the media report lists them)


def _probe_one(video: str, audio: str, last_end: float, ffprobe: str, tolerance: float) -> list[str]:
    """Problems of one video's files: the video itself, and the audio source the media stage reads."""
    source = audio or video
    out = []
    for path, role in ((video, "video_path"), *([(audio, "audio_path")] if audio else [])):
        try:
            info = probe(path, ffprobe)
        except MediaError as err:
            out.append(f"{role} {path}: " + str(err).replace(f"ffprobe cannot read {path}:", "ffprobe cannot read it:"))
            continue
        end = last_end if path == source else None
        why = media_problems(info, end, tolerance, need_video=role == "video_path")
        if role == "video_path" and audio:  # the separate audio file carries the sound
            why = [w for w in why if w != "no audio stream"]
        if why:
            out.append(f"{role} {path}: " + "; ".join(why))
    return out


def probe_problems(
    frame: pd.DataFrame,
    ffprobe: str = "ffprobe",
    tolerance: float = 0.1,
    jobs: int | None = None,
    progress: bool = True,
) -> list[Problem]:
    """ffprobe every video's media (in parallel): unreadable, truncated, no audio or video stream,
    or audio shorter than the video's last segment end. Video-level problems at the video's
    first row, so ``on_invalid`` drops or stops as for any other problem.

    ``frame`` needs ``video_id``, ``end``, ``video_path`` (``audio_path`` optional) and the
    ``_file``/``_line`` provenance; rows whose ``video_path`` is empty (already refused) are skipped.
    """
    if frame.empty or "video_path" not in frame.columns:
        return []
    rows = pd.DataFrame(
        {
            "video_id": frame["video_id"],
            "video": frame["video_path"].fillna("").astype(str),
            "audio": (frame["audio_path"] if "audio_path" in frame.columns else pd.Series("", index=frame.index))
            .fillna("")
            .astype(str),
            "end": pd.to_numeric(frame["end"], errors="coerce"),
            "_file": frame["_file"] if "_file" in frame.columns else "<manifest>",
            "_line": frame["_line"] if "_line" in frame.columns else range(1, len(frame) + 1),
        }
    )
    rows = rows[rows["video"] != ""]
    videos = [(vid, g) for vid, g in rows.groupby("video_id", sort=True)]
    jobs = max(1, int(jobs or os.cpu_count() or 1))
    # ffprobe runs in a subprocess: threads are enough to keep every core busy.
    with ThreadPoolExecutor(jobs) as pool:
        futures = [
            pool.submit(
                _probe_one,
                g["video"].iat[0],
                g["audio"].iat[0],
                float(g["end"].max()) if g["end"].notna().any() else None,
                ffprobe,
                tolerance,
            )
            for _, g in videos
        ]
        results = [f.result() for f in tqdm(futures, desc="probing media", unit="video", disable=not progress)]
    problems = []
    for (vid, g), why in zip(videos, results):
        if why:
            problems.append(
                Problem(str(g["_file"].iat[0]), int(g["_line"].iat[0]), PROBE_PREFIX + "; ".join(why), video_id=vid)
            )
    return problems


# --------------------------------------------------------------------------- one recording, two ids


def shared_media(frame: pd.DataFrame) -> list[list[str]]:
    """Groups of video ids (sorted, two or more) whose media are one recording: the same file
    once symlinks are resolved, or files of equal size and SHA-256 (only equal sizes are hashed)."""
    if frame.empty or "video_path" not in frame.columns:
        return []
    firsts = frame.drop_duplicates("video_id")
    by_file: dict[str, set[str]] = {}
    for vid, path in zip(firsts["video_id"], firsts["video_path"]):
        if isinstance(path, str) and path and os.path.isfile(path):
            by_file.setdefault(os.path.realpath(path), set()).add(str(vid))
    by_size: dict[int, list[str]] = {}
    for path in by_file:
        by_size.setdefault(os.path.getsize(path), []).append(path)
    groups: dict[str, set[str]] = {}
    for paths in by_size.values():
        for path in paths:
            key = sha256_file(path) if len(paths) > 1 else path
            groups.setdefault(key, set()).update(by_file[path])
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def shared_media_problems(
    frame: pd.DataFrame, groups: list[list[str]], source: str = "<manifest>"
) -> tuple[list[Problem], list[str]]:
    """``(problems, warnings)`` for video ids that share one recording (:func:`shared_media`).

    Across splits the recording is in training and in evaluation, a leak: a video-level problem
    of each id involved (``on_invalid`` applies). Within one split it is only counted twice: a
    warning naming the ids.
    """
    if not groups or "split" not in frame.columns:
        return [], []
    firsts = frame.drop_duplicates("video_id").set_index("video_id")
    problems, warnings = [], []
    for group in groups:
        where = {v: firsts.loc[v] for v in group}
        splits = {str(r["split"]) for r in where.values()}
        path = where[group[0]]["video_path"]
        listing = ", ".join(
            f"'{v}' ({r['split']}, {r.get('_file', source)}:{int(r['_line']) if '_line' in r else '?'})"
            for v, r in where.items()
        )
        if len(splits) > 1:
            for v, r in where.items():
                problems.append(
                    Problem(
                        str(r.get("_file", source)),
                        int(r["_line"]) if "_line" in r else None,
                        f"video '{v}' has the same media as another video in another split ({listing}; "
                        f"{path}): one recording in two splits leaks the test set into training; "
                        "keep one id, or put them in one split",
                        video_id=v,
                    )
                )
        else:
            warnings.append(f"videos {listing} have the same media ({path}): one recording counted {len(group)} times")
    return problems, warnings
