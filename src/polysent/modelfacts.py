"""What the workflow needs to know about a registered model while it builds the DAG, read from the
models' source with ``ast``, so that building the DAG does not import torch (seconds per run).

The facts stay where they are defined: the registry ``polysent.models.MODELS`` (one line per
model) and the model class's attributes (``writes_decisions``, ...), set as literals in the class
body or inherited from a base class in ``polysent.models``. ``tests/test_architecture.py`` checks
this reader against the imported classes for every registered model and attribute.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Any

MODELS_DIR = Path(__file__).resolve().parent / "models"
_MISSING = object()


@functools.cache
def _module(name: str) -> ast.Module:
    return ast.parse((MODELS_DIR / f"{name}.py").read_text(), filename=str(MODELS_DIR / f"{name}.py"))


def _imported_from(module: str, names: set[str]) -> dict[str, str]:
    """{class name: models submodule} for the classes ``module`` imports from ``polysent.models``."""
    out = {}
    for node in _module(module).body:
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 1 and node.module:
            source = node.module
        elif node.level == 0 and (node.module or "").startswith("polysent.models."):
            source = node.module.removeprefix("polysent.models.")
        else:
            continue
        out |= {alias.asname or alias.name: source for alias in node.names if (alias.asname or alias.name) in names}
    return out


@functools.cache
def registry() -> dict[str, tuple[str, str]]:
    """{model name: (models submodule, class name)} from ``MODELS`` in ``polysent/models/__init__.py``."""
    for node in _module("__init__").body:
        target = (
            node.target
            if isinstance(node, ast.AnnAssign)
            else (node.targets[0] if isinstance(node, ast.Assign) else None)
        )
        if isinstance(target, ast.Name) and target.id == "MODELS" and isinstance(node.value, ast.Dict):
            classes = {ast.literal_eval(k): v.id for k, v in zip(node.value.keys, node.value.values)}
            where = _imported_from("__init__", set(classes.values()))
            return {name: (where[cls], cls) for name, cls in classes.items()}
    raise RuntimeError(f"{MODELS_DIR / '__init__.py'}: no MODELS dict of name -> class found")


def _class_attribute(module: str, cls: str, attr: str) -> Any:
    for node in _module(module).body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                targets = [item.target] if isinstance(item, ast.AnnAssign) else getattr(item, "targets", [])
                if any(isinstance(t, ast.Name) and t.id == attr for t in targets) and item.value is not None:
                    return ast.literal_eval(item.value)
            bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
            where = _imported_from(module, set(bases))
            for base in bases:
                if base in where:
                    found = _class_attribute(where[base], base, attr)
                    if found is not _MISSING:
                        return found
            return _MISSING
    raise RuntimeError(f"{MODELS_DIR / module}.py: no class {cls}")


def class_attribute(model: str, attr: str) -> Any:
    """The class attribute ``attr`` of registered model ``model`` (e.g. ``writes_decisions``),
    as ``polysent.models.model_class(model).attr`` would give it, without importing torch."""
    models = registry()
    if model not in models:
        raise ValueError(f"unknown model {model!r}; registered: {sorted(models)}")
    value = _class_attribute(*models[model], attr)
    if value is _MISSING:
        raise AttributeError(f"model {model!r} ({models[model][1]}) has no literal class attribute {attr!r}")
    return value
