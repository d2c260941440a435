"""What every polysent model is: a ``nn.Module`` with one calling convention.

``forward(batch)`` takes a dict with word-aligned ``text`` (B, L, Dt), ``visual`` (B, L, Dv),
``acoustic`` (B, L, Da) and ``mask`` (B, L) (1 = real word, padding after the words) and returns
a dict:

* ``pred`` (B, n_out): the sentiment score or the emotion logits;
* ``aux``: named extra losses, already weighted (MCTN translation/cycle, AdaMML decision loss);
  only computed in training mode;
* ``reps``: pooled representations (B, D) that objectives on top of the model may use
  (NCE: ``"t|v"``, ``"t|a"`` text conditioned on video/audio, ``"text"``, ``"visual"``, ...);
* optionally ``decisions`` (B, S, M) and ``window_mask`` (B, S) (AdaMML).

Class attributes carry the paper's / reference code's training defaults (loss, optimiser,
LR plateau, early stopping, gradient clipping) so that the training loop, not each model, stays
in charge of optimisation; each model's docstring states its training budget (epochs, patience,
clipping, dropout placement) against its reference.
"""

from __future__ import annotations

from torch import nn

MODALITY_KEYS = {"text": "t", "visual": "v", "acoustic": "a"}


class PolysentModel(nn.Module):
    #: regression loss for sentiment ("l1" or "mse")
    regression_loss = "l1"
    #: optimiser defaults (the trainer's config may override each)
    optim_defaults = {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0}
    #: ReduceLROnPlateau patience on the validation loss (None: no scheduler)
    plateau_patience: int | None = None
    #: stop after ``train.patience`` epochs without a better validation metric (False: train
    #: ``max_epochs`` and keep the best validation checkpoint, as MulT's official code)
    early_stopping: bool = True
    #: the block of the paper's Table 1 the model's rows belong to (an experiment's ``group`` wins)
    report_group: str = "Baseline Models"
    #: whether ``forward`` returns per-window modality ``decisions`` (the modality-utilisation report)
    writes_decisions: bool = False
    #: gradient-norm clip of the model's reference code (``train.grad_clip: null`` uses it;
    #: None: the reference does not clip)
    grad_clip: float | None = None
    #: rough CPU-seconds of one seed's training per modality read, on a whole training split of
    #: the demo at its sizes (docs/BENCHMARKS.md, "Training jobs longest first"); only orders the
    #: training jobs (polysent.experiments.group_work), never changes a result
    schedule_weight: float = 1.0

    def __init__(self):
        super().__init__()
        self.rep_dims: dict[str, int] = {}

    @classmethod
    def bundle_kwargs(cls, kwargs: dict) -> dict:
        """Constructor kwargs of a bundle's model, as saved (a model whose meaning of an omitted
        kwarg changed fills in the value its older bundles were made with)."""
        return dict(kwargs)

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer before each training epoch (0-based)."""

    def history_extra(self) -> dict[str, float]:
        """Extra per-epoch values for ``history.csv`` (e.g. the Gumbel temperature)."""
        return {}


def check_modalities(modalities, allowed=("text", "visual", "acoustic")) -> tuple[str, ...]:
    modalities = tuple(modalities)
    bad = [m for m in modalities if m not in allowed]
    if bad or not modalities or len(set(modalities)) != len(modalities):
        raise ValueError(f"modalities must be distinct names from {allowed}, got {list(modalities)}")
    return modalities
