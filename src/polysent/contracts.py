"""Data contracts of the Parquet stores, written once and checked at every stage boundary.

A contract fixes the required columns and their Arrow types; stores may carry extra columns
(named feature columns in frame stores, one column per emotion label in the manifest) which are
checked by pattern. :func:`check` raises :class:`ContractError` naming the file and the column.
The runs' ``metrics.json`` has a key contract (:class:`JsonContract`, :func:`read_json`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from polysent import io

SPLITS = ("train", "valid", "test")
SENTIMENT_RANGE = (-3.0, 3.0)


class ContractError(ValueError):
    """A table does not honour its store contract."""


@dataclass(frozen=True)
class Contract:
    name: str
    required: dict[str, pa.DataType]
    # Extra columns must have one of these types (e.g. float32 feature columns).
    extra_types: tuple[pa.DataType, ...] = ()
    unique: tuple[str, ...] = ()
    notes: dict[str, str] = field(default_factory=dict)
    # Columns of per-row vectors: fixed_size_list<float32>[D], any D (the width is data).
    vectors: tuple[str, ...] = ()
    # Columns of per-row vector sequences (one vector per word): list<fixed_size_list<float32>[D]>.
    sequences: tuple[str, ...] = ()

    def schema(self) -> pa.Schema:
        """Arrow schema of the required columns (for writers that build an empty table)."""
        return pa.schema([pa.field(n, t) for n, t in self.required.items()])


MANIFEST = Contract(
    name="manifest",
    required={
        "segment_id": pa.string(),
        "video_id": pa.string(),
        "lang": pa.string(),
        "split": pa.string(),
        "start": pa.float64(),
        "end": pa.float64(),
        "transcript": pa.string(),
        "sentiment": pa.float32(),
        "video_path": pa.string(),
        "audio_path": pa.string(),
        "shard": pa.int32(),
    },
    extra_types=(pa.float32(),),  # one float32 column per emotion / attribute label
    unique=("segment_id",),
)

FRAMES = Contract(
    name="frames",
    required={"segment_id": pa.string(), "time": pa.float64()},
    extra_types=(pa.float32(), pa.bool_()),
)

VISUAL_FRAMES = Contract(
    name="visual_frames",
    required={
        "segment_id": pa.string(),
        "time": pa.float64(),
        "success": pa.bool_(),
        "confidence": pa.float32(),
    },
    extra_types=(pa.float32(),),
)

WORDS = Contract(
    name="words",
    required={
        "segment_id": pa.string(),
        "word_idx": pa.int32(),
        "word": pa.string(),
        "start": pa.float64(),
        "end": pa.float64(),
    },
)

QC = Contract(
    name="qc",
    required={
        "segment_id": pa.string(),
        "video_id": pa.string(),
        "stage": pa.string(),
        "reason": pa.string(),  # what is wrong, in words
        "detail": pa.string(),  # the failing tool's own message (stderr tail), or null
    },
)

TRANSLATIONS = Contract(
    name="translations",
    required={
        "segment_id": pa.string(),
        "video_id": pa.string(),
        "source": pa.string(),
        "translation": pa.string(),
    },
    unique=("segment_id",),
)

TEXT_VECTORS = Contract(
    name="text_vectors",
    required={
        "segment_id": pa.string(),
        "kind": pa.string(),  # "source" (aligned words) or "translation" (words of a translation)
        "word_idx": pa.int32(),
        "word": pa.string(),
        "oov": pa.bool_(),
    },
    vectors=("vector",),
)

# One row per (video, sample rate) of the media stage's WAVs (results/media/{shard}/index.parquet).
MEDIA_INDEX = Contract(
    name="media_index",
    required={
        "video_id": pa.string(),
        "sample_rate": pa.int32(),
        "wav": pa.string(),
        "duration": pa.float64(),
        "source": pa.string(),
        "source_duration": pa.float64(),
    },
)

# The word-aligned feature store (polysent.store): one row per segment; float32 label columns.
FEATURE_STORE = Contract(
    name="feature_store",
    required={
        "segment_id": pa.string(),
        "video_id": pa.string(),
        "lang": pa.string(),
        "split": pa.string(),
        "sentiment": pa.float32(),
        "words": pa.list_(pa.string()),
        "tr_lang": pa.string(),
        "words_tr": pa.list_(pa.string()),
    },
    extra_types=(pa.float32(),),
    unique=("segment_id",),
    sequences=("text", "visual", "acoustic", "text_tr", "visual_tr", "acoustic_tr"),
)

# A run's predictions (results/runs/{exp}/seed{seed}/predictions.parquet): y_true/y_pred for
# sentiment, true_<label>/prob_<label> for emotions, all float32.
PREDICTIONS = Contract(
    name="predictions",
    required={"segment_id": pa.string(), "lang": pa.string(), "split": pa.string()},
    extra_types=(pa.float32(),),
)

# A run's AdaMML policy decisions (decisions.parquet; no rows for models without a policy).
DECISIONS = Contract(
    name="decisions",
    required={
        "segment_id": pa.string(),
        "split": pa.string(),
        "window": pa.int32(),
        "modality": pa.string(),
        "selected": pa.int8(),
        "prob": pa.float32(),
    },
)


@dataclass(frozen=True)
class JsonContract:
    """Required top-level keys of a JSON file and the Python type of each value."""

    name: str
    required: dict[str, type | tuple[type, ...]]


# A run's metrics (results/runs/{exp}/seed{seed}/metrics.json, polysent.train).
METRICS = JsonContract(
    name="metrics",
    required={
        "experiment": str,
        "seed": int,
        "model": str,
        "task": str,
        "valid": dict,
        "test": dict,
    },
)


def manifest_schema(label_columns: list[str]) -> pa.Schema:
    """Arrow schema of a manifest with the given label columns (float32 each)."""
    fields = [pa.field(n, t) for n, t in MANIFEST.required.items()]
    fields += [pa.field(c, pa.float32()) for c in label_columns]
    return pa.schema(fields)


def label_columns(schema: pa.Schema) -> list[str]:
    """Emotion/attribute label columns of a manifest: the extra float32 columns."""
    return [f.name for f in schema if f.name not in MANIFEST.required and f.type == pa.float32()]


def _same_type(actual: pa.DataType, expected: pa.DataType) -> bool:
    """Types equal up to offset width: pandas 3 hands Arrow ``large_string`` for every str column."""
    if pa.types.is_large_string(actual):
        actual = pa.string()
    # list<item: T> and list<element: T> (Parquet's name for the item) are the same list
    if pa.types.is_list(actual) and pa.types.is_list(expected):
        return _same_type(actual.value_type, expected.value_type)
    return actual == expected


def check_schema(schema: pa.Schema, contract: Contract, where: str) -> None:
    problems = []
    for name, dtype in contract.required.items():
        if name not in schema.names:
            problems.append(f"missing column '{name}' ({dtype})")
        elif not _same_type(schema.field(name).type, dtype):
            problems.append(f"column '{name}' is {schema.field(name).type}, expected {dtype}")
    for name in contract.vectors:
        if name not in schema.names:
            problems.append(f"missing column '{name}' (fixed_size_list<float32>)")
            continue
        dtype = schema.field(name).type
        if not (pa.types.is_fixed_size_list(dtype) and dtype.value_type == pa.float32()):
            problems.append(f"column '{name}' is {dtype}, expected fixed_size_list<float32>")
    for name in contract.sequences:
        if name not in schema.names:
            problems.append(f"missing column '{name}' (list<fixed_size_list<float32>>)")
        elif not _is_sequence(schema.field(name).type):
            problems.append(f"column '{name}' is {schema.field(name).type}, expected list<fixed_size_list<float32>>")
    for f in schema:
        if f.name in contract.required or f.name in contract.vectors or f.name in contract.sequences:
            continue
        if contract.extra_types and not any(_same_type(f.type, t) for t in contract.extra_types):
            allowed = ", ".join(map(str, contract.extra_types))
            problems.append(f"extra column '{f.name}' is {f.type}, expected one of {allowed}")
    if problems:
        raise ContractError(f"{where}: not a valid {contract.name} store: " + "; ".join(problems))


def _is_sequence(dtype: pa.DataType) -> bool:
    if not (pa.types.is_list(dtype) or pa.types.is_large_list(dtype)):
        return False
    inner = dtype.value_type
    return pa.types.is_fixed_size_list(inner) and inner.value_type == pa.float32()


def check(table: pa.Table, contract: Contract, where: str = "<table>") -> pa.Table:
    """Check ``table`` against ``contract`` (types, uniqueness, manifest value ranges)."""
    check_schema(table.schema, contract, where)
    for col in contract.unique:
        _check_unique(table, col, where)
    if contract is MANIFEST:
        _check_manifest_values(table, where)
    return table


def _check_unique(table: pa.Table, col: str, where: str) -> None:
    values = table.column(col).to_pylist()
    if len(values) != len(set(values)):
        seen, dup = set(), []
        for v in values:
            if v in seen:
                dup.append(v)
            seen.add(v)
        raise ContractError(f"{where}: duplicate {col} values: {sorted(set(dup))[:5]}")


def _check_manifest_values(table: pa.Table, where: str) -> None:
    import numpy as np

    split = set(table.column("split").to_pylist())
    if not split <= set(SPLITS):
        raise ContractError(f"{where}: unknown split values {sorted(split - set(SPLITS))}")
    start = table.column("start").to_numpy()
    end = table.column("end").to_numpy()
    if np.any(end <= start):
        bad = table.column("segment_id").to_numpy(zero_copy_only=False)[end <= start]
        raise ContractError(f"{where}: segments with end <= start: {list(bad[:5])}")
    s = table.column("sentiment").to_numpy(zero_copy_only=False)
    if np.any(np.isnan(s)) or np.any(s < SENTIMENT_RANGE[0]) or np.any(s > SENTIMENT_RANGE[1]):
        raise ContractError(f"{where}: sentiment must be finite and within {SENTIMENT_RANGE}")


def project(contract: Contract, columns: list[str]) -> Contract:
    """The part of ``contract`` that a read of ``columns`` can check (uniqueness only if kept)."""
    return Contract(
        name=contract.name,
        required={c: t for c, t in contract.required.items() if c in columns},
        extra_types=contract.extra_types,
        unique=tuple(c for c in contract.unique if c in columns),
        vectors=tuple(c for c in contract.vectors if c in columns),
        sequences=tuple(c for c in contract.sequences if c in columns),
    )


def read(path: str | os.PathLike, contract: Contract, columns: list[str] | None = None) -> pa.Table:
    """Read a Parquet store and check it against ``contract``.

    A projected read (``columns=``) checks the projected columns: each must exist and have its
    contract type, so a reader never gets a silently wrong column because it asked for few.
    """
    if columns is None:
        return check(io.read_parquet(path), contract, where=str(path))
    schema = io.read_schema(path)
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise ContractError(f"{path}: not a valid {contract.name} store: missing column(s) {missing}")
    table = io.read_parquet(path, columns=columns)
    part = project(contract, columns)
    check_schema(table.schema, part, where=str(path))
    for col in part.unique:
        _check_unique(table, col, str(path))
    return table


def check_json(obj: Any, contract: JsonContract, where: str = "<json>") -> dict:
    """Check that ``obj`` is an object with ``contract``'s keys, each of its type."""
    if not isinstance(obj, dict):
        raise ContractError(f"{where}: not a valid {contract.name} file: top level is {type(obj).__name__}")
    problems = []
    for key, kind in contract.required.items():
        if key not in obj:
            problems.append(f"missing key '{key}'")
        # bool is an int to Python, but a seed of `true` is a broken file
        elif not isinstance(obj[key], kind) or (isinstance(obj[key], bool) and bool not in _types(kind)):
            expected = " or ".join(t.__name__ for t in _types(kind))
            problems.append(f"key '{key}' is {type(obj[key]).__name__}, expected {expected}")
    if problems:
        raise ContractError(f"{where}: not a valid {contract.name} file: " + "; ".join(problems))
    return obj


def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def read_json(path: str | os.PathLike, contract: JsonContract) -> dict:
    """Read a JSON file and check it against ``contract`` (corrupt JSON names the file)."""
    return check_json(io.read_json(path), contract, where=str(path))


def read_metrics(path: str | os.PathLike) -> dict:
    """A run's ``metrics.json``, checked (the one reader of the file)."""
    return read_json(path, METRICS)


def read_predictions(path: str | os.PathLike) -> pa.Table:
    """A run's ``predictions.parquet``, checked (the one reader of the file)."""
    return read(path, PREDICTIONS)


def read_decisions(path: str | os.PathLike) -> pa.Table:
    """A run's ``decisions.parquet``, checked (the one reader of the file)."""
    return read(path, DECISIONS)
