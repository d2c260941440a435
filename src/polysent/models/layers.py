"""Layers shared by the models: masked pooling, packed RNNs, masked attention, positions.

Every helper takes a float ``mask`` (B, L) with 1 on real words. Padding is always *after* the
real steps (see :func:`polysent.data.collate`), so "last valid step" is ``length - 1`` and causal
recurrences never see a pad before a real word.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

NEG_INF = float("-inf")


def lengths_of(mask: torch.Tensor) -> torch.Tensor:
    return mask.sum(1).long()


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` (B, L, D) over the real steps; zero for an all-pad row."""
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


def last_valid(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` (B, L, D) at each row's last real step."""
    idx = (lengths_of(mask) - 1).clamp_min(0)
    return x[torch.arange(x.size(0), device=x.device), idx]


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE over real steps and all feature dims of ``target`` (pads never count)."""
    m = mask.unsqueeze(-1).to(pred.dtype)
    return ((pred - target) ** 2 * m).sum() / (m.sum() * pred.size(-1)).clamp_min(1.0)


def run_rnn(rnn: nn.RNNBase, x: torch.Tensor, mask: torch.Tensor):
    """Run a batch-first RNN over the real steps only; return (output (B, L, H*dirs), h_n).

    ``pack_padded_sequence`` makes outputs at real steps independent of how much padding
    follows, and ``h_n`` is the state at each row's last real step (and, for the backward
    direction, at its first step).
    """
    lengths = lengths_of(mask).clamp_min(1).cpu()
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, h = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
    h_n = h[0] if isinstance(h, tuple) else h
    return out * mask.unsqueeze(-1).to(out.dtype), h_n


class BiLSTMSum(nn.Module):
    """Bidirectional LSTM whose two directions are summed (MCTN's encoder, ``merge_mode='sum'``)."""

    def __init__(self, d_in: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.rnn = nn.LSTM(d_in, hidden, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out, _ = run_rnn(self.rnn, x, mask)
        return out[..., : self.hidden] + out[..., self.hidden :]


def masked_softmax(scores: torch.Tensor, key_mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax of ``scores`` with ``-inf`` where ``key_mask`` is 0 (rows never fully masked here)."""
    scores = scores.masked_fill(key_mask == 0, NEG_INF)
    return torch.softmax(scores, dim=dim)


def sinusoidal_positions(length: int, dim: int, device=None) -> torch.Tensor:
    """Vaswani et al.'s sinusoidal table (length, dim), positions 1..length as in fairseq/MulT."""
    half = dim // 2
    scale = math.log(10000) / max(half - 1, 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=device) * -scale)
    pos = torch.arange(1, length + 1, dtype=torch.float32, device=device).unsqueeze(1)
    table = torch.cat([torch.sin(pos * freqs), torch.cos(pos * freqs)], dim=1)
    if dim % 2:
        table = F.pad(table, (0, 1))
    return table


def count_parameters(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))
