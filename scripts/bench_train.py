"""Benchmark: the train stage as one process per run (before) vs one process per training group (now).

    .venv/bin/python scripts/bench_train.py WORKDIR [--seeds 1 2 3] [--max-epochs N] [--repeats 1]
        [--experiments a b ...]

Both paths run side by side on the same *synthetic* stores of the demo corpus's size (as
``scripts/bench_models.py --table1``: 38 videos x 5 segments per language) with
config/config.yaml's ``train:`` section and the experiments its ``report:`` section selects
(or ``--experiments``). Each Snakemake job is a fresh Python process, so each path runs its
jobs as fresh processes:

* per run (the rule before issue 13): one process per (experiment, seed), ``run_experiment``;
* per group (rule ``train`` now): one process per training group, ``run_group``.

Reported: processes, trainings, summed wall time of each path (median over ``--repeats``), their
ratio, and whether every run folder is byte-identical between the two paths (it must be).
``--max-epochs`` shortens every run for a quick check (it makes start-up a larger share).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
WORKER = """
import json, sys
from polysent.train import run_experiment, run_group
spec = json.load(open(sys.argv[1]))
if spec["kind"] == "run":
    run_experiment(spec["stores"], spec["entry"], spec["train"], spec["seed"], spec["out_dir"],
                   exp_name=spec["name"], threads=1)
else:
    run_group(spec["stores"], spec["members"], spec["train"], spec["runs"], threads=1)
"""


def write_stores(workdir: Path) -> dict[str, str]:

    from polysent.synthetic import write_benchmark_stores

    return write_benchmark_stores(workdir, emotions=("confident", "happiness", "relaxed"), paths_as_str=True)


def demo_plan(names: list[str] | None, seeds: list[int]):
    """The demo's experiments (validated, defaults filled), train section and training groups."""
    from polysent.config import deep_merge, validate_config
    from polysent.experiments import training_groups
    from polysent.report import runs

    config = deep_merge(
        yaml.safe_load((REPO / "config" / "config.yaml").read_text()),
        yaml.safe_load((REPO / "config" / "experiments.yaml").read_text()),
    )
    config = validate_config(config, REPO / "workflow" / "schemas")
    experiments = config["experiments"]
    if not names:
        names = runs.select(experiments, config["report"], "table1") + runs.select(
            experiments, config["report"], "emotions"
        )
    groups = training_groups(experiments, names, lambda entry: seeds)
    return experiments, config["train"], groups


def run_process(spec: dict, path: Path) -> float:
    path.write_text(json.dumps(spec))
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", WORKER, str(path)], check=True, cwd=REPO, env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    return time.perf_counter() - t0


def per_run(workdir: Path, stores, experiments, train, groups) -> float:
    total = 0.0
    for group in groups.values():
        for name, seeds in group["members"].items():
            for seed in seeds:
                spec = {
                    "kind": "run",
                    "stores": stores,
                    "entry": experiments[name],
                    "train": train,
                    "seed": seed,
                    "out_dir": str(workdir / name / f"seed{seed}"),
                    "name": name,
                }
                total += run_process(spec, workdir / f"{name}.seed{seed}.json")
    return total


def per_group(workdir: Path, stores, experiments, train, groups) -> float:
    total = 0.0
    for gid, group in groups.items():
        runs = [
            {"experiment": name, "seed": seed, "out_dir": str(workdir / name / f"seed{seed}")}
            for name, seeds in group["members"].items()
            for seed in seeds
        ]
        spec = {
            "kind": "group",
            "stores": stores,
            "members": {n: experiments[n] for n in group["members"]},
            "train": train,
            "runs": runs,
        }
        total += run_process(spec, workdir / f"{gid}.group.json")
    return total


def differing_files(a: Path, b: Path) -> list[str]:
    from polysent.runfiles import RUN_FILES

    out = []
    for run in sorted(p.parent for p in a.glob("*/seed*/metrics.json")):
        rel = run.relative_to(a)
        out += [f"{rel}/{n}" for n in RUN_FILES if (run / n).read_bytes() != (b / rel / n).read_bytes()]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--max-epochs", type=int, default=None, help="override train.max_epochs (quick check)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--experiments", nargs="+", default=None, help="these experiments instead of the report's")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    stores = write_stores(args.workdir)
    experiments, train, groups = demo_plan(args.experiments, args.seeds)
    if args.max_epochs:
        train = {**train, "max_epochs": args.max_epochs}
    n_runs = sum(len(s) for g in groups.values() for s in g["members"].values())
    n_trainings = sum(len({s for seeds in g["members"].values() for s in seeds}) for g in groups.values())
    times = {"per run": [], "per group": []}
    for rep in range(args.repeats):
        for label, fn in (("per run", per_run), ("per group", per_group)):
            out = args.workdir / f"{label.replace(' ', '_')}{rep}"
            out.mkdir(parents=True, exist_ok=True)
            times[label].append(fn(out, stores, experiments, train, groups))
            print(f"repeat {rep}: {label}: {times[label][-1]:.1f} s", flush=True)
    diff = differing_files(args.workdir / "per_run0", args.workdir / "per_group0")
    before, after = statistics.median(times["per run"]), statistics.median(times["per group"])
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch threads 1; seeds {args.seeds}; max_epochs {train['max_epochs']}; repeats {args.repeats}"
    )
    print("| path | processes | trainings | summed wall (s, median) |")
    print("|---|---:|---:|---:|")
    print(f"| one process per run (before) | {n_runs} | {n_runs} | {before:.1f} |")
    print(f"| one process per training group (now) | {len(groups)} | {n_trainings} | {after:.1f} |")
    print(
        f"\nratio before/after: {before / after:.2f}x; run folders byte-identical: "
        f"{'yes' if not diff else 'NO: ' + ', '.join(diff[:5])} ({n_runs} runs x 5 files)"
    )
    if diff:
        sys.exit(1)


if __name__ == "__main__":
    main()
