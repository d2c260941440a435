#!/usr/bin/env python
"""Benchmark: demo corpus synthesis, today's code vs a baseline commit, side by side.

The baseline is the synthesizer as it was before the speed work (``--baseline``, a commit of
this repository): its ``src/``, ``workflow/schemas/`` and ``resources/`` are extracted read-only
with ``git archive`` into a temporary folder, so the old path runs exactly as it was, with no
legacy switch left in the library. Each repeat builds the corpus of ``--configfile`` (only its
``languages``, ``seed``, ``shards`` and ``corpus`` keys, validated by each tree's own schema)
once with each tree, in a fresh Python process each (``build_demo_corpus``, ``--workers``
processes, as rule corpus_demo runs it), alternating which goes first.

Per run it records the wall time and the CPU time (the process and all its children: ffmpeg,
espeak-ng) of the ``build_demo_corpus`` call, the SHA-256 of the manifest and of every media
file, whether every mp4 holds one H.264 and one AAC stream and decodes (opened with PyAV after
the timed call), and the manifest's per-language segment counts and label distribution. It prints the
medians, the segments/s ratio new/old (wall and CPU), whether each tree's manifest and media
are byte-identical across its runs, and whether the planned content (segments, transcripts,
labels, splits) is the same for both trees. Prints a Markdown row for docs/BENCHMARKS.md.

    .venv/bin/python scripts/bench_corpus.py [--repeat 3] [--workers 2] [--configfile config/config.yaml]
        [--baseline REV] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

from polysent.filehash import sha256_file

REPO = Path(__file__).resolve().parents[1]
# The baseline the corpus builder is compared with: one espeak-ng process per word, x264
# veryfast + two-loop AAC, per-triangle Python rasterisation of the face bank's warps.
BASELINE = "c22bab3167dc5d9d85015f2fd8746ae2effe3749"

RUNNER = r"""
import json, resource, sys, time, yaml
from pathlib import Path
tree, configfile, overrides, workers = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
from polysent.config import deep_merge, validate_config
from polysent.corpus.demo import build_demo_corpus
raw = yaml.safe_load(Path(configfile).read_text())
slice_ = {k: raw[k] for k in ("languages", "seed", "shards", "corpus") if k in raw}
config = validate_config(deep_merge(slice_, {"corpus": {"demo": overrides}}), tree / "workflow" / "schemas")
def cpu():
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime
c0, t0 = cpu(), time.perf_counter()
m = build_demo_corpus(cfg=config["corpus"]["demo"], languages=config["languages"], seed=config["seed"],
    shards=config["shards"], resources_dir=tree / "resources" / "demo", manifest_path="manifest.parquet",
    word_truth_path="word_truth.parquet", truth_path="demo_truth.parquet", cutaways_path="cutaways.parquet",
    media_dir="media", qc_path="qc.parquet", workers=workers)
import polysent
print(json.dumps({"wall": time.perf_counter() - t0, "cpu": cpu() - c0, "segments": m.num_rows, "module": polysent.__file__}))
"""


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def extract(rev: str, dest: Path) -> Path:
    """``src``, ``workflow/schemas`` and ``resources`` of commit ``rev`` under ``dest``."""
    data = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", rev, "src", "workflow/schemas", "resources"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def playable(mp4: Path) -> bool:
    """One H.264 and one AAC stream, and the first video frame decodes (ffprobe's view, in-process)."""
    import av

    try:
        with av.open(str(mp4)) as c:
            codecs = sorted(st.codec_context.name for st in c.streams)
            next(c.decode(video=0))
        return codecs == ["aac", "h264"]
    except (av.error.FFmpegError, StopIteration):
        return False


def run_once(tree: Path, out: Path, configfile: str, overrides: dict, workers: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(tree), configfile, json.dumps(overrides), str(workers)],
        cwd=out, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"build with {tree} failed ({proc.returncode}):\n{proc.stderr[-5000:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    if not Path(r["module"]).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"the build meant to run {tree} imported {r['module']}")
    import pandas as pd

    m = pd.read_parquet(out / "manifest.parquet")
    media = sorted(p for p in (out / "media").rglob("*") if p.is_file())
    r["manifest_sha"] = sha256_file(out / "manifest.parquet")
    r["media_sha"] = hashlib.sha256(
        "".join(f"{p.relative_to(out)}:{sha256_file(p)}\n" for p in media).encode()
    ).hexdigest()
    r["mp4_mib"] = sum(p.stat().st_size for p in media if p.suffix == ".mp4") / 2**20
    r["wav_mib"] = sum(p.stat().st_size for p in media if p.suffix == ".wav") / 2**20
    r["playable"] = all(playable(p) for p in media if p.suffix == ".mp4")
    r["per_lang"] = m.groupby("lang").size().to_dict()
    # What planning decides (must not change with the speed work): ids, texts, labels, splits.
    planned = m[["segment_id", "lang", "split", "transcript", "sentiment"]].to_csv(index=False)
    r["planned_sha"] = hashlib.sha256(planned.encode()).hexdigest()
    r["labels"] = {
        "neutral": float((m["sentiment"].abs() <= 0.5).mean()),
        "positive": float((m["sentiment"] > 0.5).mean()),
        "negative": float((m["sentiment"] < -0.5).mean()),
        "mean": float(m["sentiment"].mean()),
    }
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="render processes (rule corpus_demo: its threads)")
    ap.add_argument("--configfile", default="config/config.yaml", help="relative to the repository")
    ap.add_argument("--baseline", default=BASELINE, help=f"commit of the old path (default {BASELINE[:10]})")
    ap.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="corpus.demo override (top-level keys)"
    )
    args = ap.parse_args()
    import yaml

    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    configfile = str((REPO / args.configfile).resolve())
    root = Path(tempfile.mkdtemp(prefix="bench_corpus_"))
    trees = {"old": extract(args.baseline, root / "old_tree"), "new": REPO}
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    try:
        for i in range(args.repeat):
            order = ("old", "new") if i % 2 == 0 else ("new", "old")
            for name in order:
                r = run_once(trees[name], root / f"out_{name}", configfile, overrides, args.workers)
                runs[name].append(r)
                print(
                    f"run {i + 1} {name}: {r['segments']} segments in {r['wall']:.1f} s wall, {r['cpu']:.1f} CPU s "
                    f"({r['segments'] / r['wall']:.2f} segments/s); manifest {r['manifest_sha'][:12]}, "
                    f"media {r['media_sha'][:12]}, mp4 {r['mp4_mib']:.1f} MiB, wav {r['wav_mib']:.1f} MiB; "
                    f"load1 {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)

    def med(name, key):
        return statistics.median(r[key] for r in runs[name])

    seg = runs["new"][0]["segments"]
    rate = {n: statistics.median(r["segments"] / r["wall"] for r in runs[n]) for n in runs}
    cpu_rate = {n: statistics.median(r["segments"] / r["cpu"] for r in runs[n]) for n in runs}
    same = {n: len({(r["manifest_sha"], r["media_sha"]) for r in runs[n]}) == 1 for n in runs}
    same_plan = len({r["planned_sha"] for n in runs for r in runs[n]}) == 1
    play = {n: all(r["playable"] for r in runs[n]) for n in runs}
    print()
    print(
        f"machine: {os.cpu_count()} CPUs ({cpu_name()}), Python {platform.python_version()}, load1 {os.getloadavg()[0]:.1f} at end"
    )
    print(f"segments per language: old {runs['old'][0]['per_lang']}, new {runs['new'][0]['per_lang']}")
    print(f"labels: old {runs['old'][0]['labels']}, new {runs['new'][0]['labels']}")
    print(
        "| config | workers | segments | old s (median) | new s (median) | segments/s old → new | ratio (wall) "
        "| ratio (CPU s per segment) | mp4 MiB old → new | manifest + media identical across runs (old, new) "
        "| same planned segments, texts, labels | every mp4 H.264 + AAC, decodes (old, new) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.configfile} | {args.workers} | {seg} | {med('old', 'wall'):.1f} | {med('new', 'wall'):.1f} | "
        f"{rate['old']:.2f} → {rate['new']:.2f} | {rate['new'] / rate['old']:.2f}× | "
        f"{cpu_rate['new'] / cpu_rate['old']:.2f}× | {med('old', 'mp4_mib'):.0f} → {med('new', 'mp4_mib'):.0f} | "
        f"{'yes' if same['old'] else 'NO'}, {'yes' if same['new'] else 'NO'} ({args.repeat} runs each; new manifest "
        f"sha256 {runs['new'][0]['manifest_sha'][:12]}…) | "
        f"{'yes' if same_plan else 'NO'} | "
        f"{'yes' if play['old'] else 'NO'}, {'yes' if play['new'] else 'NO'} |"
    )
    print(
        f"wall s per run: old {[round(r['wall'], 1) for r in runs['old']]}, new {[round(r['wall'], 1) for r in runs['new']]}"
    )
    print(
        f"CPU s per run: old {[round(r['cpu'], 1) for r in runs['old']]}, new {[round(r['cpu'], 1) for r in runs['new']]}"
    )
    return 0 if same["new"] and same_plan and play["new"] else 1


if __name__ == "__main__":
    sys.exit(main())
