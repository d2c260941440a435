"""Model registry: ``build_model(name, dims, ...)`` for every model an experiment may name.

Adding a model (docs/CONTRIBUTING.md walks through it): write a
:class:`~polysent.models.base.PolysentModel` subclass in its own module, register it in
``MODELS`` and describe its constructor kwargs under ``train.models.<name>`` in
``workflow/schemas/config/train.schema.yaml``. The experiments' ``model`` enum is made from those
``train.models`` keys when the schema is loaded, and a test keeps them equal to ``MODELS``. What
the rest of the code needs to know about a model (its Table 1 block, whether it writes policy
decisions, how it reads an older bundle's kwargs) is a class attribute or classmethod of the model,
never a test of its name elsewhere.
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


def model_class(name: str) -> type[PolysentModel]:
    """The registered class of model ``name``; a ValueError names the registered ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered: {sorted(MODELS)}")
    return MODELS[name]


def build_model(name: str, dims: dict[str, int], n_out: int = 1, task: str = "sentiment", **kwargs) -> PolysentModel:
    """Instantiate model ``name`` for feature ``dims`` with ``kwargs`` (config ``variation``)."""
    cls = model_class(name)
    try:
        return cls(dims, n_out=n_out, task=task, **kwargs)
    except TypeError as err:  # an unknown kwarg from the config: name it
        raise ValueError(f"bad settings for model {name!r}: {err}") from err


__all__ = ["MODELS", "build_model", "model_class", "count_parameters", "NCEObjective", "info_nce", "PolysentModel"]
