"""How often the AdaMML policy network keeps each modality (the paper's Figure 4), from the runs'
``decisions.parquet``; the figure itself is drawn by :mod:`polysent.report.figures`."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from polysent.report.common import MODALITIES, ReportError, mean_std, setting

DECISION_COLUMNS = ("segment_id", "split", "window", "modality", "selected", "prob")


def modality_utilisation(
    decisions: Mapping[str, list[pd.DataFrame]],
    experiments: Mapping[str, Mapping],
    split: str = "test",
) -> pd.DataFrame:
    """Mean ± std over seeds of the AdaMML policy's choices on ``split``.

    Three measures per experiment (a *step* is one policy decision: a window of words, or one
    word with ``window: 1``):

    - ``hard_rate``: share of steps in which each modality was kept (the decisions the fusion
      network saw; the paper's Fig. 4);
    - ``expected_rate``: mean policy probability of keeping each modality. With
      ``eval_decisions: sample`` the hard rate is a draw around it; with ``argmax`` the two
      differ whenever the policy is unsure (a probability of 0.6 counts as a hard 1);
    - ``n_selected``: share of steps keeping 0, 1, 2 or 3 modalities (does "all three most of the
      time" hold?).
    """
    rows = []
    for name, per_seed in decisions.items():
        measures: dict[tuple[str, str], list[float]] = {}
        for frame in per_seed:
            for (measure, key), value in _utilisation_of_run(name, frame, split).items():
                measures.setdefault((measure, key), []).append(value)
        entry = experiments[name]
        for (measure, key), values in measures.items():
            mean, std, _ = mean_std(values)
            rows.append(
                {
                    "experiment": name,
                    "setting": setting(entry),
                    "label": entry.get("label", name),
                    "measure": measure,
                    "key": key,
                    "mean": mean,
                    "std": std,
                    "n_seeds": len(values),
                }
            )
    columns = ["experiment", "setting", "label", "measure", "key", "mean", "std", "n_seeds"]
    return pd.DataFrame(rows, columns=columns).round({"mean": 4, "std": 4})


def _utilisation_of_run(name: str, frame: pd.DataFrame, split: str) -> dict[tuple[str, str], float]:
    """The three utilisation measures of one run's decisions on ``split``."""
    missing = set(DECISION_COLUMNS) - set(frame.columns)
    if missing:
        raise ReportError(f"decisions of '{name}' lack column(s) {sorted(missing)}")
    part = frame[frame["split"] == split]
    if part.empty:
        raise ReportError(f"decisions of '{name}' have no rows for split '{split}'")
    unknown = set(part["modality"]) - set(MODALITIES)
    if unknown:
        raise ReportError(f"decisions of '{name}': unknown modality {sorted(unknown)}")
    prob = part["prob"].astype(float)
    if not prob.between(0, 1).all():
        raise ReportError(f"decisions of '{name}': 'prob' outside [0, 1] or missing")
    by_modality = part.groupby("modality")
    hard, expected = by_modality["selected"].mean(), by_modality["prob"].mean()
    out = {}
    for modality in MODALITIES:
        out[("hard_rate", modality)] = float(hard.get(modality, np.nan))
        out[("expected_rate", modality)] = float(expected.get(modality, np.nan))
    share = part.groupby(["segment_id", "window"])["selected"].sum().value_counts(normalize=True)
    for k in range(len(MODALITIES) + 1):
        out[("n_selected", str(k))] = float(share.get(k, 0.0))
    return out
