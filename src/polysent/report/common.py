"""Helpers shared by the report modules: the error type, metric names, the seed aggregate, number
formatting and the description of an experiment's data setting.

Std is the sample standard deviation over seeds (ddof = 1); it is NaN (shown empty) for a single
seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from polysent.config import schema_defaults

# Metric keys of a sentiment split dict in metrics.json -> Table 1 column stem.
SENTIMENT_METRICS = {
    "corr": "r",
    "mae": "mae",
    "acc2_has0": "acc2_has0",
    "acc2_non0": "acc2_non0",
    "f1_has0": "f1_has0",
    "f1_non0": "f1_non0",
    "acc7": "acc7",
}
LOWER_IS_BETTER = {"mae"}
MODALITIES = ("text", "visual", "acoustic")


class ReportError(ValueError):
    """A report input is missing, inconsistent or malformed; the message names the file or key."""


def task_of(entry: Mapping[str, Any]) -> str:
    return entry.get("task") or "sentiment"


# ----------------------------------------------------------------------------- aggregation


def to_float(value: Any) -> float:
    """A metric value as float (JSON null / missing -> NaN)."""
    if value is None:
        return float("nan")
    return float(value)


def mean_std(values: list[float]) -> tuple[float, float, int]:
    """Mean and sample std over the finite values, and how many values were not finite."""
    arr = np.asarray(values, dtype=float)
    finite = arr[np.isfinite(arr)]
    undefined = int(arr.size - finite.size)
    if finite.size == 0:
        return float("nan"), float("nan"), undefined
    std = float(np.std(finite, ddof=1)) if finite.size > 1 else float("nan")
    return float(np.mean(finite)), std, undefined


# ----------------------------------------------------------------------------- formatting


def fmt_pm(mean: float, std: float, digits: int = 2) -> str:
    """``"0.35 ± 0.02"``; the mean alone for one seed, ``"n/a"`` when undefined."""
    if not np.isfinite(mean):
        return "n/a"
    if not np.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def fmt_plain(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if np.isfinite(value) else "–"


def describe_train(train: Mapping[str, Any], transaug: bool = False) -> str:
    """``{fr: 1.0, es: 0.13}`` -> ``"FR + 13% ES"``, ``{es: {count: 230}}`` -> ``"230 seg. ES"``
    (a few-shot subset by count, polysent.data.subset_spec); TransAug is appended as in the paper."""
    parts = []
    for lang, share in train.items():
        spec = share if isinstance(share, Mapping) else {"fraction": share}
        unit = "videos" if spec.get("unit") == "videos" else "seg."
        if "count" in spec:
            parts.append(f"{int(spec['count'])} {unit} {lang.upper()}")
        elif math.isclose(float(spec["fraction"]), 1.0):
            parts.append(lang.upper())
        else:
            videos = " videos" if spec.get("unit") == "videos" else ""
            parts.append(f"{float(spec['fraction']) * 100:g}%{videos} {lang.upper()}")
    if transaug:
        parts.append("TransAug")
    return " + ".join(parts)


def setting(entry: Mapping[str, Any]) -> str:
    """``"FR + 13% ES -> ES"``: the train -> eval setting of an experiment."""
    return f"{describe_train(entry['train'], with_entry_defaults(entry)['transaug'])} -> {entry['eval'].upper()}"


def with_entry_defaults(entry: Mapping[str, Any]) -> dict[str, Any]:
    """An experiment entry with the experiments schema's defaults under its own keys."""
    return {**schema_defaults("experiments", "*"), **entry}


def with_report_defaults(report: Mapping[str, Any]) -> dict[str, Any]:
    """The ``report`` section with the schema's defaults under its own keys."""
    return {**schema_defaults("report"), **report}


# ----------------------------------------------------------------------------- inputs


def read_manifest(path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """The manifest (contract-checked) as a DataFrame, and its emotion label columns."""
    from polysent import contracts

    table = contracts.read(path, contracts.MANIFEST)
    return table.to_pandas(), contracts.label_columns(table.schema)
