"""Out-of-distribution check of new videos' features against the bundle's training range.

At bundle time (:func:`training_range`), per modality and per feature: the mean and standard
deviation of the **word-level** values of the training split's segments (the rows the model was
fitted on, in the training languages' stores), and the share of those training values that lie
beyond ``K_SD`` standard deviations (the base rate the rule is read against).

At prediction (:func:`segment_flags`), the rule: a word-level value is *out of range* when it lies
more than ``K_SD`` = 6 training SDs from the training mean of its feature (a feature constant in
training: any other value); a segment's modality is flagged ``ood`` when more than ``MAX_SHARE``
= 2 % of its word-level values (all features of the modality together; NaN ignored) are out of
range. Whatever a feature's distribution, at most 1/36 of its training values lie beyond 6 SDs
(Chebyshev), and far fewer in practice (the base rate stored in the bundle); 4 SDs was measured
to flag in-distribution visual segments of the tiny demo run (features with a small training
SD), 6 SDs flagged none of its segments while flagging every one of 12 real recordings. A
single odd word does not flag a segment unless it is most of it. The largest deviation
(``max_sd``) is reported beside the flag.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

MODALITIES = ("text", "visual", "acoustic")
K_SD = 6.0
MAX_SHARE = 0.02
_BATCH = 256  # rows read at a time: bounded memory on large stores


def word_values(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A ``list<fixed_size_list<float32>[D]>`` column as one (words, D) float64 array."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    dim = arr.type.value_type.list_size
    values = arr.flatten().flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, np.float64).reshape(-1, dim)


def _batches(paths: Iterable[str | os.PathLike], modality: str, langs: set[str]):
    for path in paths:
        pf = pq.ParquetFile(path)
        if modality not in pf.schema_arrow.names:
            continue
        for batch in pf.iter_batches(batch_size=_BATCH, columns=[modality, "split", "lang"]):
            keep = pc.and_(pc.equal(batch.column("split"), "train"), pc.is_in(batch.column("lang"), pa.array(langs)))
            rows = batch.filter(keep)
            if rows.num_rows:
                yield word_values(rows.column(modality))


def training_range(stores: Iterable[str | os.PathLike], train_langs: Iterable[str]) -> dict:
    """Per modality: ``mean``/``sd`` per feature over the training split's word-level values,
    ``words`` counted, and ``share_beyond`` (the training values' own share beyond ``k_sd``)."""
    paths, langs = list(stores), set(train_langs)
    out = {"k_sd": K_SD, "max_share": MAX_SHARE, "modalities": {}}
    for m in MODALITIES:
        n, total, squares = 0, None, None
        for x in _batches(paths, m, langs):
            x = np.where(np.isfinite(x), x, np.nan)
            counts = np.sum(np.isfinite(x), axis=0)
            total = np.nansum(x, axis=0) if total is None else total + np.nansum(x, axis=0)
            squares = np.nansum(x * x, axis=0) if squares is None else squares + np.nansum(x * x, axis=0)
            n = counts if isinstance(n, int) else n + counts
        if total is None:
            continue
        n = np.maximum(n, 1)
        mean = total / n
        sd = np.sqrt(np.maximum(squares / n - mean * mean, 0.0))
        beyond = seen = 0
        for x in _batches(paths, m, langs):
            out_of = _beyond(x, mean, sd)
            beyond, seen = beyond + int(out_of.sum()), seen + int(np.isfinite(x).sum())
        out["modalities"][m] = {
            "mean": mean.astype(np.float32).tolist(),
            "sd": sd.astype(np.float32).tolist(),
            "words": int(n.max()),
            "share_beyond": beyond / max(seen, 1),
        }
    return out


def _beyond(x: np.ndarray, mean: np.ndarray, sd: np.ndarray, k: float = K_SD) -> np.ndarray:
    """Finite values more than ``k`` SDs from the mean (any other value where the SD is 0)."""
    finite = np.isfinite(x)
    dev = np.abs(np.where(finite, x, 0.0) - mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, dev / np.where(sd > 0, sd, 1.0), np.where(dev > 1e-6, np.inf, 0.0))
    return finite & (z > k)


def segment_flags(table: pa.Table, ranges: dict | None, modalities: Iterable[str]) -> dict[str, dict]:
    """segment_id -> modality -> ``{"ood": bool, "share": float, "max_sd": float}`` for the
    modalities the model reads (none where the bundle records no training range)."""
    if not ranges:
        return {}
    k, limit = float(ranges["k_sd"]), float(ranges["max_share"])
    ids = table.column("segment_id").to_pylist()
    out: dict[str, dict] = {sid: {} for sid in ids}
    for m in modalities:
        stats = ranges["modalities"].get(m)
        if stats is None or m not in table.column_names:
            continue
        mean, sd = np.asarray(stats["mean"], np.float64), np.asarray(stats["sd"], np.float64)
        column = table.column(m).combine_chunks()
        for i, sid in enumerate(ids):
            words = column[i].values
            if words is None or len(words) == 0:
                continue
            x = word_values_of(words)
            finite = np.isfinite(x)
            if not finite.any():
                continue
            beyond = _beyond(x, mean, sd, k)
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.abs(np.where(finite, x, mean) - mean) / np.where(sd > 0, sd, np.inf)
            share = float(beyond.sum() / finite.sum())
            out[sid][m] = {"ood": share > limit, "share": round(share, 4), "max_sd": round(float(np.max(z)), 2)}
    return out


def word_values_of(words: pa.FixedSizeListArray) -> np.ndarray:
    """One segment's ``fixed_size_list<float32>[D]`` words as a (words, D) float64 array."""
    dim = words.type.list_size
    return np.asarray(words.flatten().to_numpy(zero_copy_only=False), np.float64).reshape(-1, dim)
