"""The paper's Table 1: one row per sentiment experiment, mean ± std over seeds of Pearson r, MAE,
Acc-2 (both conventions), F1, Acc-7, the training segments per language and the test size, next
to the paper's r / MAE (``results/table1.csv``, ``.md``; the findings checks go with it).

The paper's values carry footnotes: how the paper chose that checkpoint (``paper.protocol``; an
``unknown`` protocol is footnoted) and the known defects of the code behind the number
(``paper.defects``, each with its source in the paper's repository), so that a gap between a
polysent row and the paper is read next to its likely cause. Footnotes are numbered in order of
first use down the table; a defect shared by several rows keeps one number.
"""

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
    with_entry_defaults,
)
from polysent.report.findings import findings, findings_markdown
from polysent.report.runs import group_by_experiment, parse_run_path

# The footnote of a paper value whose selection protocol neither the paper nor its code states.
UNKNOWN_PROTOCOL = {
    "what": "selection protocol unknown: neither the paper nor its published code says on which "
    "split this checkpoint was chosen",
    "source": "",
}


PAPER_FOOTNOTES_HEADING = (
    "Footnotes on the paper's values (sources: files of the paper's repository, "
    "github.com/ameliakuang/Multimodal-Multilingual-Sentiment-Analysis-for-Videos):"
)


def group_of(entry: Mapping[str, Any]) -> str:
    """The block of the paper's Table 1 a row belongs to (the entry's ``group`` when set)."""
    if entry.get("group"):
        return entry["group"]
    if entry.get("nce"):
        return "NCE Loss"
    from polysent.models import model_class  # torch: only the Table 1 job pays for it

    return model_class(entry["model"]).report_group


def notes_of_paper(entry: Mapping[str, Any]) -> list[dict[str, str]]:
    """The footnotes of an experiment's paper values: the protocol's (when unknown), then the
    defects in config order; none for a row that is not in the paper."""
    paper = entry.get("paper") or {}
    if not paper:
        return []
    notes = [UNKNOWN_PROTOCOL] if (paper.get("protocol") or "unknown") == "unknown" else []
    return notes + list(paper.get("defects") or [])


def footnote_text(note: Mapping[str, str]) -> str:
    return f"{note['what']} ({note['source']})" if note.get("source") else note["what"]


def paper_footnotes(experiments: Mapping[str, Mapping], names: list[str]) -> tuple[dict[str, list[int]], list[str]]:
    """Footnote numbers per experiment and the footnote texts (number i is ``texts[i - 1]``)."""
    texts: list[str] = []
    numbers: dict[str, list[int]] = {}
    for name in names:
        numbers[name] = []
        for text in map(footnote_text, notes_of_paper(experiments[name])):
            if text not in texts:
                texts.append(text)
            numbers[name].append(texts.index(text) + 1)
    return numbers, texts


def table1(experiments: Mapping[str, Mapping], names: list[str], runs: Mapping[str, list[dict]]) -> pd.DataFrame:
    """Table 1: one row per experiment in ``names``, metrics aggregated over its runs.

    ``runs[name]`` is the list of that experiment's metrics dicts (one per seed). The paper's
    protocol and footnotes are columns (``paper_protocol``, ``paper_footnotes`` = the numbers,
    ``paper_footnote_text`` = the numbered texts, so that each csv row stands alone).
    """
    numbers, texts = paper_footnotes(experiments, names)
    rows = []
    for name in names:
        entry = experiments[name]
        if task_of(entry) != "sentiment":
            raise ReportError(f"table1: experiment '{name}' is not a sentiment experiment")
        metrics = runs.get(name) or []
        if not metrics:
            raise ReportError(f"table1: no runs of experiment '{name}'")
        paper = entry.get("paper") or {}
        full = with_entry_defaults(entry)
        row: dict[str, Any] = {
            "experiment": name,
            "group": group_of(entry),
            "label": entry.get("label", name),
            "model": entry["model"],
            "train": describe_train(entry["train"], full["transaug"]),
            "eval": entry["eval"].upper(),
            "drop_neutral": bool(full["drop_neutral"]),
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
        row["paper_protocol"] = (paper.get("protocol") or "unknown") if paper else ""
        row["paper_footnotes"] = " ".join(map(str, numbers[name]))
        row["paper_footnote_text"] = " ".join(f"[{i}] {texts[i - 1]}" for i in numbers[name])
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
        "paper_mae", "paper_protocol", "paper_footnotes", "acc2_has0_mean", "acc2_has0_std", "acc2_non0_mean", "acc2_non0_std",
        "f1_has0_mean", "f1_has0_std", "f1_non0_mean", "f1_non0_std", "acc7_mean", "acc7_std",
        "notes", "paper_footnote_text",
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


def _marked(value: float, numbers: str) -> str:
    """A paper value with its footnote marks, ``"0.35[^1][^2]"`` (GitHub-flavoured footnotes)."""
    return fmt_plain(value) + "".join(f"[^{n}]" for n in str(numbers).split())


def table1_markdown(table: pd.DataFrame, found: pd.DataFrame | None = None, footnotes: list[str] | None = None) -> str:
    """Markdown rendering of Table 1 (and the findings), for a README or a quick look.

    ``footnotes`` are the texts of the paper values' footnote numbers (:func:`paper_footnotes`);
    they are listed under the table.
    """
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
        marks = row["paper_footnotes"] if "paper_footnotes" in row else ""
        lines.append(
            f"| {row['group']} | {label} | {row['train']} | {row['eval']} | {neutrals} "
            f"| {fmt_pm(row['r_mean'], row['r_std'])} | {_marked(row['paper_r'], marks)} "
            f"| {fmt_pm(row['mae_mean'], row['mae_std'])} | {_marked(row['paper_mae'], marks)} "
            f"| {fmt_pm(row['acc2_has0_mean'], row['acc2_has0_std'])} "
            f"| {fmt_pm(row['acc2_non0_mean'], row['acc2_non0_std'])} "
            f"| {fmt_pm(row['f1_non0_mean'], row['f1_non0_std'])} "
            f"| {fmt_pm(row['acc7_mean'], row['acc7_std'])} | {row['n_train'] or '–'} | {row['n_test']} "
            f"| {row['n_seeds']} |"
        )
    if footnotes:
        lines += ["", PAPER_FOOTNOTES_HEADING, ""]
        lines += [f"[^{i}]: {text}" for i, text in enumerate(footnotes, 1)]
    notes = table[table["notes"].astype(str) != ""]
    for _, row in notes.iterrows():
        lines.append(f"\n*{row['experiment']}*: {row['notes']}")
    lines += findings_markdown(found)
    return "\n".join(lines) + "\n"


def build_table1(
    metric_paths: list[str],
    prediction_paths: list[str],
    experiments: Mapping[str, Mapping],
    report: Mapping[str, Any],
    finding_specs: list[Mapping[str, Any]],
    csv_path: str,
    md_path: str,
    findings_path: str,
) -> pd.DataFrame:
    """results/table1.csv + .md and results/findings.csv from the selected runs' metrics and test
    predictions (rule report_table1); ``finding_specs`` is the config's ``findings`` list,
    checked by the paired bootstrap of ``report.bootstrap``."""
    from polysent import contracts
    from polysent.io import write_csv, write_text

    names = list(experiments)
    table = table1(experiments, names, group_by_experiment(metric_paths))
    predictions = group_by_experiment(
        prediction_paths, lambda p: (parse_run_path(p)[1], contracts.read_predictions(p).to_pandas())
    )
    found = findings(predictions, finding_specs, report["bootstrap"])
    write_csv(csv_path, table)
    write_csv(findings_path, found)
    write_text(md_path, table1_markdown(table, found, paper_footnotes(experiments, names)[1]))
    return table
