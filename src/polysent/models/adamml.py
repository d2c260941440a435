"""AdaMML policy network + Contextual LSTM fusion (paper §5.2, §7.2; Panda et al. 2021,
Poria et al. 2017).

1. **Windows.** The L word steps are cut into S = ceil(L / w) windows of ``window`` words; a
   window is real when it holds at least one real word (``window_mask`` (B, S)).
2. **Policy** (AdaMML ``PolicyNet`` with ``causality_modeling='lstm'``): the masked means of the
   window's words per modality, concatenated, go through ``Linear→ReLU`` to ``policy_feat``; an
   ``LSTMCell`` reads ``[f_s ; logits_{s-1}]``; ``Linear(·, 2)`` per modality gives skip/use
   logits. Training: straight-through hard Gumbel-Softmax at temperature
   ``tau0 · tau_decay^epoch`` (decisions exactly 0/1, gradients through the soft sample).
   Evaluation: ``argmax`` of the logits (the official code samples at test time too; we make
   evaluation deterministic and say so).
3. **Unimodal encoders** (bc-LSTM level 1): per modality a BiLSTM over the words *inside* each
   window, final states → ``Linear→tanh`` (``uni_dim``). The decision multiplies this window
   feature, so a skipped modality contributes exactly zeros for that window — no information
   from it leaks through a neighbouring window.
4. **Contextual LSTM fusion** (bc-LSTM level 2): BiLSTM over the real windows of the
   concatenated gated features, ``Dense→ReLU``, and the **last output** (paper: "use the last
   output of the final contextual LSTM": final forward state at the last real window with the
   backward state) → output layer.

Loss: L1 + optional decision loss (paper eq. DL): per sample the mean over real windows of
``|Σ_m d_{s,m} - target|``, averaged over the batch, times ``dl_weight``.

``warmup_epochs``: the policy is frozen (still sampling) for the first epochs, as AdaMML's
warm-up stage, so the fusion network first learns with random modality dropout.
``policy_dropout`` / ``fusion_dropout``: the dropout placements compared in the paper's Fig. 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import PolysentModel, check_modalities
from .heads import OutputHead
from .layers import run_rnn


class AdaMMLCLSTM(PolysentModel):
    regression_loss = "l1"
    optim_defaults = {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0}

    def __init__(
        self,
        dims: dict[str, int],
        n_out: int = 1,
        task: str = "sentiment",
        modalities=("text", "visual", "acoustic"),
        window: int = 10,
        policy_feat: int = 128,
        policy_hidden: int = 256,
        uni_hidden: int = 100,
        uni_dim: int = 100,
        fusion_hidden: int = 300,
        dense: int = 500,
        tau0: float = 5.0,
        tau_decay: float = 0.965,
        decision_loss: bool = False,
        target: float = 2.0,
        dl_weight: float = 1.0,
        policy_dropout: float = 0.0,
        fusion_dropout: float = 0.0,
        warmup_epochs: int = 0,
    ):
        super().__init__()
        self.modalities = check_modalities(modalities)
        M = len(self.modalities)
        if window < 1:
            raise ValueError("window must be >= 1 word")
        if decision_loss and not 0 <= target <= M:
            raise ValueError(f"decision-loss target {target} must be within [0, {M}]")
        self.window, self.tau0, self.tau_decay = window, tau0, tau_decay
        self.decision_loss, self.target, self.dl_weight = decision_loss, float(target), dl_weight
        self.warmup_epochs = warmup_epochs
        self.tau = tau0
        d_in = sum(dims[m] for m in self.modalities)
        self.policy_drop = nn.Dropout(policy_dropout)
        self.policy_feat = nn.Sequential(nn.Linear(d_in, policy_feat), nn.ReLU())
        self.policy_cell = nn.LSTMCell(policy_feat + 2 * M, policy_hidden)
        self.policy_fc = nn.ModuleList(nn.Linear(policy_hidden, 2) for _ in self.modalities)
        self.uni_rnn = nn.ModuleDict(
            {m: nn.LSTM(dims[m], uni_hidden, batch_first=True, bidirectional=True) for m in self.modalities}
        )
        self.uni_out = nn.ModuleDict({m: nn.Linear(2 * uni_hidden, uni_dim) for m in self.modalities})
        self.fusion_drop = nn.Dropout(fusion_dropout)
        self.fusion = nn.LSTM(M * uni_dim, fusion_hidden, batch_first=True, bidirectional=True)
        self.dense = nn.Linear(2 * fusion_hidden, dense)
        self.head = OutputHead(dense, n_out, task)
        self.policy_modules = [self.policy_feat, self.policy_cell, self.policy_fc]
        self.rep_dims = {"fused": dense}

    # ---------------------------------------------------------------------------- schedule
    def set_epoch(self, epoch: int) -> None:
        self.tau = self.tau0 * self.tau_decay**epoch
        frozen = epoch < self.warmup_epochs
        for module in self.policy_modules:
            for p in module.parameters():
                p.requires_grad_(not frozen)

    def history_extra(self) -> dict[str, float]:
        return {"temperature": float(self.tau)}

    # ---------------------------------------------------------------------------- parts
    def _windows(self, x: torch.Tensor, mask: torch.Tensor):
        B, L, _ = x.shape
        S = -(-L // self.window)
        pad = S * self.window - L
        x = F.pad(x, (0, 0, 0, pad)).view(B, S, self.window, -1)
        m = F.pad(mask, (0, pad)).view(B, S, self.window)
        return x, m

    def policy(self, means: torch.Tensor, wmask: torch.Tensor) -> torch.Tensor:
        """Skip/use logits (B, S, M, 2), causal over windows."""
        B, S, _ = means.shape
        M = len(self.modalities)
        f = self.policy_feat(self.policy_drop(means))
        h = means.new_zeros(B, self.policy_cell.hidden_size)
        c = torch.zeros_like(h)
        prev = means.new_zeros(B, 2 * M)
        logits = []
        for s in range(S):
            h, c = self.policy_cell(torch.cat([f[:, s], prev], -1), (h, c))
            step = torch.stack([fc(h) for fc in self.policy_fc], 1)  # (B, M, 2)
            logits.append(step)
            prev = step.reshape(B, 2 * M)
        return torch.stack(logits, 1)

    def decide(self, logits: torch.Tensor) -> torch.Tensor:
        """Hard 0/1 'use' decisions (B, S, M): Gumbel straight-through in training, argmax at eval."""
        if self.training:
            return F.gumbel_softmax(logits, tau=self.tau, hard=True, dim=-1)[..., 1]
        return (logits[..., 1] > logits[..., 0]).to(logits.dtype)

    def forward(self, batch: dict) -> dict:
        mask = batch["mask"]
        B = mask.size(0)
        means, unis = [], []
        wmask = None
        for m in self.modalities:
            xw, mw = self._windows(batch[m], mask)  # (B,S,w,D), (B,S,w)
            S = xw.size(1)
            wlen = mw.sum(-1)
            wmask = (wlen > 0).to(mask.dtype)
            means.append((xw * mw.unsqueeze(-1)).sum(2) / wlen.clamp_min(1).unsqueeze(-1))
            flat_x = xw.reshape(B * S, self.window, -1)
            flat_m = mw.reshape(B * S, self.window)
            _, h_n = run_rnn(self.uni_rnn[m], flat_x, flat_m)
            h = torch.cat([h_n[0], h_n[1]], -1).view(B, S, -1)
            unis.append(torch.tanh(self.uni_out[m](h)) * wmask.unsqueeze(-1))
        logits = self.policy(torch.cat(means, -1), wmask)
        d = self.decide(logits) * wmask.unsqueeze(-1)
        gated = torch.cat([u * d[..., k : k + 1] for k, u in enumerate(unis)], -1)
        _, h_n = run_rnn(self.fusion, self.fusion_drop(gated), wmask)
        fused = F.relu(self.dense(torch.cat([h_n[0], h_n[1]], -1)))
        aux = {}
        if self.training and self.decision_loss:
            per_window = (d.sum(-1) - self.target).abs() * wmask
            dl = (per_window.sum(1) / wmask.sum(1).clamp_min(1)).mean()
            aux["decision"] = self.dl_weight * dl
        return {
            "pred": self.head(self.fusion_drop(fused)),
            "aux": aux,
            "reps": {"fused": fused},
            "decisions": d,
            "window_mask": wmask,
            "policy_logits": logits,
        }
