"""A trained run's selected model: tensors in ``model.safetensors``, everything else in ``model.json``.

``model.safetensors`` (the `safetensors <https://github.com/huggingface/safetensors>`_ format:
tensors only, no pickle, so loading it runs no code) holds, by name prefix:

* ``model.<key>`` — the model's ``state_dict``;
* ``nce.<key>`` — the NCE objective's ``state_dict`` (runs with an NCE term only);
* ``normalizer.<modality>.mean`` / ``.std`` — the training standardisation (when on).

Its bytes depend only on the tensors' names, dtypes, shapes and values (safetensors orders the
tensors itself and the file carries no paths or object identities), so identical runs write
identical files.

``model.json`` holds what rebuilds the model and prepares its inputs: ``model``, ``kwargs``,
``dims``, ``task``, ``n_out``, ``emotions``, ``inputs`` (``max_len``, ``standardize``,
``eval_batch_size``), the run's ``experiment`` entry and ``seed``, and ``weights``: the
tensor file's name and SHA-256, checked by :func:`read_checkpoint`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors, save as save_tensors

from polysent import io
from polysent.jsonclean import json_clean

WEIGHTS = "model.safetensors"
SPEC = "model.json"
FORMAT = "polysent-model"
VERSION = 1
PREFIXES = ("model", "nce", "normalizer")
# safetensors' own header metadata (a string map); the spec lives in model.json
HEADER = {"format": "pt"}
# keys model.json must carry for a checkpoint to be rebuilt
SPEC_KEYS = ("model", "kwargs", "dims", "task", "n_out", "emotions", "inputs", "experiment", "seed", "weights")


class CheckpointError(ValueError):
    """A run's checkpoint cannot be read; the message names the file and key."""


@dataclass
class Checkpoint:
    spec: dict
    state_dict: dict[str, torch.Tensor]
    nce_state_dict: dict[str, torch.Tensor] | None
    normalizer: dict[str, dict[str, np.ndarray]] | None


def tensor_map(
    state_dict: dict | None = None, nce_state_dict: dict | None = None, normalizer: dict | None = None
) -> dict[str, torch.Tensor]:
    """One flat ``{name: tensor}`` of the three parts under their prefixes (module docstring).

    Every tensor is detached, made contiguous and copied, so tied weights (two names, one storage)
    are written twice rather than refused by safetensors.
    """
    out: dict[str, torch.Tensor] = {}
    for prefix, part in (("model", state_dict), ("nce", nce_state_dict)):
        for key, value in (part or {}).items():
            out[f"{prefix}.{key}"] = value.detach().cpu().contiguous().clone()
    for modality, stats in sorted((normalizer or {}).items()):
        for stat, value in sorted(stats.items()):
            out[f"normalizer.{modality}.{stat}"] = torch.from_numpy(np.array(value, np.float32))
    return out


def split_tensor_map(tensors: dict[str, torch.Tensor], where: str) -> tuple[dict, dict | None, dict | None]:
    """The ``(state_dict, nce_state_dict, normalizer)`` of a :func:`tensor_map` (None for an absent part)."""
    parts: dict[str, dict] = {p: {} for p in PREFIXES}
    for name, value in tensors.items():
        prefix, _, key = name.partition(".")
        if prefix not in parts or not key:
            raise CheckpointError(f"{where}: tensor {name!r} is not under one of the prefixes {list(PREFIXES)}")
        parts[prefix][key] = value
    normalizer: dict[str, dict[str, np.ndarray]] = {}
    for key, value in parts["normalizer"].items():
        modality, _, stat = key.rpartition(".")
        normalizer.setdefault(modality, {})[stat] = value.numpy()
    return parts["model"], parts["nce"] or None, normalizer or None


def weights_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    """The safetensors bytes of ``tensors`` (deterministic: see the module docstring)."""
    return save_tensors(tensors, metadata=HEADER)


def write_checkpoint(
    out_dir: str | os.PathLike,
    spec: dict,
    state_dict: dict,
    nce_state_dict: dict | None = None,
    normalizer: dict | None = None,
) -> None:
    """Write ``model.safetensors`` and ``model.json`` (``spec`` plus the weights' name and SHA-256) atomically."""
    out_dir = Path(out_dir)
    data = weights_bytes(tensor_map(state_dict, nce_state_dict, normalizer))
    io.write_bytes(out_dir / WEIGHTS, data)
    weights = {"file": WEIGHTS, "sha256": hashlib.sha256(data).hexdigest()}
    io.write_json(out_dir / SPEC, json_clean({"format": FORMAT, "version": VERSION, **spec, "weights": weights}))


def read_spec(run_dir: str | os.PathLike) -> dict:
    """``model.json`` of a run folder, checked for the keys a rebuild needs."""
    path = Path(run_dir) / SPEC
    if not path.exists():
        raise CheckpointError(f"{run_dir}: no {SPEC} (not a finished run folder)")
    spec = io.read_json(path, role="model spec", error=CheckpointError)
    if not isinstance(spec, dict) or spec.get("format") != FORMAT or spec.get("version") != VERSION:
        found = (spec.get("format"), spec.get("version")) if isinstance(spec, dict) else type(spec).__name__
        raise CheckpointError(f"{path}: format/version {found}, this polysent reads {FORMAT!r} version {VERSION}")
    missing = [k for k in SPEC_KEYS if k not in spec]
    if missing:
        raise CheckpointError(f"{path}: key(s) {', '.join(missing)} missing; the file was edited or truncated")
    return spec


def read_checkpoint(run_dir: str | os.PathLike) -> Checkpoint:
    """The checkpoint of a run folder; the weights' SHA-256 must match ``model.json``'s ``weights.sha256``."""
    spec = read_spec(run_dir)
    path = Path(run_dir) / spec["weights"].get("file", WEIGHTS)
    if not path.exists():
        raise CheckpointError(f"{run_dir}: no {path.name} (named by {SPEC} key weights.file)")
    expected = (
        spec["weights"].get("sha256"),
        f"{SPEC} key weights.sha256 (the file changed, was truncated, or belongs to another run)",
    )
    return Checkpoint(spec, *read_weights(path, expected))


def read_weights(
    path: str | os.PathLike, expected: tuple[str, str] | None = None
) -> tuple[dict, dict | None, dict | None]:
    """``(state_dict, nce_state_dict, normalizer)`` of a weights file written by :func:`weights_bytes`.

    ``expected``: ``(sha256, where it is recorded)``; the bytes read are checked against it first
    (one read of the file for the check and the tensors)."""
    data = Path(path).read_bytes()
    if expected is not None and hashlib.sha256(data).hexdigest() != expected[0]:
        raise CheckpointError(f"{path}: SHA-256 differs from {expected[1]}")
    try:
        tensors = load_tensors(data)
    except SafetensorError as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    return split_tensor_map(tensors, str(path))
