"""Adam / AdamW and a plateau schedule for the training loop, without ``torch.optim.Optimizer``.

Why not the classes themselves: building a ``torch.optim.Optimizer`` and calling its ``step``
imports ``torch._dynamo`` (its ``add_param_group``/``zero_grad`` are wrapped by
``torch._disable_dynamo`` and ``step`` calls ``torch._dynamo.graph_break``), about 1 CPU-s per
training process, and the demo starts 22 of them (docs/BENCHMARKS.md). The update itself is not
re-written here: :class:`Adam` keeps the per-parameter state exactly as ``torch.optim.Adam``'s
``_init_group`` does and calls torch's own functional update, ``torch.optim.adam.adam`` (which
runs in eager mode without touching dynamo), with the same arguments ``Adam.step`` passes. So the
weights after every step are bit-identical to ``torch.optim.Adam(..., foreach=True)`` /
``torch.optim.AdamW(...)``, and :class:`Plateau` changes the learning rate at exactly the epochs
``torch.optim.lr_scheduler.ReduceLROnPlateau`` (mode ``min``, relative threshold) does;
``tests/test_optim.py`` compares both against torch's classes step by step.
"""

from __future__ import annotations

import math

import torch
from torch.optim.adam import adam as _adam_update


class Adam:
    """``torch.optim.Adam`` (``decoupled=False``) or ``torch.optim.AdamW`` (``decoupled=True``),
    one parameter group, betas (0.9, 0.999), eps 1e-8, no AMSGrad, ``foreach`` as given."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0, decoupled: bool = False,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, foreach: bool = True):  # fmt: skip
        params = list(params)
        if not params:
            raise ValueError("Adam: no parameters to optimise")
        if any(torch.is_complex(p) for p in params):
            raise ValueError("Adam: complex parameters are not supported here")
        if lr < 0.0 or weight_decay < 0.0 or eps < 0.0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"Adam: invalid lr={lr}, weight_decay={weight_decay}, betas={betas} or eps={eps}")
        self.param_groups = [
            {"params": params, "lr": float(lr), "betas": tuple(betas), "eps": eps,
             "weight_decay": weight_decay, "decoupled_weight_decay": decoupled, "foreach": foreach}
        ]  # fmt: skip
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    def zero_grad(self) -> None:
        for p in self.param_groups[0]["params"]:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:  # unused this step: no update, no state (as torch.optim.Adam)
                continue
            if p.grad.is_sparse:
                raise RuntimeError("Adam: sparse gradients are not supported (as torch.optim.Adam)")
            state = self.state.get(p)
            if state is None:
                state = self.state[p] = {
                    "step": torch.tensor(0.0, dtype=_scalar_dtype(), device="cpu"),
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                }
            params.append(p)
            grads.append(p.grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        beta1, beta2 = group["betas"]
        _adam_update(
            params, grads, exp_avgs, exp_avg_sqs, [], steps,
            amsgrad=False, has_complex=False, beta1=beta1, beta2=beta2, lr=group["lr"],
            weight_decay=group["weight_decay"], eps=group["eps"], maximize=False,
            foreach=group["foreach"], capturable=False, differentiable=False, fused=None,
            grad_scale=None, found_inf=None, decoupled_weight_decay=group["decoupled_weight_decay"],
        )  # fmt: skip


def _scalar_dtype() -> torch.dtype:
    # torch.optim.optimizer._get_scalar_dtype(): the step counter follows the default dtype
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


class Plateau:
    """``ReduceLROnPlateau(optimizer, mode="min", patience=patience, factor=factor)`` with its
    other defaults (relative threshold 1e-4, no cooldown, min_lr 0, eps 1e-8)."""

    def __init__(self, optimizer: Adam, patience: int, factor: float = 0.1,
                 threshold: float = 1e-4, eps: float = 1e-8):  # fmt: skip
        if not 0.0 <= factor < 1.0:
            raise ValueError(f"Plateau: factor must be in [0, 1), got {factor}")
        self.optimizer, self.patience, self.factor = optimizer, int(patience), factor
        self.threshold, self.eps = threshold, eps
        self.best, self.num_bad_epochs = math.inf, 0

    def step(self, metric) -> None:
        current = float(metric)
        if current < self.best * (1.0 - self.threshold):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.num_bad_epochs > self.patience:
            for group in self.optimizer.param_groups:
                old = float(group["lr"])
                new = max(old * self.factor, 0.0)
                if old - new > self.eps:
                    group["lr"] = new
            self.num_bad_epochs = 0
