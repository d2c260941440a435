"""Emotion detection (§7.4): precision / recall / F1 per experiment and label over seeds, with and
without positive-class weighting."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from polysent.report.common import ReportError, describe_train, mean_std, to_float, with_entry_defaults
from polysent.report.runs import group_by_experiment


def emotion_table(experiments: Mapping[str, Mapping], names: list[str], runs: Mapping[str, list[dict]]) -> pd.DataFrame:
    """Emotion detection per experiment and label: precision / recall / F1 mean ± std over seeds.

    ``f1_all_positive`` is the F1 of predicting every test segment positive (recall 1), the
    trivial operating point the paper reports for positive weighting.
    """
    rows = []
    for name in names:
        entry = experiments[name]
        full = with_entry_defaults(entry)
        metrics = runs.get(name) or []
        if not metrics:
            raise ReportError(f"emotions: no runs of experiment '{name}'")
        labels = list(entry.get("emotions") or metrics[0]["test"]["per_label"])
        for label in [*labels, "macro"]:
            row = {
                "experiment": name,
                "label": entry.get("label", name),
                "model": entry["model"],
                "train": describe_train(entry["train"], full["transaug"]),
                "eval": entry["eval"].upper(),
                "pos_weight": bool(full["pos_weight"]),
                "emotion": label,
                "n_seeds": len(metrics),
                "n_test": int(metrics[0]["test"]["n"]),
            }
            if label == "macro":
                row["n_pos"] = np.nan
                row["f1_mean"], row["f1_std"], _ = mean_std([to_float(m["test"].get("macro_f1")) for m in metrics])
                row["f1_all_positive"] = np.nan
            else:
                per = []
                for m in metrics:
                    if label not in m["test"]["per_label"]:
                        raise ReportError(
                            f"emotions: run {name}/seed{m['seed']} has no test metrics for "
                            f"'{label}' (has {sorted(m['test']['per_label'])})"
                        )
                    per.append(m["test"]["per_label"][label])
                for key in ("precision", "recall", "f1"):
                    row[f"{key}_mean"], row[f"{key}_std"], _ = mean_std([to_float(p[key]) for p in per])
                n_pos = int(per[0]["n_pos"])
                row["n_pos"] = n_pos
                p = n_pos / row["n_test"] if row["n_test"] else np.nan
                row["f1_all_positive"] = 2 * p / (1 + p) if p == p else np.nan
            rows.append(row)
    columns = [
        "experiment", "label", "model", "train", "eval", "pos_weight", "emotion", "n_seeds",
        "n_test", "n_pos", "precision_mean", "precision_std", "recall_mean", "recall_std",
        "f1_mean", "f1_std", "f1_all_positive",
    ]  # fmt: skip
    frame = pd.DataFrame(rows).reindex(columns=columns)
    frame["n_pos"] = frame["n_pos"].astype("Int64")
    return frame.round(4)


def build_emotions(metric_paths: list[str], experiments: Mapping[str, Mapping], csv_path: str) -> pd.DataFrame:
    """results/emotions.csv from the selected runs' metrics (rule report_emotions)."""
    from polysent.io import write_csv

    table = emotion_table(experiments, list(experiments), group_by_experiment(metric_paths))
    write_csv(csv_path, table)
    return table
