"""Which runs the report reads, and reading them.

A *run* is one experiment (an entry of ``config["experiments"]``) trained with one seed; the train
stage writes it to ``{root}/{exp}/seed{seed}/`` (``metrics.json``, ``predictions.parquet``,
``history.csv``, and for AdaMML ``decisions.parquet``). The root is the workflow's
(``workflow/rules/report.smk``); this module only composes paths below it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from polysent import contracts
from polysent.report.common import SENTIMENT_METRICS, ReportError, task_of

# ----------------------------------------------------------------------------- run selection


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
                f"report.{what}: unknown experiment '{name}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
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


def _duplicates(items: list) -> list:
    seen, dup = set(), []
    for x in items:
        if x in seen and x not in dup:
            dup.append(x)
        seen.add(x)
    return dup


def seeds_of(entry: Mapping[str, Any], report: Mapping[str, Any]) -> list[int]:
    """The seeds a selected experiment runs with: ``report.seeds`` when set, else its own."""
    seeds = report.get("seeds") or entry.get("seeds") or []
    if not seeds:
        raise ReportError(f"experiment '{entry.get('label') or '?'}' has no seeds")
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
    return [f"{run_dir(name, seed, root)}/{filename}" for name in names for seed in seeds_of(experiments[name], report)]


_RUN_PATH = re.compile(r"(?P<exp>[^/\\]+)[/\\]seed(?P<seed>\d+)[/\\][^/\\]+$")


def parse_run_path(path: str | Path) -> tuple[str, int]:
    """(experiment, seed) of a file inside ``.../{exp}/seed{seed}/``."""
    m = _RUN_PATH.search(str(path))
    if not m:
        raise ReportError(f"{path}: not inside a run folder <exp>/seed<N>/")
    return m.group("exp"), int(m.group("seed"))


# ----------------------------------------------------------------------------- loading runs


def load_metrics(path: str | Path) -> dict[str, Any]:
    """Read one run's metrics.json (its contract checked by ``contracts.read_metrics``) and
    check the keys the report uses."""
    path = Path(path)
    try:
        metrics = contracts.read_metrics(path)
    except OSError as exc:
        raise ReportError(f"{path}: cannot read metrics: {exc}") from exc
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
