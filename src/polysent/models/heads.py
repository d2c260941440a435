"""Output heads and task losses shared by every model.

* ``sentiment``: one regression output. Models that bound it (Multilogue-Net's ``3·tanh``) say
  so with ``bound``; the loss is the model's own (L1 for MCTN/MulT/AdaMML, MSE for
  Multilogue-Net as in their papers).
* ``emotion``: one logit per label, multi-label binary cross-entropy (paper §5.4, eq. 8), with
  optional positive-class weights ``n_neg / n_pos`` per label from the training split, the
  "weight adjustment" the paper reports as a precision/recall trade-off.

Where this follows the paper's text, where code, and why: the losses are the paper's text,
per model — MAE for MCTN (§6.1.1, eq. 11), MulT (§6.1.3) and AdaMML (§5.2, "MAE is used to
train"; its code's ``mae_loss``), MSE for Multilogue-Net (§6.1.2, the ``MaskedMSELoss`` of its
code) and for the NCE rows built on it ("max MSE + L_cross + L_inter"), BCE for emotions (eq. 8).
The text does not say how the sentiment output is bounded: Multilogue-Net's ``3·tanh`` is its code
(``multilogue/model.py:171`` ``active_num * tanh``, 3 for T + V + A; ``model_nce.py:157``
``3 * tanh``), the other models are unbounded as their official code. The text names positive
weighting without a formula; ``n_neg / n_pos`` is the usual ``pos_weight`` of
``BCEWithLogitsLoss`` (the emotion code is not in the paper's repository).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger("polysent.models")

TASKS = ("sentiment", "emotion")


class OutputHead(nn.Module):
    """Linear output layer; ``bound * tanh`` for bounded sentiment regression."""

    def __init__(self, d_in: int, n_out: int, task: str, bound: float | None = None):
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
        self.linear = nn.Linear(d_in, n_out)
        self.bound = bound if task == "sentiment" else None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.linear(h)
        return self.bound * torch.tanh(out) if self.bound else out


def positive_weights(labels: np.ndarray, names: list[str]) -> torch.Tensor:
    """``n_neg / n_pos`` per label column of ``labels`` (N, K); 1 where a label has no positives."""
    labels = np.asarray(labels) > 0.5
    pos = labels.sum(0).astype(np.float64)
    neg = labels.shape[0] - pos
    weights = np.ones(labels.shape[1])
    for k, name in enumerate(names):
        if pos[k] == 0:
            log.warning("emotion %r has no positive training sample; its BCE weight stays 1", name)
        else:
            weights[k] = neg[k] / pos[k]
    return torch.tensor(weights, dtype=torch.float32)


class TaskLoss(nn.Module):
    """The task loss on ``pred`` (B, n_out): L1/MSE for sentiment, BCE-with-logits for emotions."""

    def __init__(self, task: str, regression: str = "l1", pos_weight: torch.Tensor | None = None):
        super().__init__()
        if regression not in ("l1", "mse"):
            raise ValueError(f"regression loss must be 'l1' or 'mse', got {regression!r}")
        self.task, self.regression = task, regression
        self.register_buffer("pos_weight", pos_weight if pos_weight is not None else torch.ones(0))

    def forward(self, pred: torch.Tensor, batch: dict) -> torch.Tensor:
        if self.task == "sentiment":
            y = batch["y"].to(pred.dtype)
            p = pred.reshape(-1)
            return F.l1_loss(p, y) if self.regression == "l1" else F.mse_loss(p, y)
        target = batch["emotions"].to(pred.dtype)
        pw = self.pos_weight if self.pos_weight.numel() else None
        return F.binary_cross_entropy_with_logits(pred, target, pos_weight=pw)
