"""The one file-hash helper and the one strict-JSON cleaner."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from polysent.filehash import sha256_file
from polysent.jsonclean import json_clean


def test_sha256_file_matches_hashlib_over_several_chunks(tmp_path):
    data = np.random.default_rng(0).bytes(3 * (1 << 20) + 17)  # spans chunk boundaries
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert sha256_file(str(path)) == sha256_file(path)
    (tmp_path / "empty").write_bytes(b"")
    assert sha256_file(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_json_clean_gives_strict_json():
    obj = {
        "r": float("nan"),
        "up": math.inf,
        "down": np.float64(-np.inf),
        "v": np.array([1.5, np.nan]),
        "n": np.int64(3),
        "t": (1, float("nan")),
        2: {"ok": 0.25, "s": "x", "none": None, "flag": True},
    }
    clean = json_clean(obj)
    assert clean == {
        "r": None,
        "up": None,
        "down": None,
        "v": [1.5, None],
        "n": 3,
        "t": [1, None],
        "2": {"ok": 0.25, "s": "x", "none": None, "flag": True},
    }
    json.dumps(clean, allow_nan=False)  # raises on any NaN/inf left
    assert type(clean["n"]) is int
