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
``split``          no        train/valid/test; default: seeded 80/10/10 split by video
``video_path``     no        default: ``<media_root>/<video_id><ext>`` for the first of
                             ``extensions`` that exists
``audio_path``     no        separate source audio; default empty
label columns      config    every name in ``corpus.folder.labels`` (float, ``label_range``)
=================  ========  ==============================================================

Media are linked (hard link, else copy) into ``results/corpus/media/<lang>/<video_id><ext>``
so that every manifest path is relative to the working directory whatever the source layout.

The module also holds :func:`finish_manifest`, the last step every external source shares:
split, shard, type and contract-check the manifest.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from polysent import contracts
from polysent.corpus.sharding import shard_of
from polysent.corpus.splits import split_frame
from polysent.corpus.validate import (
    ManifestError,
    Problem,
    check_id,
    decode_text,
    missing_columns,
    read_csv_records,
    resolve,
    safe_join,
    validate_rows,
)
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


def link_media(src: str | os.PathLike, dest: Path) -> None:
    """Hard-link (same file system) or copy ``src`` to ``dest`` atomically."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


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
        except Exception as err:  # noqa: BLE001 - any reader error is reported, not raised
            return pd.DataFrame(), [Problem(file, None, f"cannot read Parquet: {err}")]
        frame = frame.rename(columns=rename)
        frame["_file"] = file
        frame["_line"] = np.arange(1, len(frame) + 1)
        return frame, []
    header, records, problems = read_csv_records(path)
    header = [rename.get(h, h) for h in header]
    rows = [{**{rename.get(k, k): v for k, v in rec.items()}, "_file": file, "_line": line} for line, rec in records]
    frame = pd.DataFrame(rows, columns=[*header, "_file", "_line"])
    return frame, problems


def _fill_transcripts(frame: pd.DataFrame, base: Path) -> list[Problem]:
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
        try:
            raw = p.read_bytes()
        except OSError as err:
            problems.append(Problem(str(file), int(line), f"cannot read transcript {rel}: {err.strerror}",
                                    segment_id=_seg(frame, i), video_id=_vid(frame, i)))
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
    order = (
        pd.DataFrame({"v": frame["video_id"].astype(str), "s": starts, "i": range(len(frame))})
        .sort_values(["v", "s", "i"], na_position="last")
    )
    order["n"] = order.groupby("v").cumcount()
    rank = order.sort_values("i")["n"].to_numpy()
    frame["segment_id"] = [
        g if g else f"{v}_{n}" for g, v, n in zip(given, frame["video_id"].astype(str), rank)
    ]


def _resolve_media(frame: pd.DataFrame, cfg: dict, base: Path, media_dir: Path | None) -> list[Problem]:
    """Find each video's file and link it under ``media_dir/<lang>/`` (only check when None)."""
    root = Path(cfg.get("media_root") or ".")
    root = root if root.is_absolute() else base / root
    exts = list(cfg.get("extensions") or [".mp4"])
    given = frame["video_path"] if "video_path" in frame.columns else pd.Series([""] * len(frame))
    problems, paths, linked = [], [], {}
    for i, (vid, lang, g, file, line) in enumerate(
        zip(frame["video_id"], frame["lang"], given.fillna(""), frame["_file"], frame["_line"])
    ):
        key = (vid, lang)
        if key in linked:
            paths.append(linked[key])
            continue
        if check_id(vid) is not None or not isinstance(lang, str) or check_id(lang, "lang") is not None:
            linked[key] = ""  # the unsafe id is reported by validate_rows; never build a path from it
            paths.append("")
            continue
        src = None
        if g:
            p = Path(g) if Path(g).is_absolute() else base / g
            src = p if p.is_file() else None
            missing = f"media file not found: {g}"
        else:
            for ext in exts:
                p = root / f"{vid}{ext}"
                if p.is_file():
                    src = p
                    break
            missing = f"media file not found: {root}/{vid}{{{','.join(exts)}}}"
        if src is None:
            # Video-level: every segment of the video goes (and each gets its QC row in drop mode).
            problems.append(Problem(str(file), int(line), missing, video_id=vid))
            linked[key] = ""
            paths.append("")
            continue
        if media_dir is None:
            dest = src
        else:
            dest = safe_join(media_dir, lang, f"{vid}{src.suffix.lower()}")
            link_media(src, dest)
        linked[key] = str(dest)
        paths.append(str(dest))
    frame["video_path"] = paths
    return problems


def load(
    cfg: dict,
    languages: Sequence[str],
    media_dir: str | os.PathLike | None = None,
    base: str | os.PathLike | None = None,
):
    """Read a folder manifest and find every problem: ``(frame, problems)``.

    With ``media_dir`` the media files are linked there (``video_path`` then points at the
    link); without it their existence is only checked (``polysent validate-manifest``).
    Relative paths in the manifest are taken from ``base`` (default: the manifest's folder).
    Missing columns come back as fatal problems with an empty frame.
    """
    path = Path(cfg["manifest"])
    base = Path(base) if base is not None else path.parent
    frame, problems = read_manifest_file(path, cfg.get("columns"))
    labels = list(cfg.get("labels") or [])
    if frame.empty and problems:
        return frame, problems
    problems += missing_columns(frame.columns, [*REQUIRED, *labels], str(path))
    if "transcript" not in frame.columns and "transcript_path" not in frame.columns:
        problems.append(Problem(str(path), 1, "missing column 'transcript' (or 'transcript_path')"))
    if any(p.fatal for p in problems):
        return pd.DataFrame(), problems
    iso = frame["lang"].isin(list(_iso()))
    lang_ok = frame["lang"].isin(list(languages))
    for lang, n in frame.loc[~lang_ok & iso, "lang"].value_counts().items():
        log.info("skipping %d segment(s) in language '%s' (not in config languages)", n, lang)
    # Unknown codes stay in so that validation reports them.
    frame = frame.loc[lang_ok | ~iso].reset_index(drop=True)
    _fill_segment_ids(frame)
    problems += _fill_transcripts(frame, base)
    if "split" in frame.columns:
        frame["split"] = frame["split"].fillna("").astype(str)
        if (frame["split"] == "").all():
            frame = frame.drop(columns="split")  # not given: drawn by video later
    problems += validate_rows(frame, labels, cfg.get("label_range", (0.0, 1.0)), source=str(path))
    problems += _resolve_media(frame, cfg, base, None if media_dir is None else Path(media_dir))
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
    """Read, validate and link a folder corpus; write the manifest, the QC file and the media report."""
    qc = QCLog("corpus")
    path = Path(cfg["manifest"])
    labels = list(cfg.get("labels") or [])
    frame, problems = load(cfg, languages, media_dir)
    title = f"folder manifest {path}"
    if frame.empty and problems:
        raise ManifestError(problems, title=title)
    n_videos = frame["video_id"].nunique()
    if "split" not in frame.columns and not any(p.fatal for p in problems):
        # Drawn over every video before dropping bad ones: fixing a row later moves no other video.
        keys = frame[["video_id", "lang"]].fillna("").astype(str)
        frame["split"] = split_frame(keys, seed, cfg.get("splits", (0.8, 0.1, 0.1)))
    if out_downloads is not None:
        write_csv(out_downloads, _media_report(frame, problems))
    frame = resolve(frame, problems, cfg.get("on_invalid", "fail"), qc, title=title)
    if n_videos and frame["video_id"].nunique() / n_videos < float(cfg.get("min_success_rate", 0.0)):
        raise ManifestError(problems, title=f"{title} (fewer than min_success_rate "
                            f"{cfg['min_success_rate']:.0%} of the videos are usable)")
    if frame.empty:
        raise ManifestError([Problem(str(path), None, "no usable segment left")], title=title)
    for c in ("start", "end", "sentiment", *labels):
        frame[c] = pd.to_numeric(frame[c])
    table = finish_manifest(frame, labels, seed, shards, cfg.get("splits", (0.8, 0.1, 0.1)), where=str(out_manifest))
    write_parquet(out_manifest, table, provenance={"source": "folder", "manifest": str(path), "config": cfg})
    qc.write(out_qc)
    return table


def _media_report(frame: pd.DataFrame, problems: Sequence[Problem]) -> pd.DataFrame:
    """One row per video: where its media file came from, or why it is missing."""
    why = {p.video_id: p.message for p in problems if p.video_id and "media file" in p.message}
    videos = frame.drop_duplicates("video_id")
    return pd.DataFrame({
        "key": videos["video_id"].to_numpy(),
        "dest": videos["video_path"].to_numpy(),
        "ok": (videos["video_path"] != "").to_numpy(),
        "source": ["local" if p else "" for p in videos["video_path"]],
        "reason": [why.get(v, "") for v in videos["video_id"]],
    })


def _iso():
    from polysent.corpus.validate import ISO_639_1

    return ISO_639_1


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
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    cfg = {"manifest": args.manifest, "media_root": args.media_root, "labels": args.labels,
           "on_invalid": args.on_invalid}
    table = build(cfg, args.languages, args.seed, args.shards, args.out, args.qc, args.media_dir)
    print(f"wrote {args.out}: {table.num_rows} segments")
    return 0
