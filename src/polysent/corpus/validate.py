"""``polysent validate-manifest``: check a corpus manifest before anything runs.

The checks themselves live in :mod:`polysent.corpus.checks` (shared by every corpus source);
this module is the command line on top of the folder source's reader. It re-exports the checks'
public names so that ``from polysent.corpus.validate import ManifestError`` keeps working.
"""

from __future__ import annotations

from polysent.config import schema_defaults
from polysent.corpus import folder
from polysent.corpus.checks import (  # re-exported: older code imports them from here
    ISO_639_1,
    ManifestError,
    Problem,
    check_id,
    decode_text,
    missing_columns,
    parse_float,
    probe_problems,
    read_csv_records,
    resolve,
    safe_join,
    validate_rows,
)

__all__ = [
    "ISO_639_1",
    "ManifestError",
    "Problem",
    "check_id",
    "decode_text",
    "missing_columns",
    "parse_float",
    "probe_problems",
    "read_csv_records",
    "resolve",
    "safe_join",
    "validate_rows",
    "add_cli",
]

# --------------------------------------------------------------------------- CLI


def add_cli(sub) -> None:
    p = sub.add_parser(
        "validate-manifest",
        help="check a corpus manifest (CSV/Parquet, folder-source columns or a built manifest.parquet)",
        description="Lists every problem (file:line: message) and exits 1 if there is any. "
        "--probe also opens every media file with ffprobe.",
    )
    p.add_argument("manifest", help="CSV or Parquet manifest")
    p.add_argument(
        "--labels",
        nargs="*",
        default=None,
        help="label columns (default: every float column of a built manifest, none for CSV)",
    )
    p.add_argument("--label-range", nargs=2, type=float, default=(0.0, 1.0), metavar=("MIN", "MAX"))
    p.add_argument("--languages", nargs="*", default=None, help="languages to check (default: all in the file)")
    p.add_argument("--media-root", default=".", help="folder of <video_id><ext> files for rows without video_path")
    p.add_argument(
        "--paths-relative-to",
        metavar="DIR",
        default=None,
        help="folder that relative video/transcript paths start from (default: the manifest's "
        "folder; for a built manifest with a 'shard' column, the working directory, i.e. the "
        "workflow root its paths were written from)",
    )
    p.add_argument(
        "--allow-outside-root",
        action="store_true",
        help="accept media/transcript paths that resolve outside the media root and the "
        "manifest's folder (corpus.folder.allow_outside_root); refused by default",
    )
    p.add_argument(
        "--probe",
        action="store_true",
        help="also ffprobe every media file (in parallel): unreadable, truncated, no video or audio "
        "stream, audio shorter than the video's last segment end",
    )
    p.add_argument(
        "--probe-jobs",
        type=int,
        default=None,
        metavar="N",
        help="ffprobe processes at once (default: the number of CPUs)",
    )
    p.add_argument(
        "--probe-tolerance",
        type=float,
        default=None,
        metavar="S",
        help="seconds a segment may end after the audio (default: corpus.folder.probe_tolerance)",
    )
    p.add_argument("--ffprobe", default="ffprobe", help="ffprobe binary (default: the one on PATH)")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    labels, base = args.labels, args.paths_relative_to
    if str(args.manifest).endswith(".parquet"):
        from polysent.contracts import label_columns
        from polysent.io import read_schema

        schema = read_schema(args.manifest, role="corpus manifest")  # not Parquet: one line
        if labels is None:
            labels = label_columns(schema)
        if base is None and "shard" in schema.names:
            base = "."  # the workflow writes media paths relative to its root
    cfg = {
        "manifest": args.manifest,
        "labels": labels or [],
        "label_range": list(args.label_range),
        "media_root": args.media_root,
        "allow_outside_root": args.allow_outside_root,
    }
    languages = args.languages or sorted(ISO_639_1)
    tolerance = (
        args.probe_tolerance
        if args.probe_tolerance is not None
        else schema_defaults("corpus", "folder")["probe_tolerance"]
    )
    frame, problems = folder.load(cfg, languages, base=base)
    if args.probe and not any(p.fatal for p in problems):
        problems += probe_problems(frame, args.ffprobe, tolerance, args.probe_jobs, progress=True)
    if problems:
        print(ManifestError(problems, title=f"manifest {args.manifest}"))
        return 1
    if frame.empty:  # a header-only file (or no row in the checked languages) trains nothing
        langs = f" in {', '.join(args.languages)}" if args.languages else ""
        print(f"{args.manifest}: no segment{langs}; nothing to run on (add rows, or check --languages)")
        return 1
    print(f"{args.manifest}: {len(frame)} segment(s), {frame['video_id'].nunique()} video(s), no problems")
    return 0
