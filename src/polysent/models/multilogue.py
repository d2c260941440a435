"""Multilogue-Net (Shenoy & Sardana 2020) on CMU-MOSEAS monologues (paper §6.1.2).

**Time axis** (``time_axis``, train.models.multilogue; default ``utterance``).

* ``utterance`` — as the original and the paper's code (``multilogue/dataloader.py``: one
  sequence per video, one vector per utterance and modality, one label per utterance, batches of
  videos). Each segment becomes one vector per modality, the **masked mean of its words'
  features** (reference option (a); no per-segment encoder: the original feeds fixed utterance
  vectors into the cells, and a mean adds no parameters, so the parameter count equals the word
  ablation's). A sequence is one video's segments in time order (store order: segment ids number
  a video's segments in time); the recurrence and the bimodal attention run over those
  utterances, so every prediction sees its neighbouring segments. The trainer groups samples by
  video for it (``batch_unit = "video"``, :func:`polysent.data.batches`), the batch arrives flat
  (one row per segment, its words, plus ``video_index``/``video_pos``), and the model returns
  one prediction per segment row, so evaluation, ``predictions.parquet``, bundles and
  ``polysent predict`` stay per segment. The task loss over those rows is the original's
  masked per-utterance loss (padding utterances never produce a row). A video's sequence holds
  the segments of the split that are used: ``drop_neutral`` and a few-shot subset drawn by
  segments remove segments from it (the paper's code slices segments too), ``max_len`` truncates
  the words a segment's mean is taken over. The video's TransAug translations are a sequence of
  their own (the video in the other language).
* ``word`` — a labelled **ablation** (word-level recurrence): the same cells
  recur over the *words of one segment* (reference option (b)), the bimodal attention relates
  two modalities word by word, and the segment's score comes from the masked mean over its words
  of the fused vector ``z``; no segment sees another.

**One speaker.** CMU-MOSEAS videos are monologues: the paper sets "the speaker input to be the
same across all video segments", so ``qmask`` is 1 for the only party everywhere, the party
selection is the identity and the listener update never happens.

As in the original, the context input of every modality is the **text** (``U_context =
textf``) when text is one of the modalities, the context GRU attends over its *previous*
states only (``SimpleAttention``), recurrent dropout follows each GRU, and the regression output
is ``3·tanh`` trained with MSE (Adam 1e-4, weight decay 1e-4). Departures, and why: the bimodal
attention masks padded keys (the original attends to padded utterances, so a prediction would
depend on the longest video of its batch); one ``Linear(D_e→D_h)`` per modality (the original
shares one); selection on the validation split (the original's ``valid = 0.0`` reports the
best *test* epoch); a batch packs whole videos up to ``train.batch_size`` segments instead of
128 videos, so the number of steps per epoch and of NCE negatives matches the other models.

Training budget against the references: the official ``train_regression.py`` runs 100 epochs
(the paper's notebooks 150-250, of 2-5 batches of 64-128 videos each) with no early stopping and
reports the epoch of the best *test* loss; Adam 1e-4 with weight decay 1e-4 (equal here); no
gradient clipping (none here: ``grad_clip: null``; the demo clips at 1.0); dropout 0.25 on the
emotion states and again after the per-modality Linear, recurrent dropout 0.1 after each GRU
(the same placement here). polysent selects on validation and, by the schema, stops after
``train.patience`` (8) epochs without a better validation MAE within ``train.max_epochs`` (40);
config/moseas.yaml runs the official 100 epochs without early stopping, keeping the best
validation checkpoint (``train.model_overrides.multilogue``). With batches of ~3 videos an
epoch has many more optimiser steps than the paper's (4 batches), so fewer epochs are needed.

**Two text streams** (``second_text: <lang>``, an ablation): the model of the paper's NCE code
(``multilogue/model_nce.py`` ``RegressionModelNCE_``, ``multilogue/dataloader.py``
``MOSEIRegression_NCE``), which reads a second text per segment besides the first: the text
cell and its Linear run again on it with the first text as context, and the fused vector holds
its bimodal attentions with audio and video and its hidden state (``smax_fc = Linear(14·D_h)``
with all three modalities). The second text is fed as the paper fed it, in training and at test
time (:func:`polysent.data.collate` with ``second_text``): a segment in another language reads
its translation into ``<lang>`` (the paper's French rows with their Spanish MT), a segment in
``<lang>`` its own text again (the paper's Spanish test rows, "text duplicated"). The paper's
text describes NCE on a one-stream model; this is what its numbers came from. Predicting with it
needs batches that carry the second text (``polysent predict`` does not build them).

``reps`` for NCE (paper §7.1: "hidden states outputted by the pairwise bi-modal attention"):
``"t|v"`` / ``"t|a"`` are BiAtt(text, video/audio) at the segment's utterance (word mode: their
masked means over the words); ``"text"`` etc. the per-modality hidden states likewise.
:meth:`MultilogueNet.translated_reps` gives T2|V1 for the translations of a batch (utterance
mode): the translated video is the video's segments with their translated texts, and the video
and audio states are **the ones computed for T1|V1**, reused, not recomputed (the paper's code
runs the text net on ``U_t2`` with ``U_context = textf1`` and attends it to the same
``hidden_v``).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from .base import MODALITY_KEYS, PolysentModel, check_modalities
from .heads import OutputHead
from .layers import masked_mean, masked_softmax

TIME_AXES = ("utterance", "word")


class GroupedGRU(nn.Module):
    """M independent ``GRUCell``s (one per modality) stepped together with batched matmuls.

    The part of the input known for every step in advance (the modality's own features, the
    context features) is projected outside the time loop by the caller (``gi_pre``); only the
    recurrent part of the input (``x``) and the hidden state are multiplied per step. Same
    equations and initialisation as ``torch.nn.GRUCell``; one loop for three modalities keeps the
    recurrence affordable on a CPU.
    """

    def __init__(self, groups: int, d_x: int, hidden: int):
        super().__init__()
        bound = 1.0 / math.sqrt(hidden)
        self.w_x = nn.Parameter(torch.empty(groups, d_x, 3 * hidden).uniform_(-bound, bound))
        self.w_h = nn.Parameter(torch.empty(groups, hidden, 3 * hidden).uniform_(-bound, bound))
        self.b_h = nn.Parameter(torch.empty(groups, 1, 3 * hidden).uniform_(-bound, bound))

    def forward(
        self, gi_pre: torch.Tensor, x: torch.Tensor, h: torch.Tensor, groups: slice | None = None
    ) -> torch.Tensor:
        """One step; ``groups`` steps only those cells (e.g. the text cell for a translation)."""
        w_x, w_h, b_h = (
            (self.w_x, self.w_h, self.b_h) if groups is None else (self.w_x[groups], self.w_h[groups], self.b_h[groups])
        )
        gi = gi_pre + torch.bmm(x, w_x)
        gh = torch.baddbmm(b_h, h, w_h)
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h


class MultilogueCells(nn.Module):
    """The per-modality recurrences (context GRU g, state GRU q, emotion GRU e) over time steps
    (utterances or words, see the module docstring).

    Per modality m and step t (one party, so the speaker's state is the only state):
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

    def forward(
        self, us: list[torch.Tensor], ucs: list[torch.Tensor], mask: torch.Tensor, groups: slice | None = None
    ) -> torch.Tensor:
        """``us``/``ucs``: per modality (B, L, D); returns the emotion states (M, B, L, d_e).

        ``groups`` runs only those modalities' cells (``us``/``ucs`` then hold just them).
        """
        M = len(us)
        B, L, _ = us[0].shape
        sel = range(len(self.in_g))[groups] if groups is not None else range(len(self.in_g))
        pre_g = torch.stack([self.in_g[k](uc) for k, uc in zip(sel, ucs)])  # (M, B, L, 3d_g)
        pre_p = torch.stack([self.in_p[k](u) for k, u in zip(sel, us)])  # (M, B, L, 3d_p)
        b_e, att = (self.b_e, self.att) if groups is None else (self.b_e[groups], self.att[groups])
        g = us[0].new_zeros(M, B, self.d_g)
        q = us[0].new_zeros(M, B, self.d_p)
        e = us[0].new_zeros(M, B, self.d_e)
        g_hist, g_scores, es = [], [], []
        for t in range(L):
            g_new = self.drop(self.gru_g(pre_g[:, :, t], q, g, groups))
            if t == 0:
                c = torch.zeros_like(g_new)
            else:
                alpha = masked_softmax(torch.stack(g_scores, -1), mask[:, :t].unsqueeze(0))  # (M,B,t)
                c = torch.matmul(alpha.unsqueeze(-2), torch.stack(g_hist, 2)).squeeze(-2)
            q = self.drop(self.gru_p(pre_p[:, :, t], c, q, groups))
            e = self.drop(self.gru_e(b_e, q, e, groups))
            g = g_new
            g_hist.append(g_new)
            g_scores.append((g_new * att).sum(-1))
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
    schedule_weight = 1.5  # demo, Multilogue-Net T+V+A: 4.3 s a seed (base.PolysentModel)

    @classmethod
    def bundle_kwargs(cls, kwargs: dict) -> dict:
        # bundles made before `time_axis` existed hold the word-axis model (same weights, both axes)
        return {"time_axis": "word", **kwargs}

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
        time_axis: str = "utterance",
        second_text: str | None = None,
    ):
        super().__init__()
        if time_axis not in TIME_AXES:
            raise ValueError(f"multilogue time_axis must be one of {list(TIME_AXES)}, got {time_axis!r}")
        self.time_axis = time_axis
        self.modalities = check_modalities(modalities)
        self.context = "text" if "text" in self.modalities else None
        self.second_text = second_text
        if second_text is not None and (time_axis != "utterance" or self.context is None):
            raise ValueError(
                "multilogue second_text (the paper's two-stream model) needs time_axis 'utterance' and the text modality"
            )
        self.cells = MultilogueCells(
            [dims[m] for m in self.modalities],
            [dims[self.context or m] for m in self.modalities],
            d_g,
            d_p,
            d_e,
            rec_dropout,
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
        if second_text is not None:  # the second text's pairs and its hidden state
            d_z += sum("text" in p for p in self.pairs) * 2 * d_h + d_h
        self.head = OutputHead(d_z, n_out, task, bound=3.0)
        self.rep_dims = {m: d_h for m in self.modalities}
        for a, b in self.pairs:
            self.rep_dims[f"{MODALITY_KEYS[a]}|{MODALITY_KEYS[b]}"] = 2 * d_h

    @property
    def batch_unit(self) -> str:
        """What the trainer keeps together in a batch: whole videos on the utterance axis."""
        return "video" if self.time_axis == "utterance" else "segment"

    @property
    def reuses_video_states(self) -> bool:
        """NCE takes T2|V1 from :meth:`translated_reps` (the V1 states of T1|V1, reused)."""
        return self.time_axis == "utterance"

    def forward(self, batch: dict) -> dict:
        if self.time_axis == "word":
            return self._forward_words(batch)
        return self._forward_utterances(batch)

    def _hidden_states(self, us, ucs, mask) -> dict[str, torch.Tensor]:
        es = self.cells(us, ucs, mask)
        return {
            m: self.drop(self.hidden[m](self.drop(es[k]))) * mask.unsqueeze(-1) for k, m in enumerate(self.modalities)
        }

    def _forward_words(self, batch: dict) -> dict:
        mask = batch["mask"]
        h = self._hidden_states(
            [batch[m] for m in self.modalities], [batch[self.context or m] for m in self.modalities], mask
        )
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

    def _forward_utterances(self, batch: dict) -> dict:
        where, umask = utterance_layout(batch)
        seqs = {m: to_sequences(masked_mean(batch[m], batch["mask"]), where, umask) for m in self.modalities}
        ctx = seqs[self.context] if self.context else None
        h = self._hidden_states(
            [seqs[m] for m in self.modalities], [ctx if ctx is not None else seqs[m] for m in self.modalities], umask
        )
        h2 = self._second_text_states(batch, where, umask, ctx) if self.second_text is not None else None
        reps, parts = {}, []
        for a, b in self.pairs:
            att = bimodal_attention(h[a], h[b], umask)
            parts.append(att)
            reps[f"{MODALITY_KEYS[a]}|{MODALITY_KEYS[b]}"] = att[where]
            if h2 is not None and a == "text":  # pairs list text first
                parts.append(bimodal_attention(h2, h[b], umask))
        parts += [h[m] for m in self.modalities]
        if h2 is not None:
            parts.append(h2)
        for m in self.modalities:
            reps[m] = h[m][where]
        z = torch.cat(parts, -1)[where]  # one fused vector per real utterance (segment row)
        states = {"where": where, "umask": umask, "seqs": seqs, "h": h}
        return {"pred": self.head(z), "aux": {}, "reps": reps, "video_states": states}

    def _second_text_states(self, batch: dict, where, umask: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        """Hidden states of the second text stream: the text cell and its Linear (shared with the
        first stream, as the paper's code runs ``multilogue_net_f_t`` and ``linear`` on both), the
        first text as context (``U_context = textf1``)."""
        if "text2" not in batch:
            raise ValueError(
                f"two-stream Multilogue-Net (second_text={self.second_text!r}) needs batches with the "
                f"second text stream: polysent.data.batches(..., second_text={self.second_text!r})"
            )
        text2 = to_sequences(masked_mean(batch["text2"], batch["mask2"]), where, umask)
        k = self.modalities.index("text")
        e = self.cells([text2], [ctx], umask, groups=slice(k, k + 1))[0]
        return self.drop(self.hidden["text"](self.drop(e))) * umask.unsqueeze(-1)

    def translated_reps(self, batch: dict, out: dict) -> dict[str, torch.Tensor]:
        """``"t|v"``, ``"t|a"``, ``"text"`` of the translations of rows ``batch["tr_index"]``.

        The translated video is the video's segments with their translated texts (a segment
        without a translation keeps its own text, and gets no NCE pair). Only the text net runs
        again, on the translated utterance vectors with the original text as context input, as
        the paper's code; the video and audio states are ``out``'s, i.e. the V1 of T1|V1.
        """
        if self.time_axis != "utterance" or self.context is None:
            raise ValueError("translated_reps needs time_axis 'utterance' and the text modality")
        states, rows = out["video_states"], batch["tr_index"]
        where, umask = states["where"], states["umask"]
        at = (where[0][rows], where[1][rows])
        t2 = masked_mean(batch["text_tr"], batch["mask_tr"])
        text2 = states["seqs"]["text"].index_put(at, t2)
        k = self.modalities.index("text")
        e = self.cells([text2], [states["seqs"]["text"]], umask, groups=slice(k, k + 1))[0]
        h_t2 = self.drop(self.hidden["text"](self.drop(e))) * umask.unsqueeze(-1)
        reps = {"text": h_t2[at]}
        for a, b in self.pairs:
            if a == "text":
                reps[f"t|{MODALITY_KEYS[b]}"] = bimodal_attention(h_t2, states["h"][b], umask)[at]
        return reps


def utterance_layout(batch: dict) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Where each segment row sits in the (videos, utterances) grid, and the utterance mask.

    ``batch["video_index"]`` (N,) numbers the row's sequence (0..S-1) and ``batch["video_pos"]``
    (N,) its place in it (see :func:`polysent.data.collate` with ``sequences=True``).
    """
    if "video_index" not in batch:
        raise ValueError(
            "multilogue with time_axis 'utterance' needs batches grouped by video "
            "(polysent.data.batches(..., unit='video') adds video_index/video_pos); "
            "time_axis 'word' runs on single segments"
        )
    vi, vp = batch["video_index"].long(), batch["video_pos"].long()
    S = int(vi.max()) + 1 if vi.numel() else 0
    T = int(vp.max()) + 1 if vp.numel() else 0
    umask = batch["mask"].new_zeros(S, T)
    umask[vi, vp] = 1.0
    return (vi, vp), umask


def to_sequences(rows: torch.Tensor, where, umask: torch.Tensor) -> torch.Tensor:
    """Segment rows (N, D) into post-padded video sequences (S, T, D), zeros at padding."""
    out = rows.new_zeros(*umask.shape, rows.size(-1))
    return out.index_put(where, rows)
