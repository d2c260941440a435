"""Model registry: ``build_model(name, dims, ...)`` for every model an experiment may name.

Adding a model: write a :class:`~polysent.models.base.PolysentModel` subclass in its own module
and register it in ``MODELS``; the trainer, the config schema's ``model`` enum and the benchmark
pick it up by name.
"""

from __future__ import annotations

from .adamml import AdaMMLCLSTM
from .base import PolysentModel
from .layers import count_parameters
from .mctn import MCTN
from .mult import MulT
from .multilogue import MultilogueNet
from .nce import NCEObjective, info_nce

MODELS: dict[str, type[PolysentModel]] = {
    "mctn": MCTN,
    "multilogue": MultilogueNet,
    "mult": MulT,
    "adamml_clstm": AdaMMLCLSTM,
}


def build_model(name: str, dims: dict[str, int], n_out: int = 1, task: str = "sentiment", **kwargs) -> PolysentModel:
    """Instantiate model ``name`` for feature ``dims`` with ``kwargs`` (config ``variation``)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered: {sorted(MODELS)}")
    try:
        return MODELS[name](dims, n_out=n_out, task=task, **kwargs)
    except TypeError as err:  # an unknown kwarg from the config: name it
        raise ValueError(f"bad settings for model {name!r}: {err}") from err


__all__ = ["MODELS", "build_model", "count_parameters", "NCEObjective", "info_nce", "PolysentModel"]
