"""Evaluation metrics of the paper and of the MulT / MMSA conventions.

Sentiment (regression in [-3, 3]):

* ``mae`` mean absolute error, ``corr`` Pearson r (``np.corrcoef``; NaN when a side is constant,
  which is what a collapsed model deserves rather than a flattering 0).
* ``acc2_has0`` / ``f1_has0``: the "with zero" convention (MMSA ``Has0_acc_2``): ``truth >= 0``
  vs ``pred >= 0`` over **all** samples, so label 0 counts as positive.
* ``acc2_non0`` / ``f1_non0``: the MulT ``exclude_zero=True`` convention: ``> 0`` over the
  samples whose label is not 0.
* ``acc5`` / ``acc7``: share of equal ``np.round`` after clipping **both** predictions and truths
  to [-2, 2] / [-3, 3]. ``np.round`` rounds halves to even (0.5 -> 0, 2.5 -> 2), as the published
  numbers do.
* F1 scores are *weighted* F1 over the two classes (sklearn ``average='weighted'``).

Emotions (multi-label, one sigmoid per label, threshold 0.5): per-label precision, recall, F1,
positives count, and the macro F1 over labels.
"""

from __future__ import annotations

import numpy as np


def _as_1d(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(-1)


def pearson_r(pred, truth) -> float:
    pred, truth = _as_1d(pred), _as_1d(truth)
    if pred.size < 2 or np.std(pred) == 0 or np.std(truth) == 0:
        return float("nan")
    return float(np.corrcoef(pred, truth)[0, 1])


def binary_prf(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall, F1 of the positive class (0 where undefined, as sklearn's zero_division=0)."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    tp = float(np.sum(pred & truth))
    fp = float(np.sum(pred & ~truth))
    fn = float(np.sum(~pred & truth))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def weighted_f1(pred: np.ndarray, truth: np.ndarray) -> float:
    """Support-weighted mean of the F1 of both classes (sklearn ``f1_score(average='weighted')``)."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    if truth.size == 0:
        return float("nan")
    total = 0.0
    for cls in (True, False):
        support = float(np.sum(truth == cls))
        if support:
            total += support * binary_prf(pred == cls, truth == cls)[2]
    return total / truth.size


def multiclass_acc(pred, truth, clip: float) -> float:
    pred = np.round(np.clip(_as_1d(pred), -clip, clip))
    truth = np.round(np.clip(_as_1d(truth), -clip, clip))
    return float(np.mean(pred == truth)) if truth.size else float("nan")


def sentiment_metrics(pred, truth) -> dict[str, float]:
    """All sentiment metrics of one split; keys are the ``metrics.json`` contract."""
    pred, truth = _as_1d(pred), _as_1d(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"pred {pred.shape} and truth {truth.shape} differ in shape")
    n = int(truth.size)
    if n == 0:
        raise ValueError("no samples to evaluate")
    nz = truth != 0
    return {
        "n": n,
        "mae": float(np.mean(np.abs(pred - truth))),
        "corr": pearson_r(pred, truth),
        "acc2_has0": float(np.mean((pred >= 0) == (truth >= 0))),
        "f1_has0": weighted_f1(pred >= 0, truth >= 0),
        "acc2_non0": float(np.mean((pred[nz] > 0) == (truth[nz] > 0))) if nz.any() else float("nan"),
        "f1_non0": weighted_f1(pred[nz] > 0, truth[nz] > 0) if nz.any() else float("nan"),
        "acc5": multiclass_acc(pred, truth, 2.0),
        "acc7": multiclass_acc(pred, truth, 3.0),
    }


def batched_sentiment_metric(metric: str, pred, truth) -> np.ndarray:
    """One sentiment metric over the last axis of broadcastable ``pred`` / ``truth`` arrays.

    The same definitions as :func:`sentiment_metrics` (``r`` = its ``corr``), for many
    resamples at once (the findings' bootstrap): ``pred`` (k, B, n) against ``truth`` (B, n)
    gives (k, B). r is NaN where a side is constant; ``acc2_non0`` is NaN where every label is 0.
    """
    pred, truth = np.asarray(pred, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    pred, truth = np.broadcast_arrays(pred, truth)
    if metric == "r":
        dp = pred - pred.mean(axis=-1, keepdims=True)
        dt = truth - truth.mean(axis=-1, keepdims=True)
        denom = np.sqrt(np.sum(dp * dp, axis=-1) * np.sum(dt * dt, axis=-1))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denom > 0, np.sum(dp * dt, axis=-1) / np.where(denom > 0, denom, 1.0), np.nan)
    if metric == "mae":
        return np.mean(np.abs(pred - truth), axis=-1)
    if metric == "acc2_has0":
        return np.mean((pred >= 0) == (truth >= 0), axis=-1)
    if metric == "acc2_non0":
        nz = truth != 0
        count = nz.sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, np.sum(((pred > 0) == (truth > 0)) & nz, axis=-1) / np.maximum(count, 1), np.nan)
    if metric == "acc7":
        return np.mean(np.round(np.clip(pred, -3.0, 3.0)) == np.round(np.clip(truth, -3.0, 3.0)), axis=-1)
    raise ValueError(f"no batched form of metric {metric!r}; have r, mae, acc2_has0, acc2_non0, acc7")


def emotion_metrics(prob, truth, labels: list[str], threshold: float = 0.5) -> dict:
    """Per-label precision/recall/F1 of ``prob >= threshold`` against 0/1 ``truth`` (N, K)."""
    prob = np.asarray(prob, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64) > 0.5
    if prob.shape != truth.shape or prob.shape[1] != len(labels):
        raise ValueError(f"prob {prob.shape}, truth {truth.shape} and {len(labels)} labels disagree")
    per_label = {}
    for k, label in enumerate(labels):
        p, r, f = binary_prf(prob[:, k] >= threshold, truth[:, k])
        per_label[label] = {"precision": p, "recall": r, "f1": f, "n_pos": int(truth[:, k].sum())}
    macro = float(np.mean([v["f1"] for v in per_label.values()])) if labels else float("nan")
    return {"per_label": per_label, "macro_f1": macro, "n": int(prob.shape[0])}
