"""Benchmark: AdaMML's windowed default vs the paper's code (per word, sampled), end to end.

    .venv/bin/python scripts/bench_adamml_policy.py /tmp/adamml_bench [--seeds 1 2]

Trains the DL-target-2 FR -> FR row (policy + fusion dropout 0.25, as config/experiments.yaml)
with config/config.yaml's ``train:`` section on *synthetic* stores of the demo corpus's size, once
with the demo's ``train.models.adamml_clstm`` (windows of 6 words, argmax at evaluation) and once
with config/moseas.yaml's policy options on top (window 1, input gating + rescale, sampled
decisions, fixed temperature). Prints test r / MAE / wall per run, the modality utilisation
table (hard and expected rates, polysent.report.utilisation.modality_utilisation) and whether a rerun
of the sampled variant writes identical decisions.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import yaml

from polysent.contracts import read_decisions
from polysent.report import utilisation
from polysent.synthetic import write_benchmark_stores
from polysent.train import run_experiment

REPO = Path(__file__).resolve().parents[1]
POLICY_OPTIONS = ("window", "gating", "rescale", "eval_decisions", "tau0", "tau_schedule")


def write_stores(workdir: Path) -> dict[str, Path]:
    return write_benchmark_stores(workdir)


def variants() -> dict[str, dict]:
    experiments = yaml.safe_load((REPO / "config" / "experiments.yaml").read_text())["experiments"]
    row = experiments["adamml_dl2_fr_fr"]
    moseas = yaml.safe_load((REPO / "config" / "moseas.yaml").read_text())["train"]["models"]["adamml_clstm"]
    paper = {k: moseas[k] for k in POLICY_OPTIONS}
    return {
        "windowed_argmax": {**row, "label": "windows of words, argmax (demo default)"},
        "paper_per_word_sampled": {
            **row,
            "variation": {**row["variation"], **paper},
            "label": "per word, input gating + rescale, sampled (moseas)",
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    train_cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["train"]
    stores = write_stores(args.workdir)
    exps = variants()
    decisions: dict[str, list[pd.DataFrame]] = {}
    print("| variant | seed | test r | test MAE | best epoch | wall (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, exp in exps.items():
        for seed in args.seeds:
            out = args.workdir / name / f"seed{seed}"
            t0 = time.perf_counter()
            m = run_experiment(stores, exp, train_cfg, seed, out, exp_name=name, threads=1)
            wall = time.perf_counter() - t0
            print(
                f"| {name} | {seed} | {m['test']['corr']:.3f} | {m['test']['mae']:.3f} | {m['best_epoch']} "
                f"| {wall:.1f} |",
                flush=True,
            )
            decisions.setdefault(name, []).append(read_decisions(out / "decisions.parquet").to_pandas())
    util = utilisation.modality_utilisation(decisions, exps)
    print()
    print(util.drop(columns=["setting", "label"]).to_markdown(index=False))
    name, seed = "paper_per_word_sampled", args.seeds[0]
    again = args.workdir / "rerun"
    run_experiment(stores, exps[name], train_cfg, seed, again, exp_name=name, threads=1)
    first = args.workdir / name / f"seed{seed}" / "decisions.parquet"
    same = (again / "decisions.parquet").read_bytes() == first.read_bytes()
    print(f"\nrerun of {name} seed {seed}: decisions.parquet byte-identical: {same}")


if __name__ == "__main__":
    main()
