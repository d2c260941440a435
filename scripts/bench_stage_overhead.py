"""Per-shard CPU of the media and visual stages at two revisions, side by side, outputs compared.

    .venv/bin/python scripts/bench_stage_overhead.py --workdir /tmp/ds --old-src /tmp/ds/src
        [--new-src src] [--stages media visual] [--shards 000 001] [--repeat 2]

``--workdir`` is a workflow folder that has run the corpus (``results/corpus/``) under the config
given by ``--config`` (default: its ``config/config.yaml``). Each run is a fresh Python process
that imports ``polysent`` from ``--old-src`` or ``--new-src`` and calls the stage's ``run_shard``
with ``threads`` workers (as the rule does) into the same output path; old and new alternate
within every repeat, so load changes hit both alike. CPU = user + system of that process and
every process it waited for (ffmpeg, ffprobe, pool workers), from ``RUSAGE_CHILDREN``. After each
run the sha256 of every output file (WAVs + media index, the visual Parquet) is recorded: the
script fails if the two revisions, or two repeats, wrote different bytes. Prints a Markdown table
of medians and the new/old ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RUN = """
import sys, yaml
from polysent import media
from polysent.features import visual
stage, shard, out, cfg_path, threads = sys.argv[1:6]
cfg = yaml.safe_load(open(cfg_path))[stage]
module = media if stage == "media" else visual
module.run_shard("results/corpus/manifest.parquet", shard, out, out + ".qc.parquet", cfg,
                 threads=int(threads), progress=False)
"""


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def digest(path: Path) -> dict[str, str]:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def run(src: Path, stage: str, shard: str, args) -> tuple[float, float, dict]:
    out = Path(args.workdir) / "bench_overhead" / stage / (shard if stage == "media" else f"{shard}.parquet")
    shutil.rmtree(out.parent, ignore_errors=True)
    out.parent.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", RUN, stage, shard, str(out), str(args.config), str(args.threads)]
    cpu0, wall0 = children_cpu(), time.perf_counter()
    subprocess.run(cmd, cwd=args.workdir, env=env, check=True)
    cpu, wall = children_cpu() - cpu0, time.perf_counter() - wall0
    return cpu, wall, digest(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--old-src", required=True, type=Path)
    ap.add_argument("--new-src", default=ROOT / "src", type=Path)
    ap.add_argument("--config", default=None)
    ap.add_argument("--stages", nargs="+", default=["media", "visual"], choices=["media", "visual"])
    ap.add_argument("--shards", nargs="+", default=["000", "001"])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    args.config = Path(args.config or Path(args.workdir) / "config/config.yaml").resolve()
    variants = {"old": args.old_src.resolve(), "new": args.new_src.resolve()}
    load0 = os.getloadavg()[0]
    cpu: dict = {}
    wall: dict = {}
    hashes: dict = {}
    for rep in range(args.repeat):
        for stage in args.stages:
            for shard in args.shards:
                order = list(variants) if rep % 2 == 0 else list(reversed(variants))
                for name in order:
                    c, w, h = run(variants[name], stage, shard, args)
                    key = (stage, shard)
                    cpu.setdefault((*key, name), []).append(c)
                    wall.setdefault((*key, name), []).append(w)
                    if hashes.setdefault(key, h) != h:
                        raise SystemExit(f"{stage} {shard}: {name} (repeat {rep}) wrote different bytes")
                    print(f"{stage} {shard} {name}: {c:.2f} CPU-s, {w:.1f} s wall", flush=True)
    load1 = os.getloadavg()[0]
    print(
        f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
        f"{load0:.1f} -> {load1:.1f}; threads {args.threads}; repeats {args.repeat}\n"
    )
    print("| stage | shard | files compared | old CPU-s | new CPU-s | new/old |")
    print("|---|---|---:|---:|---:|---:|")
    for stage, shard in hashes:
        old = statistics.median(cpu[(stage, shard, "old")])
        new = statistics.median(cpu[(stage, shard, "new")])
        n_files = len(hashes[(stage, shard)])
        print(f"| {stage} | {shard} | {n_files} identical | {old:.2f} | {new:.2f} | {new / old:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
