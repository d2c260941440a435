"""MulT — Multimodal Transformer (Tsai et al., ACL 2019), paper §6.1.3.

Per modality a Conv1D projection to ``d`` (kernel ``k``, ``padding=(k-1)//2``, no bias so pads
stay 0), then for every ordered pair (target ← source) of the chosen modalities a crossmodal
transformer (pre-LN, ``layers`` blocks, sqrt(d)-scaled input plus sinusoidal positions, the same
LayerNorm on query and key/value as the official code); per target the crossmodal outputs are
concatenated and passed through a self-attention "memory" transformer; the readout is the
memory output at the **last real word** of each row; then the residual MLP and the output layer.
With all three modalities that is the paper's six crossmodal transformers.

``targets`` chooses which modalities are *predicted from* (default: all of ``modalities``), as
the official ``--lonly`` / ``--aonly`` / ``--vonly`` flags: ``targets: [text]`` with all three
modalities is MulT's own text-only variant (``--lonly``): the L←A and L←V crossmodal branches,
which still read audio and video, the text memory transformer and the head on ``2d``. Where the
official code also builds the two unused memory transformers in that mode (they count in its
``model.parameters()`` but get no gradient), polysent builds only what the forward pass uses.

Any subset of modalities works. With a single modality there is no crossmodal pair: the memory
transformer runs on that modality's projected sequence. That is a plain text-only transformer,
*not* MulT's text-only variant (Table 1 labels it "text-only transformer").

Where this follows the paper's text, where code, and why: the paper's text (§6.1.3) decides what
it states — the crossmodal and memory transformers of Tsai et al., Adam at 1e-3 (the model's
``optim_defaults``), plateau LR reduction with "a tolerance of 20", the MAE loss, word-aligned
inputs run in the unaligned model (the crossmodal attention sees every word of the other
modality; the paper pads to 100 steps, polysent keeps ``train.max_len`` words, 50 in
``config/moseas.yaml``). The paper's repository has no MulT
code, so everything else comes from the official code, the reference the paper cites.

Where polysent follows the official code (yaohungt/Multimodal-Transformer ``src/models.py``,
and thuiar/MMSA ``MULT.py``) rather than the paper's text, which does not say: the attention
dropout of a crossmodal transformer is keyed by its **source** modality (``attn_dropout`` for
text, ``attn_dropout_a`` / ``attn_dropout_v`` for audio / video sources; ``get_network`` at
``src/models.py:68-74``), memory transformers use ``attn_dropout``; training runs every epoch and
keeps the best validation checkpoint with no early stopping (``src/train.py``), and
ReduceLROnPlateau (factor 0.1) on the validation loss with patience 20 ("a tolerance of 20" in
the paper; the official ``--when``) — both overridable in ``train:`` (``early_stopping``,
``plateau_patience``). Kernels T/V/A = 1/3/3 and ``text_dropout`` are MMSA's.

Fixes against the official code: a ``key_padding_mask`` everywhere (the official code finds pads
only through zero first channels, issue #34) and a readout at ``length - 1`` instead of ``h[-1]``,
so the padding direction no longer matters. The memory transformers have ``max(layers, 3)`` blocks as the official code
(``mem_layers`` overrides). ``causal=True`` keeps the official default
``--attn_mask`` (a future mask in every attention).

Training budget against the official code (``src/main.py``, ``src/train.py``): 40 epochs, all
of them run, the best validation checkpoint kept (``early_stopping = False``), ReduceLROnPlateau
patience 20 (``plateau_patience``), gradient norm clipped at 0.8 every step (``grad_clip``, the
official ``--clip``; ``train.grad_clip: null`` uses it, the demo clips at 1.0), Adam 1e-3.
config/moseas.yaml keeps 40 epochs. Dropout placement: as the official code, ``embed_dropout``
0.25 on the sqrt(d)-scaled input of every transformer, attention dropout by source (0.1 / 0.0 /
0.0), ``relu_dropout`` 0.1 and ``res_dropout`` 0.1 inside the layers; two values differ:
``text_dropout`` 0.3 on the text input before its projection (MMSA; the official code uses
``embed_dropout`` 0.25 there) and ``out_dropout`` 0.1 in the residual head (the MulT paper's
MOSEI value; official code 0.0).

``reps``: ``"t|v"``/``"t|a"`` are the masked means of the text←video/audio crossmodal outputs,
``"text"`` etc. the readout of each memory transformer (usable with NCE).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import MODALITY_KEYS, PolysentModel, check_modalities
from .heads import OutputHead
from .layers import last_valid, masked_mean, sinusoidal_positions


class TransformerLayer(nn.Module):
    def __init__(self, d: int, heads: int, attn_dropout: float, relu_dropout: float, res_dropout: float):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, dropout=attn_dropout, batch_first=True)
        self.ln0 = nn.LayerNorm(d)
        self.ln1 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)
        self.relu_dropout, self.res_dropout = relu_dropout, res_dropout

    def forward(self, x, kv, key_pad, attn_mask):
        q = self.ln0(x)
        k = q if kv is None else self.ln0(kv)
        a, _ = self.attn(q, k, k, key_padding_mask=key_pad, attn_mask=attn_mask, need_weights=False)
        x = x + F.dropout(a, self.res_dropout, self.training)
        h = F.dropout(F.relu(self.fc1(self.ln1(x))), self.relu_dropout, self.training)
        return x + F.dropout(self.fc2(h), self.res_dropout, self.training)


class TransformerEncoder(nn.Module):
    """Self-attention (``kv=None``) or crossmodal transformer stack with a final LayerNorm."""

    def __init__(
        self, d, heads, layers, attn_dropout=0.1, relu_dropout=0.1, res_dropout=0.1, embed_dropout=0.25, causal=True
    ):
        super().__init__()
        self.d, self.causal, self.embed_dropout = d, causal, embed_dropout
        self.layers = nn.ModuleList(
            TransformerLayer(d, heads, attn_dropout, relu_dropout, res_dropout) for _ in range(layers)
        )
        self.ln = nn.LayerNorm(d)

    def _embed(self, x):
        x = math.sqrt(self.d) * x + sinusoidal_positions(x.size(1), self.d, x.device)
        return F.dropout(x, self.embed_dropout, self.training)

    def forward(self, x, mask_q, kv=None, mask_kv=None):
        x = self._embed(x)
        if kv is not None:
            kv = self._embed(kv)
        key_mask = mask_q if kv is None else mask_kv
        key_pad = key_mask == 0
        attn_mask = None
        if self.causal:
            lq, lk = x.size(1), key_mask.size(1)
            attn_mask = torch.ones(lq, lk, dtype=torch.bool, device=x.device).triu(1 + abs(lk - lq))
        for layer in self.layers:
            x = layer(x, kv, key_pad, attn_mask)
        return self.ln(x) * mask_q.unsqueeze(-1)


class MulT(PolysentModel):
    regression_loss = "l1"
    optim_defaults = {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0}
    schedule_weight = 7.0  # demo, MulT T+V+A: 22 s a seed (base.PolysentModel)
    plateau_patience = 20  # paper: "plateau learning rate reduction with a tolerance of 20"
    early_stopping = False  # official src/train.py: all epochs, best validation checkpoint kept
    grad_clip = 0.8  # official src/main.py --clip 0.8 (clip_grad_norm_ every step)

    def __init__(
        self,
        dims: dict[str, int],
        n_out: int = 1,
        task: str = "sentiment",
        modalities=("text", "acoustic", "visual"),
        targets=None,
        d: int = 40,
        heads: int = 8,
        layers: int = 4,
        kernels: dict | None = None,
        attn_dropout: float = 0.1,
        attn_dropout_a: float = 0.0,
        attn_dropout_v: float = 0.0,
        relu_dropout: float = 0.1,
        res_dropout: float = 0.1,
        embed_dropout: float = 0.25,
        text_dropout: float = 0.3,
        out_dropout: float = 0.1,
        causal: bool = True,
        mem_layers: int | None = None,
    ):
        super().__init__()
        self.modalities = check_modalities(modalities)
        self.targets = self._check_targets(targets)
        kernels = {"text": 1, "visual": 3, "acoustic": 3, **(kernels or {})}
        self.text_dropout, self.out_dropout = text_dropout, out_dropout
        self.proj = nn.ModuleDict(
            {m: nn.Conv1d(dims[m], d, kernels[m], padding=(kernels[m] - 1) // 2, bias=False) for m in self.modalities}
        )
        # keyed by the SOURCE modality (the one attended to), as get_network() of the official code
        adrop = {"text": attn_dropout, "acoustic": attn_dropout_a, "visual": attn_dropout_v}
        common = dict(relu_dropout=relu_dropout, res_dropout=res_dropout, embed_dropout=embed_dropout, causal=causal)
        self.cross = nn.ModuleDict()
        for tgt in self.targets:
            for src in self.sources(tgt):
                self.cross[f"{tgt}_with_{src}"] = TransformerEncoder(
                    d, heads, layers, attn_dropout=adrop[src], **common
                )
        n_src = max(len(self.modalities) - 1, 1)
        self.mem = nn.ModuleDict(
            {
                m: TransformerEncoder(
                    n_src * d, heads, mem_layers or max(layers, 3), attn_dropout=attn_dropout, **common
                )
                for m in self.targets
            }
        )
        combined = len(self.targets) * n_src * d
        self.proj1 = nn.Linear(combined, combined)
        self.proj2 = nn.Linear(combined, combined)
        self.head = OutputHead(combined, n_out, task)
        self.rep_dims = {m: n_src * d for m in self.targets}
        if "text" in self.targets:
            for src in self.sources("text"):
                self.rep_dims[f"t|{MODALITY_KEYS[src]}"] = d

    def _check_targets(self, targets) -> tuple[str, ...]:
        if targets is None:
            return self.modalities
        targets = check_modalities(targets)
        stray = [m for m in targets if m not in self.modalities]
        if stray:
            raise ValueError(f"MulT targets {stray} are not among the modalities {list(self.modalities)}")
        return tuple(m for m in self.modalities if m in targets)  # modality order fixes the concat order

    def sources(self, target: str) -> list[str]:
        """The modalities a target attends to (every other chosen modality)."""
        return [s for s in self.modalities if s != target]

    def forward(self, batch: dict) -> dict:
        mask = batch["mask"]
        x = {}
        for m in self.modalities:
            inp = batch[m] * mask.unsqueeze(-1)  # a kernel > 1 must read zeros past the last word
            if m == "text":
                inp = F.dropout(inp, self.text_dropout, self.training)
            x[m] = self.proj[m](inp.transpose(1, 2)).transpose(1, 2) * mask.unsqueeze(-1)
        reps, lasts = {}, []
        for tgt in self.targets:
            srcs = self.sources(tgt)
            if srcs:
                hs = [self.cross[f"{tgt}_with_{s}"](x[tgt], mask, x[s], mask) for s in srcs]
                if tgt == "text":
                    for s, h in zip(srcs, hs):
                        reps[f"t|{MODALITY_KEYS[s]}"] = masked_mean(h, mask)
                h = torch.cat(hs, -1)
            else:
                h = x[tgt]
            last = last_valid(self.mem[tgt](h, mask), mask)
            reps[tgt] = last
            lasts.append(last)
        hs = torch.cat(lasts, -1)
        out = self.proj2(F.dropout(F.relu(self.proj1(hs)), self.out_dropout, self.training)) + hs
        return {"pred": self.head(out), "aux": {}, "reps": reps}
