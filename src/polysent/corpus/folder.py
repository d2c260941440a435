"""Corpus source ``folder``: any corpus given as a CSV/Parquet manifest plus media files.

This is the way to add a language or a dataset without writing code. The manifest has one row
per segment; columns (rename yours with ``corpus.folder.columns``):

=================  ========  ==============================================================
column             required  meaning
=================  ========  ==============================================================
``video_id``       yes       id of the source video (letters, digits, ``_-.``)
``lang``           yes       ISO 639-1 code (rows of languages not in ``languages`` are skipped)
``start``/``end``  yes       segment interval in seconds of video time, ``end > start >= 0``
``sentiment``      yes       float in [-3, 3]
``transcript``     one of    the segment's text, or
``transcript_path``          a UTF-8 text file holding it (relative to the manifest)
``segment_id``     no        default ``<video_id>_<n>`` (n = order by start within the video)
``split``          no        train/valid/test; default: seeded 80/10/10 split by video (by
                             speaker when ``speaker`` is given)
``speaker``        no        speaker id; checked: a speaker sits in one split only
``video_path``     no        default: ``<media_root>/<video_id><ext>`` for the first of
                             ``extensions`` that exists (relative to the manifest)
``audio_path``     no        separate source audio (relative to the manifest); default empty
label columns      config    every name in ``corpus.folder.labels`` (float, ``label_range``)
=================  ========  ==============================================================

A video (or speaker) found in more than one split is a problem of the whole video. Every media
and transcript path must resolve, symlinks followed, inside the media roots (``media_root`` and
the manifest's folder, :func:`media_roots`), or it is refused before anything is read or linked;
``allow_outside_root: true`` lifts that for users who keep media elsewhere.

Media are linked (hard link, else copy) into ``results/corpus/media/<lang>/<video_id><ext>``
(separate audio: ``<lang>/audio/<video_id><ext>``) so that every manifest path is relative to
the working directory whatever the source layout. A file from outside the roots is copied,
never hard-linked: a shared inode would let a change under ``results/`` change that file.

The module also holds :func:`finish_manifest`, the last step every external source shares:
split, shard, type and contract-check the manifest.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from polysent import contracts
from polysent.config import complete
from polysent.corpus.checks import (
    ISO_639_1,
    PROBE_PREFIX,
    ManifestError,
    Problem,
    check_id,
    decode_text,
    duplicate_columns,
    evidence_path,
    is_inside,
    missing_columns,
    outside_message,
    probe_problems,
    read_csv_records,
    resolve,
    resolved,
    safe_join,
    shared_media,
    shared_media_problems,
    split_problems,
    unusable_languages,
    validate_rows,
)
from polysent.corpus.sharding import shard_of
from polysent.corpus.splits import split_frame
from polysent.errors import data_errors, raise_if_environment
from polysent.io import write_csv, write_parquet
from polysent.qc import QCLog

log = logging.getLogger("polysent.corpus.folder")

REQUIRED = ("video_id", "lang", "start", "end", "sentiment")


# --------------------------------------------------------------------------- shared last step


def finish_manifest(
    frame: pd.DataFrame,
    labels: Sequence[str],
    seed: int,
    shards: int,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    where: str = "manifest",
) -> pa.Table:
    """Splits (unless given), shards, Arrow types and contract check of a validated frame."""
    frame = frame.copy()
    if "split" not in frame.columns or frame["split"].isna().all() or (frame["split"] == "").all():
        frame["split"] = split_frame(frame, seed, fractions) if len(frame) else []
    frame["start"] = frame["start"].astype("float64")
    frame["end"] = frame["end"].astype("float64")
    frame["sentiment"] = frame["sentiment"].astype("float32")
    for c in labels:
        frame[c] = frame[c].astype("float32")
    frame["audio_path"] = frame.get("audio_path", pd.Series([""] * len(frame))).fillna("").astype(str)
    frame["shard"] = np.array([shard_of(v, shards) for v in frame["video_id"]], dtype="int32")
    schema = contracts.manifest_schema(list(labels))
    frame = frame[[f.name for f in schema]].reset_index(drop=True)
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    return contracts.check(table, contracts.MANIFEST, where=where)


def link_media(src: str | os.PathLike, dest: Path, hard_link: bool = True) -> None:
    """Hard-link (same file system, ``hard_link``) or copy ``src`` to ``dest`` atomically.

    Callers pass ``hard_link=False`` for a file outside the media roots: a hard link shares the
    inode, so a later ``chmod -R results/`` (or an in-place write) would change that file too.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        if not hard_link:
            raise OSError("copy requested")
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


SWITCH = "corpus.folder.allow_outside_root"


def media_root(cfg: dict, base: Path) -> Path:
    """``media_root`` as configured, relative to ``base`` (the manifest's folder) unless absolute."""
    root = Path(cfg["media_root"] or ".")
    return root if root.is_absolute() else base / root


def media_roots(cfg: dict, base: Path) -> list[Path]:
    """The folders manifest paths may point into, resolved: ``media_root`` and the manifest's folder."""
    roots = []
    for r in (media_root(cfg, base), base):
        real = resolved(r)
        if real is not None and real not in roots:
            roots.append(real)
    return roots


def locate(given: str, base: Path, roots: list[Path], allow_outside: bool, what: str) -> tuple[Path | None, str]:
    """``(path, "")`` for a manifest path that is a file inside ``roots``; else ``(None, why)``.

    Relative paths start at ``base``. Symlinks are followed before the check, so a link inside
    a root that points outside is refused like the outside path itself.
    """
    refused = outside_roots(given, base, roots, allow_outside, what)
    if refused:
        return None, refused
    p = Path(given) if Path(given).is_absolute() else base / given
    real = resolved(p)
    if real is None or not real.is_file():
        return None, f"media file not found: {given}"
    return p, ""


def outside_roots(given: str, base: Path, roots: list[Path], allow_outside: bool, what: str) -> str:
    """Why the manifest path ``given`` is refused as outside ``roots`` ("" when it is not)."""
    p = Path(given) if Path(given).is_absolute() else base / given
    real = resolved(p)
    if allow_outside or real is None or is_inside(real, roots):
        return ""
    return outside_message(what, given, real, roots, SWITCH)


# --------------------------------------------------------------------------- reading


def read_manifest_file(path: str | os.PathLike, columns: dict | None = None) -> tuple[pd.DataFrame, list[Problem]]:
    """Rows of a CSV or Parquet manifest as strings/values with ``_file``/``_line`` provenance.

    ``columns`` maps our column names to the file's (``{"video_id": "vid"}``). CSV lines are
    physical lines (header = line 1); Parquet rows are numbered from 1 as ``row``.
    """
    path = Path(path)
    file = str(path)
    rename = {theirs: ours for ours, theirs in (columns or {}).items()}
    if not path.is_file():
        return pd.DataFrame(), [Problem(file, None, "manifest file not found")]
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except data_errors() as err:  # not Parquet, truncated, unreadable: reported, not raised
            raise_if_environment(err, str(err))
            why = " ".join(str(err).split())[:200]
            return pd.DataFrame(), [
                Problem(file, None, f"corpus manifest is not a readable Parquet file ({why}); save it again, or as CSV")
            ]
        frame = frame.rename(columns=rename)
        if doubled := duplicate_columns(frame.columns, file):
            return pd.DataFrame(), doubled
        # Integer ids (a Parquet column of video numbers) are ids all the same: their decimal text.
        for col in ("segment_id", "video_id", "speaker"):
            if col in frame.columns and pd.api.types.is_integer_dtype(frame[col]):
                frame[col] = frame[col].astype(str)
        frame["_file"] = file
        frame["_line"] = np.arange(1, len(frame) + 1)
        return frame, []
    header, records, problems = read_csv_records(path)
    header = [rename.get(h, h) for h in header]
    if doubled := duplicate_columns(header, file):
        return pd.DataFrame(), problems + doubled
    rows = [{**{rename.get(k, k): v for k, v in rec.items()}, "_file": file, "_line": line} for line, rec in records]
    frame = pd.DataFrame(rows, columns=[*header, "_file", "_line"])
    return frame, problems


def _fill_transcripts(frame: pd.DataFrame, base: Path, roots: list[Path], allow_outside: bool) -> list[Problem]:
    problems = []
    if "transcript" not in frame.columns:
        frame["transcript"] = ""
    if "transcript_path" not in frame.columns:
        return problems
    texts = list(frame["transcript"].fillna(""))
    for i, (rel, file, line) in enumerate(zip(frame["transcript_path"], frame["_file"], frame["_line"])):
        if not isinstance(rel, str) or not rel or texts[i]:
            continue
        p = Path(rel) if Path(rel).is_absolute() else base / rel
        refused = outside_roots(rel, base, roots, allow_outside, "transcript_path")
        if refused:  # never read, so nothing from outside the roots can become a transcript
            problems.append(Problem(str(file), int(line), refused, segment_id=_seg(frame, i), video_id=_vid(frame, i)))
            continue
        try:
            raw = p.read_bytes()
        except OSError as err:
            problems.append(
                Problem(
                    str(file),
                    int(line),
                    f"cannot read transcript {rel}: {err.strerror}",
                    segment_id=_seg(frame, i),
                    video_id=_vid(frame, i),
                )
            )
            continue
        text, probs = decode_text(raw, str(p))
        for pr in probs:
            problems.append(Problem(pr.file, pr.line, pr.message, segment_id=_seg(frame, i), video_id=_vid(frame, i)))
        texts[i] = " ".join(text.split())
    frame["transcript"] = texts
    return problems


def _seg(frame, i):
    v = frame["segment_id"].iat[i]
    return v if isinstance(v, str) and v else None


def _vid(frame, i):
    v = frame["video_id"].iat[i]
    return v if isinstance(v, str) and v else None


def _fill_segment_ids(frame: pd.DataFrame) -> None:
    """``<video_id>_<n>``, n = rank of the segment by start time within its video."""
    given = frame["segment_id"] if "segment_id" in frame.columns else pd.Series([""] * len(frame))
    given = given.fillna("").astype(str)
    if (given != "").all():
        frame["segment_id"] = given
        return
    starts = pd.to_numeric(frame["start"], errors="coerce")
    order = pd.DataFrame({"v": frame["video_id"].astype(str), "s": starts, "i": range(len(frame))}).sort_values(
        ["v", "s", "i"], na_position="last"
    )
    order["n"] = order.groupby("v").cumcount()
    rank = order.sort_values("i")["n"].to_numpy()
    frame["segment_id"] = [g if g else f"{v}_{n}" for g, v, n in zip(given, frame["video_id"].astype(str), rank)]


def _find_video(vid: str, given: str, base: Path, roots: list[Path], cfg: dict) -> tuple[Path | None, str]:
    """The video's file: the manifest's ``video_path``, else ``<media_root>/<video_id><ext>``."""
    allow = bool(cfg["allow_outside_root"])
    if given:
        return locate(given, base, roots, allow, "video_path")
    root = media_root(cfg, base)
    exts = list(cfg["extensions"])
    for ext in exts:
        p = root / f"{vid}{ext}"
        if p.is_file():  # a symlink inside the root may still point outside: check where it leads
            return locate(str(p), Path("."), roots, allow, "media file")  # p already includes base
    return None, f"media file not found: {root}/{vid}{{{','.join(exts)}}}"


def _resolve_media(frame: pd.DataFrame, cfg: dict, base: Path) -> list[Problem]:
    """Find each video's files (video, optional audio): ``video_path``/``audio_path`` become them.

    Every path must resolve inside :func:`media_roots` unless ``allow_outside_root`` is set; a
    refused or missing file is a video-level problem (the whole video goes). Nothing is linked
    here: :func:`link_videos` does that for the rows that survive validation.
    """
    roots = media_roots(cfg, base)
    allow = bool(cfg["allow_outside_root"])
    empty = pd.Series([""] * len(frame), dtype=object)
    given = frame["video_path"] if "video_path" in frame.columns else empty
    given_audio = frame["audio_path"] if "audio_path" in frame.columns else empty
    problems, paths, audio_paths, found = [], [], [], {}
    for vid, lang, g, ga, file, line in zip(
        frame["video_id"], frame["lang"], given.fillna(""), given_audio.fillna(""), frame["_file"], frame["_line"]
    ):
        key = (vid, lang)
        if key not in found:
            found[key] = ("", "")
            if check_id(vid) is None and isinstance(lang, str) and check_id(lang, "lang") is None:
                # (an unsafe id is reported by validate_rows; never build a path from it)
                found[key], why = _media_of_video(vid, str(g), str(ga), base, roots, allow, cfg)
                if why:
                    # Video-level: every segment of the video goes (each with its QC row in drop mode).
                    problems.append(Problem(str(file), int(line), why, video_id=vid))
        paths.append(found[key][0])
        audio_paths.append(found[key][1])
    frame["video_path"] = paths
    frame["audio_path"] = audio_paths
    return problems


def _media_of_video(vid, given, given_audio, base, roots, allow, cfg) -> tuple[tuple[str, str], str]:
    """``((video, audio), "")`` for one video, or ``(("", ""), why)``."""
    src, why = _find_video(vid, given, base, roots, cfg)
    if src is None:
        return ("", ""), why
    if not given_audio:
        return (str(src), ""), ""
    audio, why = locate(given_audio, base, roots, allow, "audio_path")
    if audio is None:
        return ("", ""), why
    return (str(src), str(audio)), ""


def link_videos(frame: pd.DataFrame, cfg: dict, base: Path, media_dir: str | os.PathLike) -> pd.DataFrame:
    """Link each video's files into ``media_dir/<lang>/`` and point the manifest at the links.

    The video goes to ``<lang>/<video_id><ext>``, separate audio to ``<lang>/audio/<video_id><ext>``
    (in a folder of its own: ``x.audio`` + ``.wav`` could be another video's name). Only a file
    inside the roots is hard-linked; one allowed from outside is copied.
    """
    roots, media_dir = media_roots(cfg, base), Path(media_dir)
    frame = frame.copy()
    done: set[tuple] = set()

    def place(src: str, *parts: str) -> str:
        if not src:
            return ""
        dest = safe_join(media_dir, *parts)
        if (src, dest) not in done:
            real = resolved(src)
            link_media(real, dest, hard_link=is_inside(real, roots))
            done.add((src, dest))
        return str(dest)

    frame["video_path"] = [
        place(v, lang, f"{vid}{Path(v).suffix.lower()}")
        for v, vid, lang in zip(frame["video_path"], frame["video_id"], frame["lang"])
    ]
    frame["audio_path"] = [
        place(a, lang, "audio", f"{vid}{Path(a).suffix.lower()}")
        for a, vid, lang in zip(frame["audio_path"], frame["video_id"], frame["lang"])
    ]
    return frame


def load(
    cfg: dict,
    languages: Sequence[str],
    base: str | os.PathLike | None = None,
):
    """Read a folder manifest and find every problem: ``(frame, problems)``.

    Nothing is written: ``video_path``/``audio_path`` name the media files found (checked to
    exist inside the media roots); :func:`build` links the surviving ones. Relative paths in the manifest are taken from ``base`` (default: the manifest's folder).
    Missing columns come back as fatal problems with an empty frame. ``cfg`` is completed from the
    schema (``corpus.folder``), so `polysent validate-manifest` looks for the same media
    extensions as the workflow.
    """
    cfg = complete(cfg, "corpus", "folder")
    path = Path(cfg["manifest"])
    base = Path(base) if base is not None else path.parent
    frame, problems = read_manifest_file(path, cfg["columns"])
    labels = list(cfg["labels"])
    if frame.empty and problems:
        return frame, problems
    problems += missing_columns(frame.columns, [*REQUIRED, *labels], str(path))
    if "transcript" not in frame.columns and "transcript_path" not in frame.columns:
        problems.append(Problem(str(path), 1, "missing column 'transcript' (or 'transcript_path')"))
    if any(p.fatal for p in problems):
        return pd.DataFrame(), problems
    iso = frame["lang"].isin(list(ISO_639_1))
    lang_ok = frame["lang"].isin(list(languages))
    for lang, n in frame.loc[~lang_ok & iso, "lang"].value_counts().items():
        log.info("skipping %d segment(s) in language '%s' (not in config languages)", n, lang)
    # Unknown codes stay in so that validation reports them.
    frame = frame.loc[lang_ok | ~iso].reset_index(drop=True)
    _fill_segment_ids(frame)
    roots, allow = media_roots(cfg, base), bool(cfg["allow_outside_root"])
    problems += _fill_transcripts(frame, base, roots, allow)
    if "split" in frame.columns:
        frame["split"] = frame["split"].fillna("").astype(str)
        if (frame["split"] == "").all():
            frame = frame.drop(columns="split")  # not given: drawn by video later
    problems += validate_rows(frame, labels, cfg["label_range"], source=str(path))
    problems += _resolve_media(frame, cfg, base)
    if "split" in frame.columns:  # a drawn split keeps one recording's ids together (build)
        leaks, duplicates = shared_media_problems(frame, shared_media(frame), str(path))
        problems += leaks
        for line in duplicates:
            log.warning("%s: %s", path, line)
    return frame, problems


def build(
    cfg: dict,
    languages: Sequence[str],
    seed: int,
    shards: int,
    out_manifest: str | os.PathLike,
    out_qc: str | os.PathLike,
    media_dir: str | os.PathLike = "results/corpus/media",
    out_downloads: str | os.PathLike | None = None,
) -> pa.Table:
    """Read, validate and link a folder corpus; write the manifest, the QC file and the media report.

    ``cfg`` is completed from the schema (``corpus.folder``): `polysent folder` and the workflow
    apply the same defaults (``min_success_rate`` 1.0 among them)."""
    cfg = complete(cfg, "corpus", "folder")
    qc = QCLog("corpus")
    path = Path(cfg["manifest"])
    labels = list(cfg["labels"])
    frame, problems = load(cfg, languages)
    title = f"folder manifest {path}"
    if frame.empty and problems:
        raise ManifestError(problems, title=title)
    n_videos = frame["video_id"].nunique()
    shared = shared_media(frame) if not any(p.fatal for p in problems) else []
    if "split" not in frame.columns and not any(p.fatal for p in problems):
        # Drawn over every video before dropping bad ones: fixing a row later moves no other video.
        # Ids of one recording draw together, so a drawn split never puts it on both sides.
        frame["split"] = split_frame(_split_keys(frame, shared), seed, cfg["splits"])
        # By construction no video straddles splits; a speaker could, through a video of two speakers.
        problems += split_problems(frame, str(path))
    if cfg["probe"] and not any(p.fatal for p in problems):
        problems += probe_problems(
            frame, tolerance=float(cfg["probe_tolerance"]), jobs=int(cfg["probe_jobs"]), progress=False
        )
    found = frame
    # Nothing is linked before the whole manifest is accepted: a stop leaves results/ untouched.
    frame = resolve(frame, problems, cfg["on_invalid"], qc, title=title)
    if n_videos and frame["video_id"].nunique() / n_videos < float(cfg["min_success_rate"]):
        raise ManifestError(
            problems,
            title=f"{title} (fewer than min_success_rate {cfg['min_success_rate']:.0%} of the videos are usable)",
        )
    if frame.empty:
        raise ManifestError([Problem(str(path), None, "no usable segment left")], title=title)
    # A configured language without a usable segment would build an empty store and fail only at
    # training, many jobs later: stop here, with the dropped rows' QC written as evidence.
    if unusable := unusable_languages(frame, languages, str(path), out_qc):
        qc.write(evidence_path(out_qc))
        raise ManifestError(unusable, title=title)
    frame = link_videos(frame, cfg, path.parent, media_dir)
    if out_downloads is not None:
        write_csv(out_downloads, _media_report(found, frame, problems))
    for c in ("start", "end", "sentiment", *labels):
        frame[c] = pd.to_numeric(frame[c])
    table = finish_manifest(frame, labels, seed, shards, cfg["splits"], where=str(out_manifest))
    write_parquet(out_manifest, table, provenance={"source": "folder", "manifest": str(path), "config": cfg})
    qc.write(out_qc)
    return table


def _split_keys(frame: pd.DataFrame, shared: list[list[str]] = ()) -> pd.DataFrame:
    """What a drawn split groups by: the video, or its speaker where a ``speaker`` column is given.

    A video of several speakers goes with the first of them (sorted); videos sharing that
    speaker share the split, so the speaker is seen in one split only. Ids of one recording
    (``shared``, :func:`polysent.corpus.checks.shared_media`) take the key of the first of them.
    """
    keys = frame[["video_id", "lang"]].fillna("").astype(str)
    if "speaker" in frame.columns:
        speaker = frame["speaker"].fillna("").astype(str).str.strip()
        first = speaker[speaker != ""].groupby(keys["video_id"][speaker != ""]).min()
        keys["video_id"] = [f"speaker/{first[v]}" if v in first.index else f"video/{v}" for v in keys["video_id"]]
    if shared:
        ids = frame["video_id"].astype(str)
        key_of = dict(zip(ids, keys["video_id"]))
        alias = {v: key_of[g[0]] for g in shared for v in g}
        keys["video_id"] = [alias.get(v, k) for v, k in zip(ids, keys["video_id"])]
    return keys


def _media_report(found: pd.DataFrame, kept: pd.DataFrame, problems: Sequence[Problem]) -> pd.DataFrame:
    """One row per video: where its media file was linked, or why it is missing or refused."""
    why = {
        p.video_id: p.message
        for p in problems
        if p.video_id
        and not p.segment_id
        and ("media file" in p.message or "media root" in p.message or p.message.startswith(PROBE_PREFIX))
    }
    unusable = {p.video_id for p in problems if p.video_id and p.message.startswith(PROBE_PREFIX)}
    dest = dict(zip(kept["video_id"], kept["video_path"]))
    videos = found.drop_duplicates("video_id")
    return pd.DataFrame(
        {
            "key": videos["video_id"].to_numpy(),
            "dest": [dest.get(v, "") for v in videos["video_id"]],
            "ok": [p != "" and v not in unusable for v, p in zip(videos["video_id"], videos["video_path"])],
            "source": ["local" if p else "" for p in videos["video_path"]],
            "reason": [why.get(v, "") for v in videos["video_id"]],
        }
    )


# --------------------------------------------------------------------------- CLI


def add_cli(sub) -> None:
    p = sub.add_parser("folder", help="build results/corpus/manifest.parquet from a CSV/Parquet manifest + media")
    p.add_argument("manifest", help="CSV or Parquet manifest (columns: see docs/MOSEAS.md, 'folder source')")
    p.add_argument("--media-root", default=".", help="folder holding <video_id>.<ext> media files")
    p.add_argument("--labels", nargs="*", default=[], help="label columns to keep")
    p.add_argument("--languages", nargs="+", default=["fr", "es"])
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--on-invalid", choices=["fail", "drop"], default="fail")
    p.add_argument("--out", default="results/corpus/manifest.parquet")
    p.add_argument("--qc", default="results/qc/corpus/all.parquet")
    p.add_argument("--media-dir", default="results/corpus/media")
    p.add_argument(
        "--allow-outside-root",
        action="store_true",
        help="accept media/transcript paths outside the media root and the manifest's folder",
    )
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    cfg = {
        "manifest": args.manifest,
        "media_root": args.media_root,
        "labels": args.labels,
        "on_invalid": args.on_invalid,
        "allow_outside_root": args.allow_outside_root,
    }
    table = build(cfg, args.languages, args.seed, args.shards, args.out, args.qc, args.media_dir)
    print(f"wrote {args.out}: {table.num_rows} segments")
    return 0


def label_columns_of(cfg: dict) -> list[str]:
    """The folder manifest's label columns (our names): ``sentiment`` and ``corpus.folder.labels``."""
    return ["sentiment", *complete(cfg, "corpus", "folder")["labels"]]


def relabel(
    cfg: dict,
    segments: str | os.PathLike,
    out_manifest: str | os.PathLike,
    out_qc: str | os.PathLike,
) -> pa.Table:
    """The manifest: the corpus job's segments (``segments``, a MANIFEST) with the labels of the
    folder manifest file as it is now.

    A label edited in the folder manifest reaches the store and training through this step alone:
    the corpus job (which validates, probes and links media) re-runs only when what it reads
    besides the labels changes (``polysent.corpus.triggers.folder_digest``). The labels are
    checked as the corpus stage checks them (numbers; sentiment in [-3, 3], the others in
    ``label_range``); a bad value stops with its row named (``on_invalid: fail``) or drops the
    segment with a QC record (``drop``).
    """
    cfg = complete(cfg, "corpus", "folder")
    path = str(cfg["manifest"])
    table = contracts.read(segments, contracts.MANIFEST)
    frame, problems = read_manifest_file(path, cfg["columns"])
    labels = label_columns_of(cfg)
    problems = [p for p in problems if p.fatal] + missing_columns(frame.columns, ["segment_id", *labels], path)
    if problems:
        raise ManifestError(problems, title=f"folder manifest {path}")
    ids = table.column("segment_id").to_pylist()
    rows = frame.drop_duplicates("segment_id", keep="first").set_index("segment_id")
    absent = [s for s in ids if s not in rows.index]
    if absent:
        raise ManifestError(
            [Problem(path, None, f"segment {s} of the corpus stage is no longer in the file", s) for s in absent],
            title=f"folder manifest {path} (re-run the corpus stage: snakemake --forcerun corpus_external)",
        )
    rows = rows.loc[ids]
    qc, bad = QCLog("corpus"), {}
    for col in labels:
        lo, hi = (-3.0, 3.0) if col == "sentiment" else (float(cfg["label_range"][0]), float(cfg["label_range"][1]))
        values = pd.to_numeric(rows[col], errors="coerce").astype(float)
        wrong = ~np.isfinite(values) | (values < lo) | (values > hi)
        for seg in rows.index[wrong.to_numpy()]:
            line = rows.at[seg, "_line"] if "_line" in rows.columns else None
            bad.setdefault(
                seg, Problem(path, line, f"{col} = {rows.at[seg, col]!r} is not a number in [{lo:g}, {hi:g}]", seg)
            )
        rows[col] = values
    if bad and cfg["on_invalid"] == "fail":
        raise ManifestError(list(bad.values()), title=f"folder manifest {path}")
    keep = [s not in bad for s in ids]
    for seg, problem in bad.items():
        qc.add(problem.message, segment_id=seg, video_id=str(rows.at[seg, "video_id"]) if "video_id" in rows else "")
    out = table.filter(pa.array(keep))
    kept = rows[keep]
    for col in labels:
        i = out.schema.get_field_index(col)
        out = out.set_column(i, out.schema.field(i), pa.array(kept[col].to_numpy(np.float32), pa.float32()))
    out = contracts.check(out, contracts.MANIFEST, where=str(out_manifest))
    write_parquet(out_manifest, out, provenance={"source": "folder", "manifest": path, "labels_from": path})
    qc.write(out_qc)
    return out
