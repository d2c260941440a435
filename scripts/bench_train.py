"""Benchmark: the train stage as one process per run vs one process per training group, or this
checkout's training against another source tree's.

    .venv/bin/python scripts/bench_train.py WORKDIR [--seeds 1 2 3] [--max-epochs N] [--repeats 1]
        [--experiments a b ...] [--stores DIR] [--before-src DIR]

Both paths run side by side on the same *synthetic* stores of the demo corpus's size (as
``scripts/bench_models.py --table1``: 38 videos x 5 segments per language) with
config/config.yaml's ``train:`` section and the experiments its ``report:`` section selects
(or ``--experiments``). Each Snakemake job is a fresh Python process, so each path runs its
jobs as fresh processes:

* per run (the rule before issue 13): one process per (experiment, seed), ``run_experiment``;
* per group (rule ``train`` now): one process per training group, ``run_group``.

With ``--before-src DIR`` (e.g. ``git worktree add /tmp/before <commit>``, then
``--before-src /tmp/before/src``) both paths are one process per group: "before" imports
polysent from ``DIR``, "after" from this checkout, alternating group by group so that both see
the same machine load.

Reported: processes, trainings, summed wall time and CPU time (user + system of the worker
processes) of each path (median over ``--repeats``), their ratio, and whether every run folder
is byte-identical between the two paths (it must be; with ``--before-src``, the files both
versions write: weights may change format). ``--stores DIR`` trains on ``DIR/fr.parquet`` and
``DIR/es.parquet`` (e.g. the demo's ``results/store``) instead of synthetic stores.
``--max-epochs`` shortens every run for a quick check (it makes start-up a larger share).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
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


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_process(spec: dict, path: Path, src: Path | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of one worker process (importing polysent from ``src`` when given)."""
    path.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    t0, c0 = time.perf_counter(), children_cpu()
    subprocess.run([sys.executable, "-c", WORKER, str(path)], check=True, cwd=REPO, env=env)
    return time.perf_counter() - t0, children_cpu() - c0


def per_run(workdir: Path, stores, experiments, train, groups) -> tuple[float, float]:
    total = np.zeros(2)
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
    return tuple(total)


def group_spec(workdir: Path, stores, experiments, train, group) -> dict:
    runs = [
        {"experiment": name, "seed": seed, "out_dir": str(workdir / name / f"seed{seed}")}
        for name, seeds in group["members"].items()
        for seed in seeds
    ]
    return {
        "kind": "group",
        "stores": stores,
        "members": {n: experiments[n] for n in group["members"]},
        "train": train,
        "runs": runs,
    }


def per_group(workdir: Path, stores, experiments, train, groups, src: Path | None = None) -> tuple[float, float]:
    total = np.zeros(2)
    for gid, group in groups.items():
        spec = group_spec(workdir, stores, experiments, train, group)
        total += run_process(spec, workdir / f"{gid}.group.json", src)
    return tuple(total)


def side_by_side(workdir: Path, stores, experiments, train, groups, before_src: Path) -> dict[str, np.ndarray]:
    """Each group once with ``before_src`` and once with this checkout, alternating."""
    total = {"before": np.zeros(2), "after": np.zeros(2)}
    for gid, group in groups.items():
        for label, src in (("before", before_src), ("after", REPO / "src")):
            out = workdir / label
            out.mkdir(parents=True, exist_ok=True)
            spec = group_spec(out, stores, experiments, train, group)
            total[label] += run_process(spec, out / f"{gid}.group.json", src)
            print(f"  {gid}: {label} {total[label][1]:.1f} CPU-s so far", flush=True)
    return total


def differing_files(a: Path, b: Path) -> tuple[list[str], int]:
    """Run files that differ between the folders ``a`` and ``b`` (those present in both), and how
    many were compared."""
    from polysent.runfiles import RUN_FILES

    out, compared = [], 0
    for run in sorted(p.parent for p in a.glob("*/seed*/metrics.json")):
        rel = run.relative_to(a)
        names = [n for n in RUN_FILES if (run / n).exists() and (b / rel / n).exists()]
        compared += len(names)
        out += [f"{rel}/{n}" for n in names if (run / n).read_bytes() != (b / rel / n).read_bytes()]
    return out, compared


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--max-epochs", type=int, default=None, help="override train.max_epochs (quick check)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--experiments", nargs="+", default=None, help="these experiments instead of the report's")
    ap.add_argument("--stores", type=Path, default=None, help="folder with fr.parquet and es.parquet")
    ap.add_argument("--before-src", type=Path, default=None, help="compare with polysent imported from this folder")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.stores:
        stores = {lang: str((args.stores / f"{lang}.parquet").resolve()) for lang in ("fr", "es")}
    else:
        stores = write_stores(args.workdir)
    experiments, train, groups = demo_plan(args.experiments, args.seeds)
    if args.max_epochs:
        train = {**train, "max_epochs": args.max_epochs}
    n_runs = sum(len(s) for g in groups.values() for s in g["members"].values())
    n_trainings = sum(len({s for seeds in g["members"].values() for s in seeds}) for g in groups.values())
    if args.before_src:
        labels = ("before", "after")
        rows = {
            "before": f"{args.before_src} (before)",
            "after": "this checkout (after)",
        }
    else:
        labels = ("per run", "per group")
        rows = {"per run": "one process per run (before)", "per group": "one process per training group (now)"}
    times = {label: [] for label in labels}
    for rep in range(args.repeats):
        if args.before_src:
            out = args.workdir / f"side_by_side{rep}"
            both = side_by_side(out, stores, experiments, train, groups, args.before_src)
            for label in labels:
                times[label].append(both[label])
            dirs = (out / "before", out / "after")
        else:
            for label, fn in (("per run", per_run), ("per group", per_group)):
                out = args.workdir / f"{label.replace(' ', '_')}{rep}"
                out.mkdir(parents=True, exist_ok=True)
                times[label].append(np.array(fn(out, stores, experiments, train, groups)))
            dirs = (args.workdir / "per_run0", args.workdir / "per_group0")
        for label in labels:
            print(
                f"repeat {rep}: {label}: {times[label][-1][0]:.1f} s wall, {times[label][-1][1]:.1f} CPU-s", flush=True
            )
        if rep == 0:
            diff, compared = differing_files(*dirs)
    med = {label: np.median(np.stack(times[label]), 0) for label in labels}
    processes = {"per run": n_runs, "per group": len(groups), "before": len(groups), "after": len(groups)}
    trainings = {"per run": n_runs, "per group": n_trainings, "before": n_trainings, "after": n_trainings}
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch threads 1; seeds {args.seeds}; max_epochs {train['max_epochs']}; repeats {args.repeats}; "
        f"stores {args.stores or 'synthetic'}"
    )
    print("| path | processes | trainings | summed wall (s, median) | CPU-s (median) |")
    print("|---|---:|---:|---:|---:|")
    for label in labels:
        print(
            f"| {rows[label]} | {processes[label]} | {trainings[label]} | {med[label][0]:.1f} | {med[label][1]:.1f} |"
        )
    a, b = med[labels[0]], med[labels[1]]
    print(
        f"\nratio {labels[0]}/{labels[1]}: wall {a[0] / b[0]:.2f}x, CPU {a[1] / b[1]:.2f}x; run folders "
        f"byte-identical: {'yes' if not diff else 'NO: ' + ', '.join(diff[:5])} ({compared} files of {n_runs} runs)"
    )
    if diff:
        sys.exit(1)


if __name__ == "__main__":
    main()
