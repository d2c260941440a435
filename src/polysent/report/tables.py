"""The paper's tables from the train stage's per-run results.

A *run* is one experiment (an entry of ``config["experiments"]``) trained with one seed; the train
stage writes it to ``results/runs/{exp}/seed{seed}/`` (``metrics.json``, ``predictions.parquet``,
``history.csv``, and for AdaMML ``decisions.parquet``). This module selects the runs the report
needs (``config["report"]``), and aggregates them over seeds:

- :func:`table1` — one row per experiment: mean ± std over seeds of Pearson r, MAE, Acc-2 (both
  conventions), F1, Acc-7, the training segments per language and the test size, next to the
  paper's r / MAE;
- :func:`findings` — the claims of the paper checked on that table, with the seed spread;
- :func:`table2` — emotion label counts per emotion and language (the paper's Table 2);
- :func:`emotion_table` — emotion detection precision / recall / F1 with and without
  positive-class weighting;
- :func:`modality_utilisation` — how often the AdaMML policy network keeps each modality.

Std is the sample standard deviation over seeds (ddof = 1); it is empty for a single seed.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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


class ReportError(ValueError):
    """A report input is missing, inconsistent or malformed; the message names the file or key."""


# ----------------------------------------------------------------------------- run selection


def task_of(entry: Mapping[str, Any]) -> str:
    return entry.get("task") or "sentiment"


def select(experiments: Mapping[str, Mapping], report: Mapping[str, Any], what: str) -> list[str]:
    """Experiment names of ``what`` ("table1" or "emotions"), in order.

    ``report[what]`` lists them explicitly; when it is null every experiment of the matching task
    is taken in config order. Unknown names and names of the wrong task are errors.
    """
    task = {"table1": "sentiment", "emotions": "emotion"}[what]
    chosen = report.get(what)
    if chosen is None:
        return [name for name, entry in experiments.items() if task_of(entry) == task]
    problems = []
    for name in chosen:
        if name not in experiments:
            hint = difflib.get_close_matches(name, list(experiments), n=1)
            problems.append(
                f"report.{what}: unknown experiment '{name}'"
                + (f" (did you mean '{hint[0]}'?)" if hint else "")
            )
        elif task_of(experiments[name]) != task:
            problems.append(
                f"report.{what}: experiment '{name}' is a {task_of(experiments[name])} "
                f"experiment, expected task '{task}'"
            )
    if len(set(chosen)) != len(chosen):
        problems.append(f"report.{what}: experiments listed twice: {_duplicates(chosen)}")
    if problems:
        raise ReportError("\n".join(problems))
    return list(chosen)


def seeds_of(entry: Mapping[str, Any], report: Mapping[str, Any]) -> list[int]:
    """The seeds a selected experiment runs with: ``report.seeds`` when set, else its own."""
    seeds = report.get("seeds") or entry.get("seeds") or []
    if not seeds:
        raise ReportError(f"experiment '{entry.get('label', '?')}' has no seeds")
    return [int(s) for s in seeds]


def run_dir(exp: str, seed: int, root: str) -> str:
    return f"{root}/{exp}/seed{seed}"


def run_files(
    experiments: Mapping[str, Mapping],
    names: Iterable[str],
    report: Mapping[str, Any],
    filename: str,
    root: str,
) -> list[str]:
    """``{root}/{exp}/seed{seed}/{filename}`` for every selected experiment and seed."""
    return [
        f"{run_dir(name, seed, root)}/{filename}"
        for name in names
        for seed in seeds_of(experiments[name], report)
    ]


_RUN_PATH = re.compile(r"(?P<exp>[^/\\]+)[/\\]seed(?P<seed>\d+)[/\\][^/\\]+$")


def parse_run_path(path: str | Path) -> tuple[str, int]:
    """(experiment, seed) of a file inside ``.../{exp}/seed{seed}/``."""
    m = _RUN_PATH.search(str(path))
    if not m:
        raise ReportError(f"{path}: not inside a run folder <exp>/seed<N>/")
    return m.group("exp"), int(m.group("seed"))


# ----------------------------------------------------------------------------- loading runs


def load_metrics(path: str | Path) -> dict[str, Any]:
    """Read one run's metrics.json and check the keys the report uses."""
    path = Path(path)
    try:
        metrics = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: cannot read metrics: {exc}") from exc
    missing = [k for k in ("experiment", "seed", "task", "test") if k not in metrics]
    if missing:
        raise ReportError(f"{path}: metrics.json lacks key(s) {missing}")
    exp, seed = parse_run_path(path)
    if metrics["experiment"] != exp or int(metrics["seed"]) != seed:
        raise ReportError(
            f"{path}: metrics.json says experiment={metrics['experiment']!r} "
            f"seed={metrics['seed']!r}, but lies in {exp}/seed{seed}"
        )
    test = metrics["test"]
    if metrics["task"] == "sentiment":
        lacking = [k for k in (*SENTIMENT_METRICS, "n") if k not in test]
    else:
        lacking = [k for k in ("per_label", "n") if k not in test]
    if lacking:
        raise ReportError(f"{path}: metrics.json 'test' lacks key(s) {lacking}")
    return metrics


def group_by_experiment(paths: Iterable[str | Path], loader=load_metrics) -> dict[str, list]:
    """Load every file and group the results by experiment (seeds in ascending order)."""
    grouped: dict[str, list[tuple[int, Any]]] = {}
    for path in paths:
        exp, seed = parse_run_path(path)
        grouped.setdefault(exp, []).append((seed, loader(path)))
    return {exp: [v for _, v in sorted(items, key=lambda t: t[0])] for exp, items in grouped.items()}


# ----------------------------------------------------------------------------- formatting


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
    return f"{describe_train(entry['train'], entry.get('transaug', False))} -> {entry['eval'].upper()}"


def group_of(entry: Mapping[str, Any]) -> str:
    """The block of the paper's Table 1 a row belongs to (the entry's ``group`` when set)."""
    if entry.get("group"):
        return entry["group"]
    if entry.get("nce"):
        return "NCE Loss"
    if entry["model"] == "adamml_clstm":
        return "AdaMML + Contextual LSTM"
    return "Baseline Models"


def _duplicates(items: list) -> list:
    seen, dup = set(), []
    for x in items:
        if x in seen and x not in dup:
            dup.append(x)
        seen.add(x)
    return dup


def _num(value: Any) -> float:
    """A metric value as float (JSON null / missing -> NaN)."""
    if value is None:
        return float("nan")
    return float(value)


def _mean_std(values: list[float]) -> tuple[float, float, int]:
    """Mean and sample std over the finite values, and how many values were not finite."""
    arr = np.asarray(values, dtype=float)
    finite = arr[np.isfinite(arr)]
    undefined = int(arr.size - finite.size)
    if finite.size == 0:
        return float("nan"), float("nan"), undefined
    std = float(np.std(finite, ddof=1)) if finite.size > 1 else float("nan")
    return float(np.mean(finite)), std, undefined


# ----------------------------------------------------------------------------- Table 1


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
            mean, std, undefined = _mean_std([_num(m["test"][key]) for m in metrics])
            row[f"{stem}_mean"], row[f"{stem}_std"] = mean, std
            if stem in ("r", "mae"):
                row[f"paper_{stem}"] = _num(paper.get(stem))
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


def _pm(mean: float, std: float, digits: int = 2) -> str:
    if not np.isfinite(mean):
        return "n/a"
    if not np.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _plain(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if np.isfinite(value) else "–"


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
            f"| {_pm(row['r_mean'], row['r_std'])} | {_plain(row['paper_r'])} "
            f"| {_pm(row['mae_mean'], row['mae_std'])} | {_plain(row['paper_mae'])} "
            f"| {_pm(row['acc2_has0_mean'], row['acc2_has0_std'])} "
            f"| {_pm(row['acc2_non0_mean'], row['acc2_non0_std'])} "
            f"| {_pm(row['f1_non0_mean'], row['f1_non0_std'])} "
            f"| {_pm(row['acc7_mean'], row['acc7_std'])} | {row['n_train'] or '–'} | {row['n_test']} "
            f"| {row['n_seeds']} |"
        )
    notes = table[table["notes"].astype(str) != ""]
    for _, row in notes.iterrows():
        lines.append(f"\n*{row['experiment']}*: {row['notes']}")
    if found is not None and len(found):
        lines += ["", "## Findings", ""]
        for _name, part in found.groupby("name", sort=False):
            lines.append(f"- **{part['claim'].iloc[0]}** ({part['metric'].iloc[0]})")
            checked = part[part["holds"].notna()]
            for _, f in checked.iterrows():
                verdict = "holds" if f["holds"] else "does NOT hold"
                lines.append(f"  - {f['rows']}: {verdict} — {f['detail']}")
            skipped = part[part["holds"].isna()]
            if len(skipped):
                lines.append(f"  - not checked (rows not in the Table 1 selection): {', '.join(skipped['rows'])}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- findings


def findings(table: pd.DataFrame, specs: list[Mapping[str, Any]]) -> pd.DataFrame:
    """Check the configured claims on Table 1; one output row per comparison.

    ``improvement`` is positive when the claim's direction is observed (for MAE a lower value
    counts as better); ``spread`` is the combined seed std of the two rows, so an improvement
    smaller than it is within seed noise (said in ``detail``).
    """
    by_name = table.set_index("experiment")
    rows = []
    for spec in specs:
        metric = spec.get("metric", "r")
        sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
        base = {"name": spec["name"], "claim": spec["claim"], "metric": metric}

        def stat(name: str) -> tuple[float, float]:
            return float(by_name.at[name, f"{metric}_mean"]), float(by_name.at[name, f"{metric}_std"])

        if "recovery" in spec:
            rec = spec["recovery"]
            needed = [rec["low"], rec["mid"], rec["high"]]
            label = f"{rec['mid']} between {rec['low']} and {rec['high']}"
            missing = [n for n in needed if n not in by_name.index]
            if missing:
                rows.append({**base, "kind": "recovery", "rows": label, "value": np.nan,
                             "spread": np.nan, "holds": None,
                             "detail": f"skipped: not in the Table 1 selection: {missing}"})  # fmt: skip
                continue
            (lo, lo_s), (mid, mid_s), (hi, hi_s) = (stat(n) for n in needed)
            gap = sign * (hi - lo)
            frac = sign * (mid - lo) / gap if gap > 0 else np.nan
            holds = bool(gap > 0 and frac >= 0.5)
            detail = (
                f"{metric}: low {_pm(lo, lo_s, 3)}, mid {_pm(mid, mid_s, 3)}, "
                f"high {_pm(hi, hi_s, 3)}; "
                + (f"recovered {frac:.0%} of the gap" if gap > 0 else "no gap: high is not better than low")
            )  # fmt: skip
            rows.append({**base, "kind": "recovery", "rows": label, "value": frac,
                         "spread": float(np.hypot(lo_s, hi_s)), "holds": holds, "detail": detail})  # fmt: skip
            continue
        than = spec["than"]
        for better in spec.get("better", []):
            label = f"{better} vs {than}"
            missing = [n for n in (better, than) if n not in by_name.index]
            if missing:
                rows.append({**base, "kind": "comparison", "rows": label, "value": np.nan,
                             "spread": np.nan, "holds": None,
                             "detail": f"skipped: not in the Table 1 selection: {missing}"})  # fmt: skip
                continue
            (a, a_s), (b, b_s) = stat(better), stat(than)
            improvement = sign * (a - b)
            spread = float(np.hypot(a_s, b_s))
            holds = bool(improvement > 0) if np.isfinite(improvement) else None
            detail = f"{metric} {_pm(a, a_s, 3)} vs {_pm(b, b_s, 3)}"
            if np.isfinite(spread) and np.isfinite(improvement) and abs(improvement) < spread:
                detail += " (difference within the seed spread)"
            rows.append({**base, "kind": "comparison", "rows": label, "value": improvement,
                         "spread": spread, "holds": holds, "detail": detail})  # fmt: skip
    columns = ["name", "claim", "metric", "kind", "rows", "value", "spread", "holds", "detail"]
    return pd.DataFrame(rows, columns=columns).round({"value": 4, "spread": 4})


# ----------------------------------------------------------------------------- Table 2


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


# ----------------------------------------------------------------------------- emotions


def emotion_table(
    experiments: Mapping[str, Mapping], names: list[str], runs: Mapping[str, list[dict]]
) -> pd.DataFrame:
    """Emotion detection per experiment and label: precision / recall / F1 mean ± std over seeds.

    ``f1_all_positive`` is the F1 of predicting every test segment positive (recall 1), the
    trivial operating point the paper reports for positive weighting.
    """
    rows = []
    for name in names:
        entry = experiments[name]
        metrics = runs.get(name) or []
        if not metrics:
            raise ReportError(f"emotions: no runs of experiment '{name}'")
        labels = list(entry.get("emotions") or metrics[0]["test"]["per_label"])
        for label in [*labels, "macro"]:
            row = {
                "experiment": name,
                "label": entry.get("label", name),
                "model": entry["model"],
                "train": describe_train(entry["train"], entry.get("transaug", False)),
                "eval": entry["eval"].upper(),
                "pos_weight": bool(entry.get("pos_weight", False)),
                "emotion": label,
                "n_seeds": len(metrics),
                "n_test": int(metrics[0]["test"]["n"]),
            }
            if label == "macro":
                row["n_pos"] = np.nan
                row["f1_mean"], row["f1_std"], _ = _mean_std([_num(m["test"].get("macro_f1")) for m in metrics])
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
                    row[f"{key}_mean"], row[f"{key}_std"], _ = _mean_std([_num(p[key]) for p in per])
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


# ----------------------------------------------------------------------------- AdaMML policy


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
            mean, std, _ = _mean_std(values)
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


# ----------------------------------------------------------------------------- stage entry points
# One call per Snakemake rule (scripts/report_*.py): read the inputs, build, write atomically.


def read_manifest(path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """The manifest (contract-checked) as a DataFrame, and its emotion label columns."""
    from polysent import contracts

    table = contracts.read(path, contracts.MANIFEST)
    return table.to_pandas(), contracts.label_columns(table.schema)


def build_table1(
    metric_paths: list[str],
    experiments: Mapping[str, Mapping],
    report: Mapping[str, Any],
    csv_path: str,
    md_path: str,
    findings_path: str,
) -> pd.DataFrame:
    """results/table1.csv + .md and results/findings.csv from the selected runs' metrics."""
    from polysent.io import write_csv, write_text

    runs = group_by_experiment(metric_paths)
    table = table1(experiments, list(experiments), runs)
    found = findings(table, report.get("findings") or [])
    write_csv(csv_path, table)
    write_csv(findings_path, found)
    write_text(md_path, table1_markdown(table, found))
    return table


def build_table2(manifest_path: str, report: Mapping[str, Any], csv_path: str) -> pd.DataFrame:
    from polysent.io import write_csv

    manifest, labels = read_manifest(manifest_path)
    table = table2(manifest, labels, float(report.get("emotion_threshold", 0.5)))
    write_csv(csv_path, table)
    return table


def build_emotions(
    metric_paths: list[str], experiments: Mapping[str, Mapping], csv_path: str
) -> pd.DataFrame:
    from polysent.io import write_csv

    table = emotion_table(experiments, list(experiments), group_by_experiment(metric_paths))
    write_csv(csv_path, table)
    return table
