"""The paper's Table 2: emotion label counts per emotion and language, next to the paper's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from polysent.report.common import ReportError, read_manifest, with_report_defaults

# The paper's Table 2 (negative, positive counts per emotion; 10 100 segments, the subset is not
# stated in the paper).
PAPER_TABLE2 = {
    "anger": (9899, 201),
    "confident": (7799, 2301),
    "disgust": (10059, 41),
    "dominant": (9906, 194),
    "eloquent": (9315, 785),
    "entertaining": (10057, 43),
    "fear": (10080, 20),
    "happiness": (8370, 1730),
    "humorous": (9993, 107),
    "narcissist": (10076, 24),
    "nervous": (9897, 203),
    "passionate": (8642, 1458),
    "persuasive": (9314, 786),
    "relaxed": (4658, 5442),
    "reserved": (9935, 165),
    "sadness": (9957, 143),
    "sarcastic": (10065, 35),
    "surprise": (10018, 82),
}


def table2(manifest: pd.DataFrame, labels: list[str], threshold: float = 0.5) -> pd.DataFrame:
    """Negative / positive counts per emotion label and language (+ ``all``), as the paper's Table 2.

    A segment is positive when its label is above ``threshold``; missing labels are counted
    separately rather than as negative.
    """
    if not labels:
        raise ReportError("table2: the manifest has no emotion label columns")
    rows = []
    langs = sorted(manifest["lang"].unique())
    for label in labels:
        for lang in [*langs, "all"]:
            values = manifest[label] if lang == "all" else manifest.loc[manifest["lang"] == lang, label]
            values = values.astype(float)
            missing = int(values.isna().sum())
            positive = int((values > threshold).sum())
            negative = int(len(values) - missing - positive)
            paper_neg, paper_pos = PAPER_TABLE2.get(label, (np.nan, np.nan))
            rows.append(
                {
                    "emotion": label,
                    "lang": lang,
                    "negative": negative,
                    "positive": positive,
                    "missing": missing,
                    "positive_rate": positive / max(negative + positive, 1),
                    "paper_negative": paper_neg,
                    "paper_positive": paper_pos,
                    "paper_positive_rate": paper_pos / (paper_neg + paper_pos),
                }
            )
    frame = pd.DataFrame(rows)
    for col in ("paper_negative", "paper_positive"):
        frame[col] = frame[col].astype("Int64")
    return frame.round({"positive_rate": 4, "paper_positive_rate": 4})


def build_table2(manifest_path: str, report: Mapping[str, Any], csv_path: str) -> pd.DataFrame:
    """results/table2.csv from the manifest (the stage entry point of rule report_table2)."""
    from polysent.io import write_csv

    manifest, labels = read_manifest(manifest_path)
    table = table2(manifest, labels, float(with_report_defaults(report)["emotion_threshold"]))
    write_csv(csv_path, table)
    return table
