"""The paper's Table 1: one row per sentiment experiment, mean ± std over seeds of Pearson r, MAE,
Acc-2 (both conventions), F1, Acc-7, the training segments per language and the test size, next
to the paper's r / MAE (``results/table1.csv``, ``.md``; the findings checks go with it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from polysent.report.common import (
    SENTIMENT_METRICS,
    ReportError,
    describe_train,
    fmt_plain,
    fmt_pm,
    mean_std,
    task_of,
    to_float,
)
from polysent.report.findings import findings, findings_markdown
from polysent.report.runs import group_by_experiment


def group_of(entry: Mapping[str, Any]) -> str:
    """The block of the paper's Table 1 a row belongs to (the entry's ``group`` when set)."""
    if entry.get("group"):
        return entry["group"]
    if entry.get("nce"):
        return "NCE Loss"
    if entry["model"] == "adamml_clstm":
        return "AdaMML + Contextual LSTM"
    return "Baseline Models"


def table1(
    experiments: Mapping[str, Mapping], names: list[str], runs: Mapping[str, list[dict]]
) -> pd.DataFrame:
    """Table 1: one row per experiment in ``names``, metrics aggregated over its runs.

    ``runs[name]`` is the list of that experiment's metrics dicts (one per seed).
    """
    rows = []
    for name in names:
        entry = experiments[name]
        if task_of(entry) != "sentiment":
            raise ReportError(f"table1: experiment '{name}' is not a sentiment experiment")
        metrics = runs.get(name) or []
        if not metrics:
            raise ReportError(f"table1: no runs of experiment '{name}'")
        paper = entry.get("paper") or {}
        row: dict[str, Any] = {
            "experiment": name,
            "group": group_of(entry),
            "label": entry.get("label", name),
            "model": entry["model"],
            "train": describe_train(entry["train"], entry.get("transaug", False)),
            "eval": entry["eval"].upper(),
            "drop_neutral": bool(entry.get("drop_neutral", False)),
            "in_paper": bool(paper),
            "seeds": " ".join(str(m["seed"]) for m in metrics),
            "n_seeds": len(metrics),
        }
        sizes = sorted({int(m["test"]["n"]) for m in metrics})
        # Same data and split for every seed: a differing size means runs from different configs.
        if len(sizes) != 1:
            raise ReportError(f"table1: runs of '{name}' have different test sizes {sizes}")
        row["n_test"] = sizes[0]
        row["n_train"] = describe_n_train(metrics)
        notes = []
        for key, stem in SENTIMENT_METRICS.items():
            mean, std, undefined = mean_std([to_float(m["test"][key]) for m in metrics])
            row[f"{stem}_mean"], row[f"{stem}_std"] = mean, std
            if stem in ("r", "mae"):
                row[f"paper_{stem}"] = to_float(paper.get(stem))
            if undefined:
                notes.append(f"{stem} undefined in {undefined}/{len(metrics)} seeds")
        # a few-shot count larger than the corpus offers (polysent.data.few_shot_train)
        notes += sorted({w for m in metrics for w in m.get("warnings") or [] if "exceeds the" in w})
        row["notes"] = "; ".join(notes)
        rows.append(row)
    order = [
        "experiment", "group", "label", "model", "train", "eval", "drop_neutral", "in_paper",
        "seeds", "n_seeds", "n_train", "n_test", "r_mean", "r_std", "paper_r", "mae_mean", "mae_std",
        "paper_mae", "acc2_has0_mean", "acc2_has0_std", "acc2_non0_mean", "acc2_non0_std",
        "f1_has0_mean", "f1_has0_std", "f1_non0_mean", "f1_non0_std", "acc7_mean", "acc7_std",
        "notes",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=order).round(4)


def describe_n_train(metrics: list[dict]) -> str:
    """Training segments per language over the seeds, e.g. ``"FR 1745 + ES 230"`` (a range
    ``"196-289"`` where a subset redrawn per seed differs); TransAug samples are not counted."""
    by_lang: dict[str, list[int]] = {}
    for m in metrics:
        for lang, n in ((m.get("data") or {}).get("n_train_by_lang") or {}).items():
            by_lang.setdefault(lang, []).append(int(n))
    parts = []
    for lang, counts in by_lang.items():
        lo, hi = min(counts), max(counts)
        parts.append(f"{lang.upper()} {lo}" if lo == hi else f"{lang.upper()} {lo}-{hi}")
    return " + ".join(parts)


def table1_markdown(table: pd.DataFrame, found: pd.DataFrame | None = None) -> str:
    """Markdown rendering of Table 1 (and the findings), for a README or a quick look."""
    head = (
        "| Group | Model / variation | Train | Eval | Neutrals | r ↑ | paper r | MAE ↓ | paper MAE "
        "| Acc-2 (has0) | Acc-2 (non0) | F1 (non0) | Acc-7 | n train | n test | seeds |"
    )
    lines = [
        "# Table 1 — sentiment regression on the test split of the eval language",
        "",
        "Mean ± sample std over seeds. Acc-2 *has0*: (y ≥ 0) vs (ŷ ≥ 0) over all segments; "
        "*non0*: (y > 0) vs (ŷ > 0) over segments with y ≠ 0. F1 is weighted F1 in the non0 "
        "convention. n train: training segments per language (TransAug translations not "
        "counted). Rows with paper r = – are not in the paper's Table 1.",
        "",
        head,
        "|" + "---|" * (head.count("|") - 1),
    ]
    for _, row in table.iterrows():
        neutrals = "dropped" if row["drop_neutral"] else "kept"
        label = str(row["label"]).replace("|", "\\|")  # "L_cross(T|V)" inside a table cell
        lines.append(
            f"| {row['group']} | {label} | {row['train']} | {row['eval']} | {neutrals} "
            f"| {fmt_pm(row['r_mean'], row['r_std'])} | {fmt_plain(row['paper_r'])} "
            f"| {fmt_pm(row['mae_mean'], row['mae_std'])} | {fmt_plain(row['paper_mae'])} "
            f"| {fmt_pm(row['acc2_has0_mean'], row['acc2_has0_std'])} "
            f"| {fmt_pm(row['acc2_non0_mean'], row['acc2_non0_std'])} "
            f"| {fmt_pm(row['f1_non0_mean'], row['f1_non0_std'])} "
            f"| {fmt_pm(row['acc7_mean'], row['acc7_std'])} | {row['n_train'] or '–'} | {row['n_test']} "
            f"| {row['n_seeds']} |"
        )
    notes = table[table["notes"].astype(str) != ""]
    for _, row in notes.iterrows():
        lines.append(f"\n*{row['experiment']}*: {row['notes']}")
    lines += findings_markdown(found)
    return "\n".join(lines) + "\n"


def build_table1(
    metric_paths: list[str],
    experiments: Mapping[str, Mapping],
    report: Mapping[str, Any],
    csv_path: str,
    md_path: str,
    findings_path: str,
) -> pd.DataFrame:
    """results/table1.csv + .md and results/findings.csv from the selected runs' metrics
    (rule report_table1)."""
    from polysent.io import write_csv, write_text

    runs = group_by_experiment(metric_paths)
    table = table1(experiments, list(experiments), runs)
    found = findings(table, report.get("findings") or [])
    write_csv(csv_path, table)
    write_csv(findings_path, found)
    write_text(md_path, table1_markdown(table, found))
    return table
