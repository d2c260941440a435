"""Report stage through Snakemake: the report rules on synthetic runs, and the tiny DAG end to end.

``test_report_rules_on_synthetic_runs`` runs only the report rules (``--allowed-rules``) on run
folders of the train stage's exact shape, so it checks the rules, their inputs/outputs, the
``report()`` registration and ``snakemake --report`` without training anything. The ``tiny_run``
tests check the same artifacts from the real DAG on ``config/tiny.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import snakemake
from test_report import EXPERIMENTS, write_synthetic_manifest, write_synthetic_runs

REPO = Path(__file__).resolve().parents[1]
TINY_REPORT = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())["report"]
REPORT_RULES = [
    "report_table1",
    "report_table2",
    "report_emotions",
    "report_label_distribution",
    "report_modality_utilisation",
    "report_learning_curves",
    "report_scatter",
]
TABLES = ["results/table1.csv", "results/table1.md", "results/findings.csv", "results/table2.csv",
          "results/emotions.csv", "results/modality_utilisation.csv"]  # fmt: skip
FIGURES = [
    "results/figures/label_distribution.png",
    "results/figures/modality_utilisation.png",
    "results/figures/learning_curves.png",
    "results/figures/scatter.png",
]


def _check_report_outputs(wf: Path) -> None:
    for path in TABLES + FIGURES:
        assert (wf / path).stat().st_size > 0, path
    for path in FIGURES:
        assert (wf / path).read_bytes()[:4] == b"\x89PNG", path
    table1 = pd.read_csv(wf / "results/table1.csv")
    assert list(table1["experiment"]) == TINY_REPORT["table1"]
    assert (table1["n_seeds"] == len(TINY_REPORT["seeds"])).all()
    assert table1[["r_mean", "mae_mean", "acc2_has0_mean", "acc2_non0_mean", "acc7_mean"]].notna().all().all()
    paper = table1.set_index("experiment")["paper_r"]
    # mult_t_fr_fr is the text-only transformer (not in the paper); the paper's "MulT T" is mult_lonly_fr_fr
    assert paper["adamml_dl2_es_es"] == 0.28 and pd.isna(paper["mult_t_fr_fr"]) and pd.isna(paper["mult_a_fr_fr"])
    emotions = pd.read_csv(wf / "results/emotions.csv")
    assert set(emotions["experiment"]) == set(TINY_REPORT["emotions"])
    assert {"confident", "happiness", "relaxed", "macro"} <= set(emotions["emotion"])
    findings = pd.read_csv(wf / "results/findings.csv")
    assert set(findings["name"]) >= {"text_beats_audio", "zero_shot_gap", "few_shot_recovery"}
    util = pd.read_csv(wf / "results/modality_utilisation.csv")
    assert set(util["experiment"]) == {n for n in TINY_REPORT["table1"] if n.startswith("adamml")}
    table2 = pd.read_csv(wf / "results/table2.csv")
    assert {"emotion", "lang", "negative", "positive", "paper_positive"} <= set(table2.columns)


def test_report_rules_on_synthetic_runs(workflow_copy):
    wf = workflow_copy
    names = TINY_REPORT["table1"] + TINY_REPORT["emotions"]
    write_synthetic_runs(wf, {n: EXPERIMENTS[n] for n in names}, TINY_REPORT["seeds"])
    write_synthetic_manifest(wf / "results" / "corpus" / "manifest.parquet")
    # Targets first: --configfile and --allowed-rules take every following word as a value.
    # experiments.yaml is named explicitly so that this test does not depend on the Snakefile.
    configs = ["--configfile", "config/experiments.yaml", "config/tiny.yaml"]
    args = [*TABLES, *FIGURES, *configs, "--allowed-rules", *REPORT_RULES]
    snakemake(wf, "--cores", "2", *args)
    _check_report_outputs(wf)
    # Nothing left to do: a second run is a no-op.
    again = snakemake(wf, "--cores", "2", "-n", *args)
    assert "Nothing to be done" in again.stdout + again.stderr
    snakemake(wf, "--cores", "1", "--report", "results/report.html", *args)
    html = (wf / "results" / "report.html").read_text(errors="replace")
    assert len(html) > 100_000 and "polysent" in html


@pytest.mark.workflow
def test_tiny_dag_builds_every_report_artifact(tiny_run):
    _check_report_outputs(tiny_run)


@pytest.mark.workflow
def test_report_html_from_the_tiny_run(tiny_run):
    snakemake(tiny_run, "--cores", "1", "--configfile", "config/tiny.yaml", "--report", "results/report.html")
    assert (tiny_run / "results" / "report.html").stat().st_size > 100_000
