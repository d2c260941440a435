#!/usr/bin/env python
"""Benchmark: build the default demo corpus with Snakemake, as a user does (issue 2, items 4-5).

Copies the workflow into a temporary folder (no results, no .snakemake), runs

    snakemake --cores N results/corpus/manifest.parquet

with the default config (or ``--configfile``), and measures the wall time of the whole command
(Snakemake start-up and DAG included). After each run it checks the acceptance criteria:
segments per language, every video playable by ffprobe (one H.264 + one AAC stream), and the
manifest bytes identical across repeats. Prints a Markdown table row (median of ``--repeat``
runs) for docs/BENCHMARKS.md, section "Demo corpus".

    .venv/bin/python scripts/bench_corpus.py [--cores 2] [--repeat 3] [--configfile FILE] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(
    ".venv", "results", "logs", "benchmarks", ".snakemake", "__pycache__", ".git", ".pytest_cache"
)
TARGET = "results/corpus/manifest.parquet"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def playable(path: Path) -> bool:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True,
    )  # fmt: skip
    return out.returncode == 0 and sorted(out.stdout.split()) == ["aac", "h264"]


def run_once(wf: Path, cores: int, configfile: str | None) -> dict:
    for d in ("results", "logs", "benchmarks", ".snakemake"):
        shutil.rmtree(wf / d, ignore_errors=True)
    cmd = [sys.executable, "-m", "snakemake", TARGET, "--cores", str(cores)]
    if configfile:
        cmd += ["--configfile", configfile]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=wf, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    m = pd.read_parquet(wf / TARGET)
    videos = sorted(set(m["video_path"]))
    bad = [v for v in videos if not playable(wf / v)]
    bench = pd.read_csv(wf / "benchmarks/corpus/demo.tsv", sep="\t")
    frames = sum(int(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=nb_frames",
         "-of", "csv=p=0", str(wf / v)], capture_output=True, text=True).stdout.strip() or 0) for v in videos)  # fmt: skip
    return {
        "wall": wall,
        "job_s": float(bench["s"].iloc[0]),
        "cpu_s": float(bench["cpu_time"].iloc[0]),
        "segments": m.groupby("lang").size().to_dict(),
        "videos": len(videos),
        "unplayable": bad,
        "frames": frames,
        "sha": hashlib.sha256((wf / TARGET).read_bytes()).hexdigest()[:16],
        "media_mb": sum(f.stat().st_size for f in (wf / "results/corpus/media").rglob("*") if f.is_file()) / 2**20,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--configfile", help="config file relative to the repository (default: config/config.yaml)")
    ap.add_argument("--keep", help="build in this folder and keep it (default: a temporary folder)")
    args = ap.parse_args()

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_corpus_"))
    wf = root / "wf"
    shutil.copytree(REPO, wf, ignore=IGNORE, dirs_exist_ok=True)
    runs = []
    try:
        for i in range(args.repeat):
            r = run_once(wf, args.cores, args.configfile)
            runs.append(r)
            print(
                f"run {i + 1}: wall {r['wall']:.1f} s (job {r['job_s']:.1f} s, cpu {r['cpu_s']:.1f} s), "
                f"segments {r['segments']}, videos {r['videos']}, frames {r['frames']}, "
                f"unplayable {len(r['unplayable'])}, manifest sha256 {r['sha']}, media {r['media_mb']:.0f} MiB",
                flush=True,
            )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    ok_play = all(not r["unplayable"] for r in runs)
    same = len({r["sha"] for r in runs}) == 1
    min_seg = min(min(r["segments"].values()) for r in runs)
    load = os.getloadavg()[0]
    print()
    print(f"machine: {os.cpu_count()} CPUs ({cpu_name()}), Python {platform.python_version()}, load1 {load:.1f} at end")
    print("| config | cores | wall s (median) | job s | CPU s | segments/lang (min) | videos | frames | all playable | manifest identical |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.configfile or 'config/config.yaml'} | {args.cores} | "
        f"{statistics.median(r['wall'] for r in runs):.1f} | {statistics.median(r['job_s'] for r in runs):.1f} | "
        f"{statistics.median(r['cpu_s'] for r in runs):.1f} | {min_seg} | {runs[0]['videos']} | {runs[0]['frames']} | "
        f"{'yes' if ok_play else 'NO'} | {'yes' if same else 'NO'} ({len(runs)} runs) |"
    )
    return 0 if ok_play and same else 1


if __name__ == "__main__":
    sys.exit(main())
