"""Frame-level feature extraction shared by the acoustic and visual stages.

Both stages turn the segments of one shard into a frame store (contract ``FRAMES`` /
``VISUAL_FRAMES``): one row per frame with ``segment_id``, ``time`` (seconds from the segment
start) and named float32 feature columns. This module holds what they share: reading a shard's
segments from the manifest, assembling the Arrow table with a fixed schema (so an empty shard still
has every feature column), package versions for provenance and the CLI config helpers.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from polysent import contracts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Segment:
    segment_id: str
    video_id: str
    start: float
    end: float
    video_path: str
    audio_path: str


def shard_segments(manifest: str | os.PathLike, shard: str | int | None) -> list[Segment]:
    """Segments of ``shard`` (``"003"`` or ``3``; ``None`` = all), in manifest order."""
    table = contracts.read(manifest, contracts.MANIFEST)
    cols = ["segment_id", "video_id", "start", "end", "video_path", "audio_path", "shard"]
    df = table.select(cols).to_pandas()
    if shard is not None:
        df = df[df["shard"] == int(shard)]
    return [
        Segment(
            str(r.segment_id),
            str(r.video_id),
            float(r.start),
            float(r.end),
            str(r.video_path or ""),
            str(r.audio_path or ""),
        )
        for r in df.itertuples(index=False)
    ]


def group_by_video(segments: Iterable[Segment]) -> dict[str, list[Segment]]:
    """Segments per video, videos in order of first appearance (deterministic output order)."""
    out: dict[str, list[Segment]] = {}
    for seg in segments:
        out.setdefault(seg.video_id, []).append(seg)
    return out


@dataclass
class SegmentFrames:
    """Frames of one segment: ``features`` is (T, D) in the extractor's column order."""

    segment_id: str
    time: np.ndarray
    features: np.ndarray
    success: np.ndarray | None = None
    confidence: np.ndarray | None = None


def frames_schema(feature_names: Sequence[str], visual: bool = False) -> pa.Schema:
    fields = [pa.field("segment_id", pa.string()), pa.field("time", pa.float64())]
    if visual:
        fields += [pa.field("success", pa.bool_()), pa.field("confidence", pa.float32())]
    fields += [pa.field(n, pa.float32()) for n in feature_names]
    return pa.schema(fields)


def frames_table(parts: Sequence[SegmentFrames], feature_names: Sequence[str], visual: bool = False) -> pa.Table:
    """One Arrow table (contract FRAMES or VISUAL_FRAMES) from per-segment frame arrays."""
    schema = frames_schema(feature_names, visual)
    d = len(feature_names)
    ids = [p.segment_id for p in parts for _ in range(len(p.time))]
    time = np.concatenate([np.asarray(p.time, np.float64) for p in parts]) if parts else np.zeros(0)
    feats = (
        np.concatenate([np.asarray(p.features, np.float32).reshape(-1, d) for p in parts])
        if parts
        else np.zeros((0, d), np.float32)
    )
    cols: dict[str, Any] = {"segment_id": pa.array(ids, pa.string()), "time": pa.array(time)}
    if visual:
        succ = np.concatenate([p.success for p in parts]).astype(bool) if parts else np.zeros(0, bool)
        conf = np.concatenate([p.confidence for p in parts]).astype(np.float32) if parts else np.zeros(0, np.float32)
        cols["success"] = pa.array(succ)
        cols["confidence"] = pa.array(conf)
    for j, name in enumerate(feature_names):
        cols[name] = pa.array(np.ascontiguousarray(feats[:, j]))
    table = pa.table(cols, schema=schema)
    contract = contracts.VISUAL_FRAMES if visual else contracts.FRAMES
    return contracts.check(table, contract, where="frames table")


def versions(*packages: str) -> dict[str, str]:
    """Installed versions of ``packages`` (for provenance); missing ones are reported as such."""
    out = {}
    for name in ("polysent", *packages):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


# ---------------------------------------------------------------------------------------------
# CLI helpers: a stage run on one file uses the same config slice (with schema defaults) as the
# workflow, so `polysent acoustic` and the Snakemake rule give the same numbers.


def schema_dir() -> Path:
    """The workflow's config schemas (see :func:`polysent.config.schema_dir`)."""
    from polysent.config import schema_dir as find

    return find()


def stage_config(section: str, config_path: str | None, sets: Sequence[str] = ()) -> dict:
    """Config slice ``section`` from ``config_path`` (or schema defaults), with ``KEY=VALUE`` overrides.

    Keys of ``sets`` are dotted paths inside the section (``librosa.n_fft=1024``); values are YAML.
    """
    from polysent.cliargs import dotted_overrides
    from polysent.config import deep_merge, load_config, validate_config

    overrides = dotted_overrides(sets, section)
    if config_path:
        config = load_config(config_path, schema_dir(), overrides)
    else:
        config = validate_config(deep_merge({}, overrides), schema_dir())
    return config[section]


def add_config_args(parser) -> None:
    parser.add_argument(
        "--config",
        metavar="YAML",
        help="workflow config file to take the stage's settings from (default: schema defaults)",
    )
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a key of the stage's config slice, dotted (repeatable), e.g. --set librosa.n_fft=1024",
    )


def add_file_args(parser, input_help: str, output_help: str) -> None:
    """Single-file mode: the positional INPUT and OUTPUT (optional, as shard mode takes neither)."""
    parser.add_argument("input", nargs="?", help=input_help)
    parser.add_argument("output", nargs="?", help=output_help)


def add_segment_args(parser) -> None:
    """Single-file mode: which span of the input is the segment, and its id."""
    parser.add_argument("--start", type=float, default=0.0, help="segment start in seconds")
    parser.add_argument("--end", type=float, default=None, help="segment end in seconds (default: the file's end)")
    parser.add_argument("--segment-id", help="segment_id to write (default: the input's file stem)")


def add_shard_args(parser, outputs: dict[str, str], threads_help: str = "worker processes") -> None:
    """Shard mode: the manifest and shard, the stage's ``outputs`` (flag -> help), QC and threads."""
    parser.add_argument("--manifest", help="manifest Parquet (shard mode)")
    parser.add_argument("--shard", help="shard id such as 000 (shard mode)")
    for flag, help_text in outputs.items():
        parser.add_argument(flag, help=f"{help_text} (shard mode)")
    parser.add_argument("--qc", help="QC Parquet to write (shard mode)")
    parser.add_argument("--threads", type=int, default=1, help=f"{threads_help} (shard mode)")
    add_config_args(parser)


def require_shard_args(args, *names: str) -> None:
    """Fail with the missing flags when shard mode (--manifest) lacks one of ``names``."""
    missing = [n for n in ("shard", *names, "qc") if getattr(args, n) is None]
    if missing:
        raise SystemExit(f"shard mode needs --{', --'.join(m.replace('_', '-') for m in missing)}")


def shard_mode(args, *names: str) -> bool:
    """True in shard mode (--manifest; then the shard flags ``names`` are required), False in
    single-file mode (then INPUT and OUTPUT are)."""
    if args.manifest:
        require_shard_args(args, *names)
        return True
    if not (args.input and args.output):
        raise SystemExit("give INPUT and OUTPUT (single file) or --manifest/--shard (shard mode)")
    return False
