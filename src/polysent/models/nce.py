"""NCE contrastive objectives on top of a base model (paper §5.1, §7.1; Huang et al. 2021).

``info_nce(a, b)``: in-batch NCE — row i of ``a`` and row i of ``b`` are the positive pair, every
other row of the batch a negative (the paper's eq. with N = unmatched pairs), symmetric, on
L2-normalised projections with temperature ``tau``.

Terms (``NCEObjective(terms=...)``):

* ``cross_tv`` — L^cross(T|V) = L(T1|V1, T2|V1): the base model's text-conditioned-on-video
  representation ``reps["t|v"]`` of the original segment against the same representation of its
  translation. Positive: the segment and its own translation; negatives: the other segments'
  translations. How T2|V1 is conditioned on the same video depends on the base model:

  - a model with ``reuses_video_states`` (Multilogue-Net on the utterance axis, the paper's NCE
    base) computes it with :meth:`translated_reps` from the forward pass of T1|V1: the video's
    segments with their translated texts, attended to **the same V1 states** (computed once, as
    the paper's code, ``U_context = textf1``), also when TransAug puts the translated sample in
    the batch (that sample then serves the task loss and ``inter_tv`` only);
  - any other model runs the aligned translated sample (translated text T2 with the video V1
    re-timed over its words) through the model, or takes it from the batch (TransAug).
* ``cross_ta`` — the same with audio (``reps["t|a"]``).
* ``inter_tv`` — L^inter(T, V): the pooled text representation ``reps["text"]`` against the
  pooled visual representation ``reps["visual"]`` of the same sample, over every sample of the
  batch (with TransAug this includes translated texts, i.e. "multi-lingual texts and videos");
  a segment and its translation show the same video, so they are not used as each other's
  negatives (:func:`same_video_groups`, from the pairs every batch carries).

What this implements: the paper's text (§5.1, §7.1) — NCE terms on a one-text-stream base model,
with TransAug translations as extra labelled samples, and a working InfoNCE (normalised, τ,
projection heads). The paper's code differs on both counts: its NCE rows ran a two-text-stream
Multilogue-Net that also reads the translation (or the text duplicated) at test time
(``multilogue/model_nce.py``; polysent's ablation ``second_text``, rows
``multilogue2s_cross_tv_*``), and its MIL-NCE port printed 2·ln 2 ≈ 1.386 — the value when every
dot product is ≈ 0, i.e. no alignment signal — for all 233 printed epochs of the L_cross rows.
So the paper's NCE gains cannot be credited to NCE; polysent's own NCE rows are compared with the
TransAug-only control (``multilogue_transaug_*``, findings ``nce_beats_transaug_*``).

One projection head per representation kind (shared by both languages, so T1|V1 and T2|V1 are
compared in one space). Segments without a translation do not take part in the cross terms; a
term with fewer than two pairs in a batch contributes 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from polysent.data import translated_batch

TERMS = {"cross_tv": ("t|v", "t|v"), "cross_ta": ("t|a", "t|a"), "inter_tv": ("text", "visual")}


def info_nce(
    a: torch.Tensor, b: torch.Tensor, tau: float = 0.1, symmetric: bool = True, groups: torch.Tensor | None = None
) -> torch.Tensor:
    """In-batch NCE; rows with the same ``groups`` id (other than the pair itself) are not negatives."""
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = a @ b.t() / tau
    if groups is not None:
        same = (groups[:, None] == groups[None, :]) & ~torch.eye(len(groups), dtype=torch.bool, device=a.device)
        logits = logits.masked_fill(same, float("-inf"))
    target = torch.arange(a.size(0), device=a.device)
    loss = F.cross_entropy(logits, target)
    return 0.5 * (loss + F.cross_entropy(logits.t(), target)) if symmetric else loss


def same_video_groups(batch: dict, n_rows: int, device=None) -> torch.Tensor:
    """Group id per batch row for the inter-modal terms: a TransAug translation shares its
    original's id (both show the same video, so neither is the other's negative), every other row
    its own. Reads the batch's ``pair_index``/``pair_rows``, which :func:`polysent.data.collate`
    gives every batch whatever the objective asks for (a hand-made batch without them is taken to
    hold no TransAug rows)."""
    groups = torch.arange(n_rows, device=device)
    if batch.get("pair_index") is not None and batch["pair_index"].numel():
        groups[batch["pair_rows"].to(groups.device)] = batch["pair_index"].to(groups.device)
    return groups


class NCEObjective(nn.Module):
    def __init__(self, terms, rep_dims: dict[str, int], dim: int = 64, tau: float = 0.1, weight: float = 1.0):
        super().__init__()
        unknown = [t for t in terms if t not in TERMS]
        if unknown:
            raise ValueError(f"unknown NCE term(s) {unknown}; expected some of {sorted(TERMS)}")
        self.terms, self.tau, self.weight = list(terms), tau, weight
        keys = sorted({k for t in self.terms for k in TERMS[t]})
        missing = [k for k in keys if k not in rep_dims]
        if missing:
            raise ValueError(
                f"NCE terms {self.terms} need representation(s) {missing} the base model does not "
                f"provide (it has {sorted(rep_dims)}); include the modalities they condition on"
            )
        self.heads = nn.ModuleDict(
            {
                k.replace("|", "_"): nn.Sequential(nn.Linear(rep_dims[k], dim), nn.ReLU(), nn.Linear(dim, dim))
                for k in keys
            }
        )

    @property
    def needs_translation(self) -> bool:
        return any(t.startswith("cross") for t in self.terms)

    def project(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return self.heads[key.replace("|", "_")](x)

    def forward(self, model: nn.Module, batch: dict, out: dict) -> dict[str, torch.Tensor]:
        losses = {}
        out_tr, idx = None, batch.get("tr_index")
        # A model that conditions the translation on the original's own video states (Multilogue
        # on the utterance axis) computes T2|V1 itself from ``out``; any other runs the translated
        # sample through the model (or finds it in the batch, TransAug).
        shared = bool(getattr(model, "reuses_video_states", False))
        if self.needs_translation and idx is not None and idx.numel():
            if shared:
                out_tr = {"reps": model.translated_reps(batch, out)}
            else:
                tr = translated_batch(batch)
                out_tr = model(tr) if tr is not None else None
        pair_index, pair_rows = batch.get("pair_index"), batch.get("pair_rows")
        for term in self.terms:
            k1, k2 = TERMS[term]
            if term.startswith("cross"):
                a, b = [], []
                # translation in the batch (TransAug); with shared video states its pair comes
                # from ``out_tr`` instead (``tr_index`` then covers every translation)
                if not shared and pair_index is not None and pair_index.numel():
                    a.append(out["reps"][k1][pair_index])
                    b.append(out["reps"][k2][pair_rows])
                if out_tr is not None:  # translation run separately
                    a.append(out["reps"][k1][idx])
                    b.append(out_tr["reps"][k2])
                if sum(x.size(0) for x in a) < 2:
                    continue
                a, b = torch.cat(a), torch.cat(b)
                groups = None
            else:
                a, b = out["reps"][k1], out["reps"][k2]
                if a.size(0) < 2:
                    continue
                groups = same_video_groups(batch, a.size(0), a.device)
            losses[f"nce_{term}"] = self.weight * info_nce(
                self.project(k1, a), self.project(k2, b), self.tau, groups=groups
            )
        return losses
