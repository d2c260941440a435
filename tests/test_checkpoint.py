"""A run's checkpoint (polysent.checkpoint): safetensors weights + JSON spec, deterministic bytes,
integrity checks that name the file and key."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from polysent.checkpoint import (
    SPEC,
    WEIGHTS,
    CheckpointError,
    read_checkpoint,
    read_spec,
    read_weights,
    write_checkpoint,
)

SPEC_FIELDS = {
    "model": "toy",
    "kwargs": {"hidden": 3},
    "dims": {"text": 2},
    "task": "sentiment",
    "n_out": 1,
    "emotions": [],
    "inputs": {"max_len": 4, "standardize": True, "eval_batch_size": 8},
    "experiment": {"model": "toy", "train": {"fr": 1.0}, "eval": "fr"},
    "seed": 3,
}

WRITER = """
import sys, torch
from polysent.checkpoint import write_checkpoint
from test_checkpoint import SPEC_FIELDS, toy_parts
write_checkpoint(sys.argv[1], SPEC_FIELDS, *toy_parts())
"""


def toy_parts():
    """A state dict with tied weights, an integer buffer and a 0-d tensor; an NCE part; a normaliser."""
    torch.manual_seed(0)
    shared = torch.nn.Linear(3, 3)
    model = torch.nn.ModuleDict({"enc": shared, "dec": shared, "bn": torch.nn.BatchNorm1d(3)})
    state = model.state_dict()
    state["temperature"] = torch.tensor(0.5)
    nce = {"proj.weight": torch.randn(2, 3)}
    normalizer = {"text": {"mean": np.arange(2, dtype=np.float32), "std": np.ones(2, np.float32)}}
    return state, nce, normalizer


def test_round_trip_keeps_every_tensor_and_the_spec(tmp_path):
    state, nce, normalizer = toy_parts()
    write_checkpoint(tmp_path, SPEC_FIELDS, state, nce, normalizer)
    ckpt = read_checkpoint(tmp_path)
    assert {k: ckpt.spec[k] for k in SPEC_FIELDS} == SPEC_FIELDS
    assert ckpt.spec["weights"]["file"] == WEIGHTS and len(ckpt.spec["weights"]["sha256"]) == 64
    assert ckpt.state_dict.keys() == state.keys()
    for key, value in state.items():
        assert ckpt.state_dict[key].dtype == value.dtype and torch.equal(ckpt.state_dict[key], value), key
    assert torch.equal(ckpt.nce_state_dict["proj.weight"], nce["proj.weight"])
    np.testing.assert_array_equal(ckpt.normalizer["text"]["mean"], normalizer["text"]["mean"])
    assert read_weights(tmp_path / WEIGHTS)[1].keys() == nce.keys()
    # absent parts come back as None
    write_checkpoint(tmp_path / "bare", SPEC_FIELDS, state)
    bare = read_checkpoint(tmp_path / "bare")
    assert bare.nce_state_dict is None and bare.normalizer is None


def test_same_tensors_give_the_same_bytes_in_separate_processes(tmp_path):
    """No pickle, no path or object identity in the files: two processes (different hash seeds)
    writing the same tensors to different folders write the same bytes."""
    here = os.path.dirname(__file__)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}
    for name, hash_seed in (("a", "1"), ("b", "2")):
        subprocess.run(
            [sys.executable, "-c", WRITER, str(tmp_path / name)], check=True, env={**env, "PYTHONHASHSEED": hash_seed}
        )
    for name in (WEIGHTS, SPEC):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_damaged_or_edited_checkpoints_are_named(tmp_path):
    write_checkpoint(tmp_path, SPEC_FIELDS, *toy_parts())
    with pytest.raises(CheckpointError, match="no model.json"):
        read_checkpoint(tmp_path / "missing")
    weights = (tmp_path / WEIGHTS).read_bytes()
    (tmp_path / WEIGHTS).write_bytes(weights[:-1] + bytes([weights[-1] ^ 1]))
    with pytest.raises(CheckpointError, match="model.safetensors: SHA-256 differs from model.json key weights.sha256"):
        read_checkpoint(tmp_path)
    (tmp_path / WEIGHTS).write_bytes(weights)
    spec = json.loads((tmp_path / SPEC).read_text())
    (tmp_path / SPEC).write_text(json.dumps({k: v for k, v in spec.items() if k != "inputs"}))
    with pytest.raises(CheckpointError, match=r"model.json: key\(s\) inputs missing"):
        read_spec(tmp_path)
    (tmp_path / SPEC).write_text(json.dumps({**spec, "version": 99}))
    with pytest.raises(CheckpointError, match="this polysent reads 'polysent-model' version 1"):
        read_spec(tmp_path)
    (tmp_path / "junk.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(CheckpointError, match="junk.safetensors: not a readable safetensors file"):
        read_weights(tmp_path / "junk.safetensors")
