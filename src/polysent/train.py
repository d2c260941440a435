"""One training loop for every model and experiment (Table 1 rows, emotions, NCE, few-shot).

``run_experiment`` reads the feature stores, builds the experiment's splits
(:func:`polysent.data.build_splits`), trains with early stopping and checkpoint selection on
the **validation** split (the test split is evaluated once, with the selected checkpoint), and
writes the run folder:

* ``metrics.json`` — ``experiment, seed, model, task, train_langs, eval_lang, best_epoch,
  selection ("valid_<metric>"), n_params, schedule{...}, valid{...}, test{...}`` plus ``data``
  (sample counts: ``n_train``, ``n_train_by_lang`` before TransAug, ``n_valid_by_lang``,
  ``subsets`` for few-shot languages: unit, count/fraction, ``subset_seed``, segments, videos);
* ``predictions.parquet`` — valid and test rows: ``segment_id, lang, split, y_true, y_pred``
  (sentiment) or ``true_<label>, prob_<label>`` (emotions);
* ``history.csv`` — ``epoch, train_loss, valid_loss, valid_<metric>, lr, temperature``;
* ``model.safetensors`` + ``model.json`` — the selected weights (and the NCE objective's and the
  training normaliser) and everything needed to rebuild the model (:mod:`polysent.checkpoint`);
* ``decisions.parquet`` — AdaMML policy decisions on the eval (test) set: ``segment_id, split,
  window, modality, selected, prob`` (``prob``: the policy's probability of keeping the
  modality at that step); empty with the same columns for models without a policy.

Training groups: experiments that differ only in ``eval`` (and label/paper/group/seeds) train
the same model (:func:`polysent.experiments.training_key`); :func:`run_group` trains each seed of such a group once
(:func:`train_run`) and writes every member's run folder from it (:func:`write_run`), byte for
byte what :func:`run_experiment` writes for each alone (the workflow's rule ``train`` runs one
group per job, see workflow/rules/train.smk).

Batches: of segments, or of whole videos for a model that declares ``batch_unit = "video"``
(Multilogue-Net on its default utterance axis, :func:`batch_unit`); evaluation puts the
predictions back in sample order, so every output stays one row per segment.

Determinism: seeds for torch/numpy/random, ``torch.use_deterministic_algorithms(True)``, a
fixed thread count, batches drawn from ``default_rng([seed, epoch])`` without DataLoader
workers; same config + seed gives identical ``metrics.json`` on the same machine.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from polysent import checkpoint, io, runfiles
from polysent.cliargs import key_values
from polysent.config import complete, deep_merge, schema_defaults
from polysent.data import MODALITIES, Splits, StoreSamples, batches, build_splits, in_given_order, samples_from_store
from polysent.experiments import experiment_entry, run_entry, training_key
from polysent.jsonclean import json_clean
from polysent.metrics import emotion_metrics, sentiment_metrics
from polysent.models import NCEObjective, build_model, count_parameters
from polysent.models.heads import TaskLoss, positive_weights
from polysent.numeric import sigmoid
from polysent.optim import Adam, Plateau

log = logging.getLogger("polysent.train")

# Defaults of the ``train:`` config section (the schema repeats them with descriptions).
# (better-is-higher) for each selection metric
SELECTION = {"mae": False, "loss": False, "corr": True, "macro_f1": True}


def settings_for(train_cfg: dict, exp: dict) -> dict:
    """The ``train:`` section with its ``model_overrides`` for the experiment's model, then the
    experiment's ``train_overrides`` applied, schema defaults filled."""
    train_cfg = train_cfg or {}
    per_model = (train_cfg.get("model_overrides") or {}).get(exp.get("model")) or {}
    return complete(deep_merge(deep_merge(train_cfg, per_model), exp.get("train_overrides") or {}), "train")


def run_settings(train_cfg: dict, exp: dict) -> dict:
    """:func:`settings_for` plus the experiment's ``pos_weight`` (what one run trains with)."""
    settings = settings_for(train_cfg, exp)
    if exp.get("pos_weight") is not None:
        settings["pos_weight"] = bool(exp.get("pos_weight"))
    return settings


def seed_everything(seed: int, threads: int) -> None:
    # cuBLAS needs a fixed workspace for deterministic kernels (no effect on CPU runs)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    deterministic_kernels()
    torch.set_num_threads(max(1, int(threads)))


def deterministic_kernels() -> None:
    """``torch.use_deterministic_algorithms(True)`` for eager execution, without loading TorchInductor.

    The public call also sets ``torch._inductor.config.deterministic``, and importing that module
    loads TorchInductor, Dynamo and sympy: about as long as importing torch itself, paid by every
    training process (one per training group). polysent trains eagerly and never compiles, so the
    eager flag is the one that matters; when Inductor is already loaded its flag is set as well.
    """
    if "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(True)
    else:
        torch._C._set_deterministic_algorithms(True, warn_only=False)


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def model_kwargs(exp: dict, settings: dict) -> dict:
    """Model size/options from ``train.models.<model>`` with the experiment's ``variation`` on top."""
    return deep_merge(settings["models"].get(exp["model"], {}) or {}, exp.get("variation") or {})


def evaluation_batches(model, samples, batch_size: int, device) -> list[tuple[list, dict]]:
    """The ``(samples, batch)`` pairs :func:`evaluate` runs ``model`` on, collated and on ``device``.

    Evaluation batches do not depend on the epoch (no shuffling), so the validation split is
    collated once per run and reused every epoch.
    """
    return [
        (part, _to(batch, device))
        for part, batch in batches(samples, batch_size, unit=batch_unit(model), second_text=second_text_of(model))
    ]


@torch.no_grad()
def evaluate(model, samples, batch_size, task_loss, device, prepared=None) -> dict:
    """Predictions, mean task loss and (AdaMML) decisions of ``samples`` in order.

    ``prepared``: :func:`evaluation_batches` of the same samples and batch size, when the caller
    evaluates them more than once.
    """
    model.eval()
    if not samples:
        return {"pred": np.zeros((0, task_loss_outputs(model)), np.float32), "loss": float("nan"), "decisions": []}
    preds, parts, decisions, total = [], [], [], 0.0
    if prepared is None:
        prepared = evaluation_batches(model, samples, batch_size, device)
    for part, batch in prepared:
        out = model(batch)
        total += float(task_loss(out["pred"], batch)) * len(part)
        preds.append(out["pred"].cpu().numpy())
        parts.append(part)
        if "decisions" in out:
            d = out["decisions"].cpu().numpy()
            p = out["policy_probs"].cpu().numpy()
            wm = out["window_mask"].cpu().numpy()
            for i, s in enumerate(part):
                decisions.append((s, d[i][wm[i] > 0], p[i][wm[i] > 0]))
    # batches of whole videos may visit the samples in another order: predictions in ``samples`` order
    return {"pred": in_given_order(samples, parts, preds), "loss": total / len(samples), "decisions": decisions}


def batch_unit(model) -> str:
    """What a batch keeps whole for ``model``: ``segment`` (every model) or ``video`` (a model over a
    video's utterances, e.g. Multilogue-Net on the utterance axis); see :func:`polysent.data.batches`."""
    return getattr(model, "batch_unit", "segment")


def second_text_of(model) -> str | None:
    """The language of a model's second text stream (the two-stream Multilogue-Net), else None."""
    return getattr(model, "second_text", None)


def training_batches(model, nce, samples, batch_size: int, rng):
    """The training batches of one epoch, as :func:`train_model` draws them: separately batched
    translations only when an NCE term needs them; TransAug pairs are in every batch."""
    with_tr = nce is not None and nce.needs_translation
    return batches(
        samples, batch_size, rng, translations=with_tr, unit=batch_unit(model), second_text=second_text_of(model)
    )


def grad_clip_of(model, settings: dict) -> float:
    """The gradient-norm clip of a run: ``train.grad_clip``, or (null) the model's reference
    value (MulT 0.8 as its official code; the other models' references do not clip: 0)."""
    clip = settings.get("grad_clip")
    clip = model.grad_clip if clip is None else clip
    return float(clip or 0.0)


def task_loss_outputs(model) -> int:
    return model.head.linear.out_features


def split_metrics(task: str, pred: np.ndarray, samples, emotions: list[str]) -> dict:
    if not samples:  # an empty split (tiny corpora): every metric undefined
        if task == "sentiment":
            return {
                k: None for k in ("mae", "corr", "acc2_has0", "acc2_non0", "f1_has0", "f1_non0", "acc5", "acc7")
            } | {"n": 0}
        return {
            "per_label": {e: {"precision": None, "recall": None, "f1": None, "n_pos": 0} for e in emotions},
            "macro_f1": None,
            "n": 0,
        }
    if task == "sentiment":
        return sentiment_metrics(pred[:, 0], [s.y for s in samples])
    prob = sigmoid(pred)
    return emotion_metrics(prob, np.stack([s.emotions for s in samples]), emotions)


def _selection_value(metric: str, result: dict, metrics: dict) -> float:
    if metric == "loss":
        return result["loss"]
    value = metrics.get(metric)
    if value is None or not math.isfinite(value):  # e.g. r of a constant prediction
        return -math.inf if SELECTION[metric] else math.inf
    return float(value)


def train_model(model, nce, splits: Splits, task: str, settings: dict, seed: int, device) -> dict:
    """Train with early stopping on the validation split; return the selection record."""
    emotions = splits.emotions
    pos_w = None
    if task == "emotion" and settings.get("pos_weight"):
        pos_w = positive_weights(np.stack([s.emotions for s in splits.train]), emotions)
    task_loss = TaskLoss(task, settings.get("regression_loss") or model.regression_loss, pos_w).to(device)
    params = list(model.parameters()) + (list(nce.parameters()) if nce is not None else [])
    optim_cfg = {**model.optim_defaults}
    for key in ("optimizer", "lr", "weight_decay"):
        if settings.get(key) is not None:
            optim_cfg[key] = settings[key]
    # torch.optim.Adam/AdamW's own update, foreach (one call per step for all parameters), without
    # the Optimizer class and the torch._dynamo import it costs each process (polysent.optim).
    decoupled = {"adam": False, "adamw": True}[optim_cfg["optimizer"]]
    optimizer = Adam(params, lr=optim_cfg["lr"], weight_decay=optim_cfg["weight_decay"], decoupled=decoupled)
    schedule = schedule_for(model, settings)
    clip = schedule["grad_clip"]
    plateau = schedule["plateau_patience"]
    scheduler = Plateau(optimizer, patience=plateau, factor=0.1) if plateau else None
    metric = settings["select_sentiment"] if task == "sentiment" else settings["select_emotion"]
    higher = SELECTION[metric]
    best = {"value": -math.inf if higher else math.inf, "epoch": -1, "state": None}
    history, bad = [], 0
    valid_batches = evaluation_batches(model, splits.valid, settings["eval_batch_size"], device)
    for epoch in range(settings["max_epochs"]):
        model.set_epoch(epoch)
        extra = model.history_extra()
        model.train()
        if nce is not None:
            nce.train()
        rng = np.random.default_rng([seed, epoch])
        total, count = 0.0, 0
        for part, batch in training_batches(model, nce, splits.train, settings["batch_size"], rng):
            batch = _to(batch, device)
            out = model(batch)
            loss = task_loss(out["pred"], batch)
            for value in out["aux"].values():
                loss = loss + value
            if nce is not None:
                for value in nce(model, batch, out).values():
                    loss = loss + value
            optimizer.zero_grad()
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(params, clip)
            optimizer.step()
            total += float(loss.detach()) * len(part)
            count += len(part)
        if not splits.valid:  # nothing to select on: train max_epochs, keep the last weights
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": total / max(count, 1),
                    "valid_loss": float("nan"),
                    f"valid_{metric}": float("nan"),
                    "lr": optimizer.param_groups[0]["lr"],
                    "temperature": extra.get("temperature", float("nan")),
                }
            )
            best = {"value": float("nan"), "epoch": epoch, "state": snapshot(model)}
            continue
        result = evaluate(model, splits.valid, settings["eval_batch_size"], task_loss, device, valid_batches)
        metrics = split_metrics(task, result["pred"], splits.valid, emotions)
        value = _selection_value(metric, result, metrics)
        row = {
            "epoch": epoch,
            "train_loss": total / max(count, 1),
            "valid_loss": result["loss"],
            f"valid_{metric}": value if math.isfinite(value) else float("nan"),
            "lr": optimizer.param_groups[0]["lr"],
            "temperature": extra.get("temperature", float("nan")),
        }
        history.append(row)
        improved = value > best["value"] if higher else value < best["value"]
        if improved or best["state"] is None:
            best = {"value": value, "epoch": epoch, "state": snapshot(model)}
            bad = 0
        else:
            bad += 1
        log.info(
            "epoch %d train %.4f valid loss %.4f %s %.4f%s",
            epoch,
            row["train_loss"],
            row["valid_loss"],
            metric,
            value,
            " *" if best["epoch"] == epoch else "",
        )
        if scheduler is not None:
            scheduler.step(result["loss"])
        if schedule["early_stopping"] and bad >= settings["patience"] and epoch + 1 >= settings["min_epochs"]:
            break
    model.load_state_dict(best["state"])
    schedule["lr_reductions"] = sum(b["lr"] < a["lr"] for a, b in zip(history, history[1:]))
    return {
        "metric": metric,
        "best_epoch": best["epoch"],
        "history": history,
        "task_loss": task_loss,
        "schedule": schedule,
    }


def snapshot(model) -> OrderedDict:
    """A copy of ``model.state_dict()`` that later training steps do not change (the selected checkpoint).

    Tensor copies only: a deep copy of the state dict also copies every tensor's Python object
    graph, several times the cost, for the same values.
    """
    state = model.state_dict()
    copied = OrderedDict((key, value.detach().clone()) for key, value in state.items())
    copied._metadata = copy.copy(getattr(state, "_metadata", None))  # module versions, read by load_state_dict
    return copied


def schedule_for(model, settings: dict) -> dict:
    """Early stopping, LR-plateau, epoch budget and gradient clipping of one run (``None`` in
    config = the model's default).

    The plateau schedule (ReduceLROnPlateau's rule, :class:`polysent.optim.Plateau`) lowers the LR
    after ``plateau_patience + 1`` epochs without a better validation loss; early stopping ends
    the run after ``patience`` epochs without a better selection metric. With stopping on and
    ``plateau_patience + 1 >= patience`` the reduction cannot act before the run stops (e.g.
    plateau_patience 20 with patience 8), hence the warning.
    """
    plateau = settings.get("plateau_patience")
    plateau = model.plateau_patience if plateau is None else plateau
    stopping = settings.get("early_stopping")
    stopping = model.early_stopping if stopping is None else bool(stopping)
    out = {
        "early_stopping": stopping,
        "patience": settings["patience"] if stopping else None,
        "plateau_patience": plateau or None,
        "max_epochs": settings["max_epochs"],
        "grad_clip": grad_clip_of(model, settings) or None,
        "warnings": [],
    }
    if stopping and plateau and plateau + 1 >= settings["patience"]:
        out["warnings"].append(
            f"plateau_patience {plateau} >= patience {settings['patience']} - 1: the LR reduction "
            "cannot take effect before early stopping; lower plateau_patience or set early_stopping: false"
        )
        log.warning(out["warnings"][-1])
    return out


def run_experiment(
    stores: dict[str, str],
    exp: dict,
    train_cfg: dict,
    seed: int,
    out_dir: str | Path,
    exp_name: str = "experiment",
    threads: int | None = None,
) -> dict:
    """Train and evaluate one experiment with one seed; write the run folder; return metrics."""
    trained = train_run(stores, exp, train_cfg, seed, exp_name, threads)
    return write_run(trained, stores, exp, out_dir, exp_name)


def train_run(
    stores: dict[str, str],
    exp: dict,
    train_cfg: dict,
    seed: int,
    exp_name: str = "experiment",
    threads: int | None = None,
    read_samples=samples_from_store,
) -> dict:
    """Seed, build the splits and the model, and train: everything of a run that ``eval`` cannot change.

    Returns what :func:`write_run` needs to evaluate the selected checkpoint on the experiment
    (or on another experiment of the same training group, see :func:`run_group`).
    ``read_samples``: how the stores are read (:func:`polysent.data.build_splits`).
    """
    exp = experiment_entry({exp_name: exp}, exp_name)
    settings = run_settings(train_cfg, exp)
    threads = threads or settings["threads"]
    seed_everything(seed, threads)
    started = time.perf_counter()
    device = torch.device(
        settings["device"] if settings["device"] != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    task = {**schema_defaults("experiments", "*"), **exp}["task"]
    splits = build_splits(stores, exp, seed, settings["max_len"], settings["standardize"], read_samples)
    n_out = 1 if task == "sentiment" else len(splits.emotions)
    if n_out == 0:
        raise ValueError(f"experiment {exp_name}: task 'emotion' needs a non-empty 'emotions' list")
    model = build_model(exp["model"], splits.dims, n_out=n_out, task=task, **model_kwargs(exp, settings)).to(device)
    nce = None
    if exp.get("nce"):
        nce = NCEObjective(exp["nce"], model.rep_dims, **settings["nce"]).to(device)
    log.info("%s seed %d: %s (%d params) on %s", exp_name, seed, exp["model"], count_parameters(model), splits.report)
    fit = train_model(model, nce, splits, task, settings, seed, device)
    return {
        "seed": seed,
        "settings": settings,
        "device": device,
        "task": task,
        "n_out": n_out,
        "splits": splits,
        "model": model,
        "nce": nce,
        "fit": fit,
        "started": started,
        "key": training_key(exp),
        "eval": exp["eval"],
        "train_cfg": train_cfg,
    }


def write_run(
    trained: dict,
    stores: dict[str, str],
    exp: dict,
    out_dir: str | Path,
    exp_name: str = "experiment",
    read_samples=samples_from_store,
) -> dict:
    """Evaluate a trained run on ``exp``'s valid and test splits and write its run folder.

    ``exp`` may differ from the experiment ``trained`` was trained for only in the keys that
    do not change training (:data:`NOT_TRAINING`); its own splits are rebuilt so that its test
    split and its sample report are its own.
    """
    out_dir = Path(out_dir)
    exp = experiment_entry({exp_name: exp}, exp_name)
    if training_key(exp) != trained["key"]:
        raise ValueError(
            f"experiment {exp_name}: its training-relevant keys differ from the trained run's; "
            "it cannot share that training run (polysent.experiments.training_key)"
        )
    # Settings and task from this experiment's own entry (equal values to the trained one's).
    settings, task = run_settings(trained["train_cfg"], exp), {**schema_defaults("experiments", "*"), **exp}["task"]
    seed, device = trained["seed"], trained["device"]
    model, nce, fit, n_out = trained["model"], trained["nce"], trained["fit"], trained["n_out"]
    splits = trained["splits"]
    if exp["eval"] != trained["eval"]:
        # Same train/valid samples (deterministic, eval-independent), this experiment's test split.
        splits = build_splits(stores, exp, seed, settings["max_len"], settings["standardize"], read_samples)
    valid = evaluate(model, splits.valid, settings["eval_batch_size"], fit["task_loss"], device)
    test = evaluate(model, splits.test, settings["eval_batch_size"], fit["task_loss"], device)
    metrics = {
        "experiment": exp_name,
        "seed": seed,
        "model": exp["model"],
        "task": task,
        "train_langs": {k: dict(v) if isinstance(v, dict) else float(v) for k, v in sorted(exp["train"].items())},
        "eval_lang": exp["eval"],
        "best_epoch": fit["best_epoch"],
        "epochs_run": len(fit["history"]),
        "selection": f"valid_{fit['metric']}" if splits.valid else "none_last_epoch",
        "n_params": count_parameters(model) + (count_parameters(nce) if nce is not None else 0),
        "schedule": {k: v for k, v in fit["schedule"].items() if k != "warnings"},
        "valid": {**split_metrics(task, valid["pred"], splits.valid, splits.emotions), "loss": valid["loss"]},
        "test": {**split_metrics(task, test["pred"], splits.test, splits.emotions), "loss": test["loss"]},
        "warnings": splits.report.get("warnings", []) + fit["schedule"]["warnings"],
        "data": {k: v for k, v in splits.report.items() if k not in ("dropped_empty", "warnings")}
        | {"dropped_empty": len(splits.report["dropped_empty"]), "dims": splits.dims},
    }
    io.write_json(out_dir / "metrics.json", json_clean(metrics))
    io.write_parquet(
        out_dir / "predictions.parquet",
        runfiles.prediction_table(
            task,
            {"valid": splits.valid, "test": splits.test},
            {"valid": valid["pred"], "test": test["pred"]},
            splits.emotions,
        ),
        provenance={"experiment": exp_name, "seed": seed, "model": exp["model"]},
    )
    io.write_text(out_dir / "history.csv", runfiles.history_csv(fit["history"]))
    modalities = getattr(model, "modalities", MODALITIES)
    io.write_parquet(
        out_dir / "decisions.parquet",
        runfiles.decision_table(test["decisions"], "test", modalities),
        provenance={"experiment": exp_name, "seed": seed, "adaptive": bool(test["decisions"])},
    )
    checkpoint.write_checkpoint(
        out_dir,
        {
            "model": exp["model"],
            "kwargs": model_kwargs(exp, settings),
            "dims": splits.dims,
            "task": task,
            "n_out": n_out,
            "emotions": splits.emotions,
            # how samples were prepared, so a bundle (polysent.bundle) can prepare new ones alike
            "inputs": {k: settings[k] for k in ("max_len", "standardize", "eval_batch_size")},
            # what the run depends on (not its label/paper/group/seeds: editing those re-runs nothing)
            "experiment": run_entry(exp),
            "seed": seed,
        },
        model.state_dict(),
        nce.state_dict() if nce is not None else None,
        splits.normalizer,
    )
    log.info(
        "%s seed %d done in %.1f s: best epoch %d, test %s",
        exp_name,
        seed,
        time.perf_counter() - trained["started"],
        fit["best_epoch"],
        {k: metrics["test"][k] for k in ("mae", "corr") if k in metrics["test"]},
    )
    return metrics


# ---------------------------------------------------------------------------- training groups


def run_group(
    stores: dict[str, str],
    members: dict[str, dict],
    train_cfg: dict,
    runs: list[dict],
    threads: int | None = None,
) -> list[dict]:
    """Train each seed of a training group once and write every member's run folder from it.

    ``members``: name -> experiment entry (all with the same :func:`training_key`);
    ``runs``: ``{"experiment", "seed", "out_dir"}`` per run folder to write. The folders are
    byte-identical to :func:`run_experiment` of each (experiment, seed): the training is the
    same (it depends only on the training key and the seed) and evaluation is deterministic.
    Each feature store is read once for the whole group (:class:`polysent.data.StoreSamples`).
    """
    keys = {name: training_key(experiment_entry(members, name)) for name in members}
    if len(set(keys.values())) > 1:
        raise ValueError(
            f"experiments {sorted(members)} do not share their training-relevant keys; "
            "they cannot form one training group"
        )
    unknown = sorted({r["experiment"] for r in runs} - set(members))
    if unknown:
        raise ValueError(f"runs name experiment(s) {unknown} outside the group {sorted(members)}")
    results = []
    read_samples = StoreSamples()  # each store is read once for all seeds and members
    for seed in sorted({int(r["seed"]) for r in runs}):
        of_seed = sorted((r for r in runs if int(r["seed"]) == seed), key=lambda r: r["experiment"])
        first = of_seed[0]["experiment"]
        trained = train_run(stores, members[first], train_cfg, seed, first, threads, read_samples)
        for r in of_seed:
            results.append(
                write_run(trained, stores, members[r["experiment"]], r["out_dir"], r["experiment"], read_samples)
            )
        del trained  # free the model and samples before the next seed
    return results


# ---------------------------------------------------------------------------------------- CLI


def add_cli(sub) -> None:
    p = sub.add_parser("train", help="train and evaluate one experiment with one seed")
    p.add_argument(
        "--store",
        action="append",
        required=True,
        metavar="LANG=PATH",
        help="feature store of a language (repeat per language)",
    )
    p.add_argument("--config", required=True, help="YAML config with 'train' and 'experiments' sections")
    p.add_argument("--experiment", required=True, help="experiment name in the config")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument("--threads", type=int, default=None)
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    from polysent.config import check_experiments, read_yaml, schema_dir, validate_config

    stores = key_values(args.store, "--store", "LANG=PATH")
    # Validated like the workflow's config, so a CLI run trains with the same (schema) defaults;
    # a file holding only experiments is given the languages of its --store arguments.
    config = read_yaml(args.config) or {}
    config.setdefault("languages", sorted(stores))
    validate_config(config, schema_dir())
    exps = config.get("experiments") or {}
    if args.experiment not in exps:
        raise SystemExit(f"experiment {args.experiment!r} not in {args.config}; have {sorted(exps)}")
    check_experiments(config, [args.experiment])
    metrics = run_experiment(
        stores,
        exps[args.experiment],
        config.get("train") or {},
        args.seed,
        args.out,
        exp_name=args.experiment,
        threads=args.threads,
    )
    print(json.dumps(json_clean(metrics["test"]), indent=2, sort_keys=True))
    return 0
