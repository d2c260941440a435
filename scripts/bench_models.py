"""Benchmark: parameters and training-step time of every model at the paper's shapes.

    .venv/bin/python scripts/bench_models.py [--sizes paper|demo] [--threads 1] [--steps 5] [--models mult]

Shapes: B=32 segments, L=50 words, text 300 / visual 35 / acoustic 25 (the paper's GloVe,
OpenFace AUs and librosa features); Multilogue-Net on the utterance axis reads the 32 segments as
4 videos of 8 (its recurrence runs over 8 utterances, the word-axis ablation over 50 words). A step is forward + backward + Adam update with the model's
auxiliary losses (MCTN translation/cycle, AdaMML decision loss); the median over ``--steps``
timed steps after one warm-up step is reported. ``--sizes demo`` uses config/config.yaml's
`train.models` (the 2-core demo sizes) instead of the paper sizes (the models' defaults).
``--table1 DIR`` instead trains every experiment of config/experiments.yaml once (one seed) with
config/config.yaml's `train:` section on *synthetic* stores of the demo corpus's size (38 videos x
4-5 segments per language, 14 visual dims), and reports the wall time per run and in total: the
budget check for "Table 1 x 3 seeds in minutes on 2 cores" (``--experiments`` picks rows,
``--time-axis utterance|word`` sets Multilogue-Net's time axis for them).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
import yaml

from polysent.models import NCEObjective, build_model, count_parameters
from polysent.models.heads import TaskLoss

REPO = Path(__file__).resolve().parents[1]
DIMS = {"text": 300, "visual": 35, "acoustic": 25}
SEGMENTS_PER_VIDEO = 8  # Multilogue's utterance axis: a batch of B segments is B / 8 videos
CASES = [
    ("mctn", {"modalities": ["text", "acoustic"]}, []),
    ("mctn", {"modalities": ["text", "acoustic", "visual"], "variant": "hierarchical"}, []),
    ("mctn", {"modalities": ["text", "acoustic", "visual"], "variant": "shared_encoder"}, []),
    # the paper's utterance axis (default): B segments = B/8 videos of 8 segments
    ("multilogue", {"time_axis": "utterance"}, []),
    ("multilogue", {"time_axis": "utterance"}, ["cross_tv", "inter_tv"]),
    # the word-axis ablation: the recurrence over the L words of each segment
    ("multilogue", {"time_axis": "word"}, []),
    ("multilogue", {"time_axis": "word"}, ["cross_tv", "inter_tv"]),
    ("mult", {}, []),
    ("mult", {"targets": ["text"]}, []),  # the official --lonly: L<-A, L<-V + text memory
    ("mult", {"modalities": ["text"]}, []),  # text-only transformer (no crossmodal attention)
    ("adamml_clstm", {"decision_loss": True, "target": 2}, []),
    # as the paper's code (config/moseas.yaml): a decision per word, gated inputs, rescale
    ("adamml_clstm", {"decision_loss": True, "target": 2, "window": 1, "gating": "inputs", "rescale": True}, []),
]


def batch(B: int, L: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(L // 2, L + 1, (B,), generator=g)
    mask = (torch.arange(L)[None] < lengths[:, None]).float()
    out = {m: torch.randn(B, L, d, generator=g) * mask[..., None] for m, d in DIMS.items()}
    out["mask"], out["y"] = mask, torch.rand(B, generator=g) * 6 - 3
    for m in DIMS:  # translations for NCE: another draw, same shapes
        out[f"{m}_tr"] = torch.randn(B, L, DIMS[m], generator=g) * mask[..., None]
    out["mask_tr"], out["tr_index"] = mask, torch.arange(B)
    # rows as videos of SEGMENTS_PER_VIDEO consecutive segments (read by Multilogue's utterance axis only)
    out["video_index"] = torch.arange(B) // SEGMENTS_PER_VIDEO
    out["video_pos"] = torch.arange(B) % SEGMENTS_PER_VIDEO
    return out


def time_case(name, variation, nce_terms, sizes, B, L, steps):
    torch.manual_seed(0)
    model = build_model(name, DIMS, **{**sizes.get(name, {}), **variation})
    nce = NCEObjective(nce_terms, model.rep_dims) if nce_terms else None
    params = list(model.parameters()) + (list(nce.parameters()) if nce else [])
    opt = torch.optim.Adam(params, lr=1e-3)
    crit = TaskLoss("sentiment", model.regression_loss)
    b = batch(B, L)
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        model.train()
        out = model(b)
        loss = crit(out["pred"], b) + sum(out["aux"].values())
        if nce:
            loss = loss + sum(nce(model, b, out).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
    n = count_parameters(model) + (count_parameters(nce) if nce else 0)
    return n, statistics.median(times)


def table1(workdir: Path, threads: int, models=None, experiments_only=None, time_axis=None) -> None:
    from polysent.synthetic import write_benchmark_stores
    from polysent.train import run_experiment

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    experiments = yaml.safe_load((REPO / "config" / "experiments.yaml").read_text())["experiments"]
    if time_axis:  # Multilogue-Net's time axis for every multilogue row (utterance | word ablation)
        config["train"].setdefault("models", {}).setdefault("multilogue", {})["time_axis"] = time_axis
    stores = write_benchmark_stores(workdir, emotions=("confident", "happiness", "relaxed"))
    print("| experiment | model | epochs run | wall (s) | test MAE |")
    print("|---|---|---:|---:|---:|")
    total = 0.0
    for name, exp in experiments.items():
        if (models and exp["model"] not in models) or (experiments_only and name not in experiments_only):
            continue
        t0 = time.perf_counter()
        m = run_experiment(stores, exp, config["train"], 1, workdir / name, exp_name=name, threads=threads)
        dt = time.perf_counter() - t0
        total += dt
        mae = m["test"].get("mae")
        print(
            f"| {name} | {exp['model']} | {m['epochs_run']} | {dt:.1f} | {mae if mae is None else f'{mae:.3f}'} |",
            flush=True,
        )
    print(f"| **total, 1 seed** | | | **{total:.0f}** |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", choices=["paper", "demo"], default="paper")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--length", type=int, default=50)
    ap.add_argument("--models", nargs="+", default=None, help="only these models' cases (e.g. mult)")
    ap.add_argument(
        "--table1",
        type=Path,
        default=None,
        metavar="DIR",
        help="time one seed of every config/experiments.yaml row on demo-sized synthetic stores",
    )
    ap.add_argument("--experiments", nargs="+", default=None, help="--table1: only these rows")
    ap.add_argument(
        "--time-axis",
        choices=["utterance", "word"],
        default=None,
        help="--table1: Multilogue-Net's time axis for the multilogue rows (default: the schema's)",
    )
    args = ap.parse_args()
    if args.table1:
        args.table1.mkdir(parents=True, exist_ok=True)
        return table1(args.table1, args.threads, args.models, args.experiments, args.time_axis)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    sizes = {}
    if args.sizes == "demo":
        sizes = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["train"]["models"]
    print(
        f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"threads={args.threads}, B={args.batch}, L={args.length}, dims={DIMS}, sizes={args.sizes}"
    )
    print("| model | variation | NCE | parameters | train step (median, ms) |")
    print("|---|---|---|---:|---:|")
    for name, variation, nce_terms in CASES:
        if args.models and name not in args.models:
            continue
        n, t = time_case(name, variation, nce_terms, sizes, args.batch, args.length, args.steps)
        var = ", ".join(f"{k}={v}" for k, v in variation.items()) or "-"
        print(f"| {name} | {var} | {', '.join(nce_terms) or '-'} | {n:,} | {t * 1000:.0f} |", flush=True)


if __name__ == "__main__":
    main()
