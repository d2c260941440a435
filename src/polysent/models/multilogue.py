"""Multilogue-Net (Shenoy & Sardana 2020), adapted to word-aligned monologues (paper §6.1.2).

**Time axis.** The original runs over the *utterances* of a conversation (one vector per
utterance and modality). Our batches are word-aligned segments, so the recurrence runs over the
**words of one segment** (reference option (b)): each word step updates, per modality, a context
GRU g, a speaker-state GRU q and an emotion GRU e, exactly as the original cell. The pairwise
bimodal attention then relates the emotion sequences of two modalities word by word, and the
segment's score comes from the masked mean over its words of the fused vector ``z`` (the
original predicts per utterance; one label per segment needs one pooling step).

**One speaker.** CMU-MOSEAS videos are monologues: the paper sets "the speaker input to be the
same across all video segments", so ``qmask`` is 1 for the only party everywhere, the party
selection is the identity and the listener update never happens.

As in the original, the context input of every modality is the **text** (``U_context =
textf``) when text is one of the modalities, the context GRU attends over its *previous*
states only (``SimpleAttention``), recurrent dropout follows each GRU, and the regression output
is ``3·tanh`` trained with MSE (Adam 1e-4, weight decay 1e-4). Fixes: the bimodal attention
masks padded keys (the original attends to padded utterances), and pooling ignores pads.

``reps`` for NCE (paper §7.1: "hidden states outputted by the pairwise bi-modal attention"):
``"t|v"`` / ``"t|a"`` are the masked means of BiAtt(text, video/audio); ``"text"`` etc. the
masked means of the per-modality hidden sequences.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from .base import MODALITY_KEYS, PolysentModel, check_modalities
from .heads import OutputHead
from .layers import masked_mean, masked_softmax


class GroupedGRU(nn.Module):
    """M independent ``GRUCell``s (one per modality) stepped together with batched matmuls.

    The part of the input known for every step in advance (the modality's own features, the
    context features) is projected outside the time loop by the caller (``gi_pre``); only the
    recurrent part of the input (``x``) and the hidden state are multiplied per step. Same
    equations and initialisation as ``torch.nn.GRUCell``; one loop for three modalities keeps the
    word-level recurrence affordable on a CPU.
    """

    def __init__(self, groups: int, d_x: int, hidden: int):
        super().__init__()
        bound = 1.0 / math.sqrt(hidden)
        self.w_x = nn.Parameter(torch.empty(groups, d_x, 3 * hidden).uniform_(-bound, bound))
        self.w_h = nn.Parameter(torch.empty(groups, hidden, 3 * hidden).uniform_(-bound, bound))
        self.b_h = nn.Parameter(torch.empty(groups, 1, 3 * hidden).uniform_(-bound, bound))

    def forward(self, gi_pre: torch.Tensor, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        gi = gi_pre + torch.bmm(x, self.w_x)
        gh = torch.baddbmm(self.b_h, h, self.w_h)
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h


class MultilogueCells(nn.Module):
    """The per-modality recurrences (context GRU g, state GRU q, emotion GRU e) over word steps.

    Per modality m and word t (one party, so the speaker's state is the only state):
    ``g_t = GRU_g([uc_t ; q_{t-1}], g_{t-1})``; ``c_t`` = attention over ``g_1..g_{t-1}``;
    ``q_t = GRU_p([u_t ; c_t], q_{t-1})``; ``e_t = GRU_e(q_t, e_{t-1})``; recurrent dropout after
    each GRU, as the original cell.
    """

    def __init__(self, d_in: list[int], d_ctx: list[int], d_g: int, d_p: int, d_e: int, rec_dropout: float):
        super().__init__()
        M = len(d_in)
        self.in_g = nn.ModuleList(nn.Linear(d, 3 * d_g) for d in d_ctx)  # uc part of GRU_g's input
        self.in_p = nn.ModuleList(nn.Linear(d, 3 * d_p) for d in d_in)  # u part of GRU_p's input
        self.b_e = nn.Parameter(torch.zeros(M, 1, 3 * d_e))
        self.gru_g = GroupedGRU(M, d_p, d_g)
        self.gru_p = GroupedGRU(M, d_g, d_p)
        self.gru_e = GroupedGRU(M, d_p, d_e)
        self.att = nn.Parameter(torch.empty(M, 1, d_g).uniform_(-1 / math.sqrt(d_g), 1 / math.sqrt(d_g)))
        self.drop = nn.Dropout(rec_dropout)
        self.d_g, self.d_p, self.d_e = d_g, d_p, d_e

    def forward(self, us: list[torch.Tensor], ucs: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """``us``/``ucs``: per modality (B, L, D); returns the emotion states (M, B, L, d_e)."""
        M = len(us)
        B, L, _ = us[0].shape
        pre_g = torch.stack([lin(uc) for lin, uc in zip(self.in_g, ucs)])  # (M, B, L, 3d_g)
        pre_p = torch.stack([lin(u) for lin, u in zip(self.in_p, us)])  # (M, B, L, 3d_p)
        g = us[0].new_zeros(M, B, self.d_g)
        q = us[0].new_zeros(M, B, self.d_p)
        e = us[0].new_zeros(M, B, self.d_e)
        g_hist, g_scores, es = [], [], []
        for t in range(L):
            g_new = self.drop(self.gru_g(pre_g[:, :, t], q, g))
            if t == 0:
                c = torch.zeros_like(g_new)
            else:
                alpha = masked_softmax(torch.stack(g_scores, -1), mask[:, :t].unsqueeze(0))  # (M,B,t)
                c = torch.matmul(alpha.unsqueeze(-2), torch.stack(g_hist, 2)).squeeze(-2)
            q = self.drop(self.gru_p(pre_p[:, :, t], c, q))
            e = self.drop(self.gru_e(self.b_e, q, e))
            g = g_new
            g_hist.append(g_new)
            g_scores.append((g_new * self.att).sum(-1))
            es.append(e)
        return torch.stack(es, 2)


def bimodal_attention(m1, m2, mask):
    """Multilogue's BiModalAttention on (B, L, D) pairs, with padded keys masked out."""
    n1 = masked_softmax(torch.bmm(m1, m2.transpose(1, 2)), mask.unsqueeze(1))
    n2 = masked_softmax(torch.bmm(m2, m1.transpose(1, 2)), mask.unsqueeze(1))
    a1 = torch.bmm(n1, m2) * m1
    a2 = torch.bmm(n2, m1) * m2
    return torch.cat([a1, a2], -1) * mask.unsqueeze(-1)


class MultilogueNet(PolysentModel):
    regression_loss = "mse"
    optim_defaults = {"optimizer": "adam", "lr": 1e-4, "weight_decay": 1e-4}

    def __init__(
        self,
        dims: dict[str, int],
        n_out: int = 1,
        task: str = "sentiment",
        modalities=("text", "acoustic", "visual"),
        d_g: int = 150,
        d_p: int = 150,
        d_e: int = 100,
        d_h: int = 100,
        dropout: float = 0.25,
        rec_dropout: float = 0.1,
    ):
        super().__init__()
        self.modalities = check_modalities(modalities)
        self.context = "text" if "text" in self.modalities else None
        self.cells = MultilogueCells(
            [dims[m] for m in self.modalities],
            [dims[self.context or m] for m in self.modalities],
            d_g, d_p, d_e, rec_dropout,
        )
        self.hidden = nn.ModuleDict({m: nn.Linear(d_e, d_h) for m in self.modalities})
        self.drop = nn.Dropout(dropout)
        # pairs in the original's order (t,a), (v,a), (t,v) when all three are present
        order = {"text": 0, "visual": 1, "acoustic": 2}
        self.pairs = sorted(
            itertools.combinations(sorted(self.modalities, key=order.get), 2),
            key=lambda p: ("acoustic" not in p, p),
        )
        d_z = len(self.pairs) * 2 * d_h + len(self.modalities) * d_h
        self.head = OutputHead(d_z, n_out, task, bound=3.0)
        self.rep_dims = {m: d_h for m in self.modalities}
        for a, b in self.pairs:
            self.rep_dims[f"{MODALITY_KEYS[a]}|{MODALITY_KEYS[b]}"] = 2 * d_h

    def forward(self, batch: dict) -> dict:
        mask = batch["mask"]
        es = self.cells([batch[m] for m in self.modalities],
                        [batch[self.context or m] for m in self.modalities], mask)
        h = {}
        for k, m in enumerate(self.modalities):
            h[m] = self.drop(self.hidden[m](self.drop(es[k]))) * mask.unsqueeze(-1)
        reps, parts = {}, []
        for a, b in self.pairs:
            att = bimodal_attention(h[a], h[b], mask)
            parts.append(att)
            reps[f"{MODALITY_KEYS[a]}|{MODALITY_KEYS[b]}"] = masked_mean(att, mask)
        parts += [h[m] for m in self.modalities]
        for m in self.modalities:
            reps[m] = masked_mean(h[m], mask)
        z = masked_mean(torch.cat(parts, -1), mask)
        return {"pred": self.head(z), "aux": {}, "reps": reps}
