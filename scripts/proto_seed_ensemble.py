"""Prototype, not used by the pipeline: several seeds of one experiment trained as one batched ensemble.

    .venv/bin/python scripts/proto_seed_ensemble.py WORKDIR [--experiment mult_tva_fr_fr]
        [--seeds 1 2 3] [--stores DIR] [--max-epochs N]

The seeds' models (each initialised exactly as :func:`polysent.train.train_run` initialises
it) are stacked with ``torch.func.stack_module_state`` and trained together: one
``torch.func.vmap`` (``randomness="different"``) over the seeds runs every seed's forward pass
on its own batch (each seed keeps its own shuffling, ``default_rng([seed, epoch])``; the seeds'
batches are padded to one length and stacked), one backward pass and one Adam step update all
of them. Gradient clipping is per seed (each seed's own gradient norm), early stopping and
checkpoint selection are per seed on the validation split, as in ``train_model``.

Not reproduced: per-seed ReduceLROnPlateau (one learning rate for the stack; the script says
when a sequential run reduced its LR), dropout masks (another random stream: the ensemble
cannot give the sequential runs' numbers bit for bit), models that batch whole videos or use
NCE (segment batches and the task loss only).

Compared side by side, in one process, on the same stores: the CPU time of training the seeds
one after another (``polysent.train.train_run``, the pipeline's path) and of the ensemble, and
each seed's selected epoch and valid/test metrics from both.

What it found on CPU with torch 2.13 (docs/BENCHMARKS.md, "Training throughput"): MulT's
``nn.MultiheadAttention`` kernels (``aten::_scaled_dot_product_flash_attention_for_cpu``,
``aten::_native_multi_head_attention``) have no vmap batching rule, so vmap loops over the seeds
and the ensemble is no faster; the models that pack padded sequences for their LSTMs (MCTN,
AdaMML) fail under vmap (``aten::_pack_padded_sequence`` has no batching rule and the seeds'
packed batches differ in size). A gain needs attention and recurrences written from batched
matrix products: a model change with other numerics.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import resource
import sys
from pathlib import Path

import numpy as np
import torch
from torch.func import functional_call, stack_module_state, vmap

from polysent.data import batches, build_splits
from polysent.experiments import experiment_entry
from polysent.models import build_model
from polysent.models.heads import TaskLoss
from polysent.train import (
    SELECTION,
    batch_unit,
    evaluate,
    model_kwargs,
    run_settings,
    seed_everything,
    split_metrics,
    train_run,
)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from bench_train import demo_plan, write_stores  # noqa: E402  (a sibling script)


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def stack_batches(parts: list[dict]) -> dict:
    """One batch per seed -> one batch with a leading seed axis (sequences padded to one length)."""
    length = max(b["mask"].shape[1] for b in parts)
    out = {}
    for key in ("text", "visual", "acoustic", "mask"):
        out[key] = torch.stack(
            [
                torch.nn.functional.pad(b[key], (0, 0) * (b[key].dim() - 2) + (0, length - b[key].shape[1]))
                for b in parts
            ]
        )
    out["y"] = torch.stack([b["y"] for b in parts])
    out["emotions"] = torch.stack([b["emotions"] for b in parts])
    return out


def train_ensemble(exp: dict, train_cfg: dict, stores: dict, seeds: list[int], exp_name: str) -> list[dict]:
    """Every seed of ``exp`` trained in one stacked model; per seed: best epoch, valid/test metrics."""
    exp = experiment_entry({exp_name: exp}, exp_name)
    settings = run_settings(train_cfg, exp)
    task = exp["task"]
    splits = build_splits(stores, exp, seeds[0], settings["max_len"], settings["standardize"])
    models = []
    for seed in seeds:  # the same initial weights as the sequential runs
        seed_everything(seed, settings["threads"])
        models.append(build_model(exp["model"], splits.dims, n_out=1, task=task, **model_kwargs(exp, settings)))
    if batch_unit(models[0]) != "segment" or exp.get("nce"):
        raise SystemExit("prototype: segment batches and no NCE only")
    base = copy.deepcopy(models[0]).to("meta")
    params, buffers = stack_module_state(models)
    task_loss = TaskLoss(task, settings.get("regression_loss") or models[0].regression_loss)
    optim = {
        **models[0].optim_defaults,
        **{k: settings[k] for k in ("lr", "weight_decay") if settings.get(k) is not None},
    }
    optimizer = torch.optim.Adam(params.values(), lr=optim["lr"], weight_decay=optim["weight_decay"])
    clip = settings.get("grad_clip") or models[0].grad_clip or 0.0
    metric = settings["select_sentiment"]
    higher = SELECTION[metric]

    def loss_of(p, b, batch):
        out = functional_call(base, (p, b), (batch,))
        return task_loss(out["pred"], batch)

    def pred_of(p, b, batch):
        return functional_call(base, (p, b), (batch,))["pred"]

    step_losses = vmap(loss_of, in_dims=(0, 0, 0), randomness="different")
    predict = vmap(pred_of, in_dims=(0, 0, None), randomness="different")
    S = len(seeds)
    best = [{"value": -math.inf if higher else math.inf, "epoch": -1, "state": None} for _ in seeds]
    bad = [0] * S
    stopped = [False] * S
    valid_batches = list(batches(splits.valid, settings["eval_batch_size"]))
    for epoch in range(settings["max_epochs"]):
        base.train()
        per_seed = [
            list(batches(splits.train, settings["batch_size"], np.random.default_rng([seed, epoch]))) for seed in seeds
        ]
        for step in range(len(per_seed[0])):
            batch = stack_batches([per_seed[s][step][1] for s in range(S)])
            loss = step_losses(params, buffers, batch).sum()  # each seed's loss reaches only its own weights
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                norms = torch.sqrt(sum(p.grad.flatten(1).pow(2).sum(1) for p in params.values()))
                scale = torch.clamp(clip / (norms + 1e-6), max=1.0)
                for p in params.values():
                    p.grad.mul_(scale.view(-1, *([1] * (p.dim() - 1))))
            optimizer.step()
        base.eval()
        with torch.no_grad():
            preds = torch.cat([predict(params, buffers, b) for _, b in valid_batches], 1).numpy()
        for s in range(S):
            if stopped[s]:
                continue
            value = split_metrics(task, preds[s], splits.valid, [])[metric]
            value = value if value is not None and math.isfinite(value) else (-math.inf if higher else math.inf)
            if (value > best[s]["value"] if higher else value < best[s]["value"]) or best[s]["state"] is None:
                best[s] = {
                    "value": value,
                    "epoch": epoch,
                    "state": {k: v[s].detach().clone() for k, v in params.items()},
                }
                bad[s] = 0
            else:
                bad[s] += 1
            early = models[0].early_stopping if settings.get("early_stopping") is None else settings["early_stopping"]
            if early and bad[s] >= settings["patience"] and epoch + 1 >= settings["min_epochs"]:
                stopped[s] = True
        if all(stopped):
            break
    results = []
    for s, seed in enumerate(seeds):
        model = models[s]
        model.load_state_dict({**best[s]["state"], **{k: v[s] for k, v in buffers.items()}}, strict=False)
        valid = evaluate(model, splits.valid, settings["eval_batch_size"], task_loss, "cpu")
        test = evaluate(model, splits.test, settings["eval_batch_size"], task_loss, "cpu")
        results.append(
            {
                "seed": seed,
                "best_epoch": best[s]["epoch"],
                "valid": split_metrics(task, valid["pred"], splits.valid, []),
                "test": split_metrics(task, test["pred"], splits.test, []),
            }
        )
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--experiment", default="mult_tva_fr_fr")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--stores", type=Path, default=None, help="folder with fr.parquet/es.parquet (default: synthetic)")
    ap.add_argument("--max-epochs", type=int, default=None)
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    stores = (
        {lang: str(args.stores / f"{lang}.parquet") for lang in ("fr", "es")}
        if args.stores
        else write_stores(args.workdir)
    )
    experiments, train, _ = demo_plan([args.experiment], args.seeds)
    if args.max_epochs:
        train = {**train, "max_epochs": args.max_epochs}
    exp = experiments[args.experiment]
    import torch._dynamo  # noqa: F401  (loaded by the first optimizer step: kept out of both timings)

    t0 = cpu_seconds()
    sequential = []
    for seed in args.seeds:
        trained = train_run(stores, exp, train, seed, args.experiment, threads=1)
        s = trained["splits"]
        fit = trained["fit"]
        ebs = trained["settings"]["eval_batch_size"]
        valid = evaluate(trained["model"], s.valid, ebs, fit["task_loss"], "cpu")
        test = evaluate(trained["model"], s.test, ebs, fit["task_loss"], "cpu")
        sequential.append(
            {
                "seed": seed,
                "best_epoch": fit["best_epoch"],
                "lr_reductions": fit["schedule"]["lr_reductions"],
                "valid": split_metrics("sentiment", valid["pred"], s.valid, []),
                "test": split_metrics("sentiment", test["pred"], s.test, []),
            }
        )
    t1 = cpu_seconds()
    ensemble = train_ensemble(exp, train, stores, args.seeds, args.experiment)
    t2 = cpu_seconds()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
        f"{torch.get_num_threads()}; {args.experiment}, seeds {args.seeds}, max_epochs {train['max_epochs']}"
    )
    print(f"CPU-s: sequential {t1 - t0:.1f}, ensemble {t2 - t1:.1f}, ratio {(t1 - t0) / (t2 - t1):.2f}x")
    print("| seed | path | best epoch | valid MAE | valid r | test MAE | test r |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for a, b in zip(sequential, ensemble):
        for label, r in (("sequential", a), ("ensemble", b)):
            print(
                f"| {r['seed']} | {label} | {r['best_epoch']} | {r['valid']['mae']:.4f} | {r['valid']['corr']:.4f} "
                f"| {r['test']['mae']:.4f} | {r['test']['corr']:.4f} |"
            )
    print("sequential LR reductions per seed:", [a["lr_reductions"] for a in sequential])
    (args.workdir / "ensemble.json").write_text(
        json.dumps({"sequential": sequential, "ensemble": ensemble, "cpu_s": [t1 - t0, t2 - t1]}, indent=2, default=str)
    )


if __name__ == "__main__":
    main()
