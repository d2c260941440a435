#!/usr/bin/env python
"""Benchmark: how long Snakemake takes to plan the DAG of a MOSEAS-sized corpus.

Builds a synthetic corpus for the ``folder`` source in a private copy of the workflow: 4 languages
x 1,000 videos x 10 segments = 40,000 segments (sizes are options), one placeholder media file
per video (empty files: a dry run never opens them; the manifest says so in its name), and times
``snakemake --dry-run`` in two states:

  fresh   nothing built yet (the corpus job itself is still pending)
  corpus  after the real corpus job has built results/corpus/manifest.parquet from the
          synthetic folder manifest, so input functions that read the manifest are exercised

The shard count comes from the config (``--shards`` writes it into the benchmark config).
Prints one Markdown table row per state (median of ``--repeat`` runs) for docs/BENCHMARKS.md.

    .venv/bin/python scripts/bench_dag.py [--langs fr es pt de] [--videos 1000]
        [--segments 10] [--shards 64] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(
    ".venv", "results", "logs", "benchmarks", ".snakemake", "__pycache__", ".git", ".pytest_cache"
)


def write_corpus(root: Path, langs: list[str], videos: int, segments: int) -> Path:
    """Synthetic folder-source corpus: manifest.csv + one empty placeholder .mp4 per video."""
    media = root / "media"
    media.mkdir(parents=True)
    manifest = root / "synthetic_placeholder_manifest.csv"
    with manifest.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["video_id", "lang", "start", "end", "transcript", "sentiment"])
        for lang in langs:
            for v in range(videos):
                video_id = f"{lang}_synth{v:05d}"
                (media / f"{video_id}.mp4").touch()
                for s in range(segments):
                    sentiment = ((v * 7 + s * 3) % 13 - 6) / 2  # spread over [-3, 3]
                    out.writerow(
                        [
                            video_id,
                            lang,
                            f"{s * 5.0:.1f}",
                            f"{s * 5.0 + 4.0:.1f}",
                            f"synthetic segment {s} of {video_id}",
                            f"{sentiment:.1f}",
                        ]
                    )
    return manifest


def bench_config(wf: Path, manifest: Path, langs: list[str], shards: int) -> Path:
    config = {
        "languages": langs,
        "shards": shards,
        "corpus": {
            "source": "folder",
            "folder": {"manifest": str(manifest), "media_root": "media"},
        },
    }
    path = wf / "config" / "bench_dag.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(wf: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=wf,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def time_dry_run(wf: Path, config: Path, repeat: int, targets: list[str]) -> tuple[list[float], int]:
    times, jobs = [], -1
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = snakemake(wf, *targets, "--dry-run", "--quiet", "rules", "--configfile", str(config))
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            sys.exit(f"dry run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
        m = re.search(r"^total\s+(\d+)$", proc.stdout + proc.stderr, re.M)
        jobs = int(m.group(1)) if m else 0
    return times, jobs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--langs", nargs="+", default=["fr", "es", "pt", "de"])
    ap.add_argument("--videos", type=int, default=1000, help="videos per language")
    ap.add_argument("--segments", type=int, default=10, help="segments per video")
    ap.add_argument("--shards", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cores", type=int, default=2, help="cores for the real corpus job")
    ap.add_argument("--keep", type=Path, help="build in this folder and keep it")
    ap.add_argument(
        "--targets",
        nargs="*",
        default=[],
        help="dry-run these targets (default: the default target)",
    )
    args = ap.parse_args(argv)

    tmp = args.keep or Path(tempfile.mkdtemp(prefix="polysent-bench-dag-"))
    try:
        wf = tmp / "wf"
        shutil.copytree(REPO, wf, ignore=IGNORE, dirs_exist_ok=True)
        manifest = write_corpus(tmp / "corpus", args.langs, args.videos, args.segments)
        config = bench_config(wf, manifest, args.langs, args.shards)
        n_segments = len(args.langs) * args.videos * args.segments
        rows = []
        fresh, jobs = time_dry_run(wf, config, args.repeat, args.targets)
        rows.append(("fresh", fresh, jobs))
        t0 = time.perf_counter()
        proc = snakemake(
            wf,
            "results/corpus/manifest.parquet",  # targets before --configfile (nargs="+")
            "--cores",
            str(args.cores),
            "--configfile",
            str(config),
        )
        corpus_s = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"corpus job failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
        after, jobs = time_dry_run(wf, config, args.repeat, args.targets)
        rows.append(("corpus built", after, jobs))

        machine = f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        print(
            f"\nbench_dag: {n_segments} segments ({len(args.langs)} langs x {args.videos} videos x "
            f"{args.segments} segments), shards={args.shards}, {machine}"
        )
        print(f"real corpus job (folder source, {n_segments} rows): {corpus_s:.1f} s\n")
        print("| state | segments | shards | jobs planned | dry-run median (s) | runs (s) |")
        print("|---|---|---|---|---|---|")
        for state, times, n in rows:
            runs = ", ".join(f"{t:.1f}" for t in times)
            print(f"| {state} | {n_segments} | {args.shards} | {n} | {statistics.median(times):.1f} | {runs} |")
        worst = max(statistics.median(t) for _, t, _ in rows)
        return 0 if worst <= 60 else 1
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
