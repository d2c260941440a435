"""Cross-lingual transfer matrix: generated experiment entries and their training groups, the
matrix table from synthetic run metrics, its heatmap, and the workflow's plan for
``config/transfer.yaml``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import describe_jobs, planned_jobs
from polysent.config import complete
from polysent.experiments import add_groups, training_groups, training_key, transfer_entries
from polysent.report import figures
from polysent.report.common import ReportError
from polysent.report.transfer import build_transfer_matrix, grid, transfer_markdown, transfer_matrix

LANGS = ["fr", "es", "pt", "de"]


def _transfer_cfg(**overrides) -> dict:
    return complete(overrides, "transfer")


def _metrics(name: str, seed: int, source: str, r: float, mae: float, n_train: int, n_test: int) -> dict:
    """A sentiment run's metrics.json as the train stage writes it (the keys the report reads)."""
    test = {
        "corr": r, "mae": mae, "acc2_has0": 0.6, "acc2_non0": 0.6, "f1_has0": 0.6, "f1_non0": 0.6,
        "acc7": 0.3, "n": n_test,
    }  # fmt: skip
    return {
        "experiment": name,
        "seed": seed,
        "model": "adamml_clstm",
        "task": "sentiment",
        "valid": {"corr": r, "mae": mae, "n": 10},
        "test": test,
        "data": {"n_train": n_train, "n_train_by_lang": {source: n_train}},
    }


# Per (source, target): r and MAE of seeds 1, 2, 3; train sizes per source, test sizes per target.
R = {
    (s, t): [0.1 * i + 0.01 * j + 0.02 * k for k in range(3)] for i, s in enumerate(LANGS) for j, t in enumerate(LANGS)
}
MAE = {key: [1.0 - v for v in values] for key, values in R.items()}
N_TRAIN = {"fr": 400, "es": 393, "pt": 380, "de": 410}
N_TEST = {"fr": 80, "es": 77, "pt": 71, "de": 90}


def _runs(entries: dict, seeds=(1, 2, 3)) -> dict[str, list[dict]]:
    runs = {}
    for name, entry in entries.items():
        (source,), target = list(entry["train"]), entry["eval"]
        runs[name] = [
            _metrics(name, seed, source, R[source, target][k], MAE[source, target][k], N_TRAIN[source], N_TEST[target])
            for k, seed in enumerate(seeds)
        ]
    return runs


# ----------------------------------------------------------------------------- entries and groups


def test_entries_one_per_ordered_pair_trained_once_per_source():
    entries = transfer_entries(_transfer_cfg(languages=LANGS), ["fr", "es", "pt", "de", "it"])
    assert list(entries) == [f"transfer_{s}_{t}" for s in LANGS for t in LANGS]
    fr_es = entries["transfer_fr_es"]
    assert fr_es["train"] == {"fr": 1.0} and fr_es["eval"] == "es"
    # the schema default: Table 1's AdaMML DL target 2 rows
    assert fr_es["model"] == "adamml_clstm"
    assert fr_es["variation"] == {"decision_loss": True, "target": 2, "policy_dropout": 0.25, "fusion_dropout": 0.25}
    assert fr_es["seeds"] == [1, 2, 3] and fr_es["drop_neutral"] is True
    groups = training_groups(entries, list(entries), lambda e: e["seeds"])
    # one training group per source, holding that source's four targets, every seed trained once
    assert sorted(groups) == ["transfer_de_de", "transfer_es_de", "transfer_fr_de", "transfer_pt_de"]
    assert sorted(groups["transfer_fr_de"]["members"]) == [f"transfer_fr_{t}" for t in sorted(LANGS)]
    assert all(seeds == [1, 2, 3] for g in groups.values() for seeds in g["members"].values())
    assert training_key(entries["transfer_fr_fr"]) != training_key(entries["transfer_es_fr"])


def test_entries_follow_the_config():
    cfg = _transfer_cfg(
        model="mult", variation={"modalities": ["text", "visual", "acoustic"]}, seeds=[4], drop_neutral=False
    )
    entries = transfer_entries(cfg, ["fr", "es"])  # languages null: every configured language
    assert list(entries) == ["transfer_fr_fr", "transfer_fr_es", "transfer_es_fr", "transfer_es_es"]
    assert {e["model"] for e in entries.values()} == {"mult"}
    assert entries["transfer_es_fr"]["variation"] == {"modalities": ["text", "visual", "acoustic"]}
    assert entries["transfer_es_fr"]["seeds"] == [4] and entries["transfer_es_fr"]["drop_neutral"] is False


def test_unconfigured_language_or_taken_name_is_named():
    with pytest.raises(ValueError, match=r"transfer.languages: de not configured \(languages: fr, es\)"):
        transfer_entries(_transfer_cfg(languages=["fr", "de"]), ["fr", "es"])
    with pytest.raises(ValueError, match="experiments transfer_fr_es: the names are the transfer matrix's"):
        transfer_entries(_transfer_cfg(), ["fr", "es"], taken={"transfer_fr_es": {}, "mult_t_fr_fr": {}})


def test_schema_rejects_bad_transfer_settings():
    with pytest.raises(ValueError, match="transfer.model"):
        _transfer_cfg(model="svm")
    with pytest.raises(ValueError, match="transfer.seeds"):
        _transfer_cfg(seeds=[])
    with pytest.raises(ValueError, match="transfer"):
        _transfer_cfg(langs=["fr"])


def test_groups_are_added_without_replacing_any():
    groups = {"a": {"key": "x", "members": {"a": [1]}}}
    add_groups(groups, {"b": {"key": "y", "members": {"b": [1]}}})
    assert sorted(groups) == ["a", "b"]
    with pytest.raises(ValueError, match="training group id\\(s\\) a defined twice"):
        add_groups(groups, {"a": {"key": "z", "members": {"c": [1]}}})


# ----------------------------------------------------------------------------- matrix table


def test_matrix_aggregates_seeds_per_cell():
    entries = transfer_entries(_transfer_cfg(languages=LANGS), LANGS)
    table = transfer_matrix(entries, _runs(entries), "use")
    assert len(table) == 16
    assert list(table[["source", "target"]].itertuples(index=False, name=None)) == [
        (s, t) for s in LANGS for t in LANGS
    ]
    for row in table.itertuples():
        rs, maes = R[row.source, row.target], MAE[row.source, row.target]
        assert row.r_mean == pytest.approx(np.mean(rs), abs=1e-4)
        assert row.r_std == pytest.approx(np.std(rs, ddof=1), abs=1e-4)
        assert row.mae_mean == pytest.approx(np.mean(maes), abs=1e-4)
        assert row.mae_std == pytest.approx(np.std(maes, ddof=1), abs=1e-4)
        assert row.n_train == N_TRAIN[row.source] and row.n_test == N_TEST[row.target]
        assert row.zero_shot == (row.source != row.target)
        assert row.seeds == "1 2 3" and row.n_seeds == 3 and row.notes == ""
    mean, std = grid(table, "r")
    assert list(mean.index) == LANGS and list(mean.columns) == LANGS
    assert mean.loc["pt", "es"] == pytest.approx(np.mean(R["pt", "es"]), abs=1e-4)


def test_matrix_markdown_prints_both_grids():
    entries = transfer_entries(_transfer_cfg(languages=["fr", "de"]), LANGS)
    text = transfer_markdown(transfer_matrix(entries, _runs(entries), "use"))
    r_fr_de = f"{np.mean(R['fr', 'de']):.2f} ± {np.std(R['fr', 'de'], ddof=1):.2f}"
    assert "| source \\ target | FR | DE |" in text
    assert f"| FR | {np.mean(R['fr', 'fr']):.2f} ± " in text and r_fr_de in text
    assert "## MAE (lower is better)" in text
    assert "Training segments per source: FR 400, DE 410" in text
    assert "Test segments per target: FR 80, DE 90" in text


def test_matrix_errors_name_the_cell():
    entries = transfer_entries(_transfer_cfg(languages=["fr", "es"]), LANGS)
    runs = _runs(entries)
    with pytest.raises(ReportError, match="no runs of 'transfer_es_fr' \\(es -> fr\\)"):
        transfer_matrix(entries, {k: v for k, v in runs.items() if k != "transfer_es_fr"}, "use")
    bad = json.loads(json.dumps(runs))
    bad["transfer_fr_es"][1]["test"]["n"] = 76
    with pytest.raises(ReportError, match="runs of 'transfer_fr_es' have different test sizes \\[76, 77\\]"):
        transfer_matrix(entries, bad, "use")
    bad = json.loads(json.dumps(runs))
    del bad["transfer_es_es"][0]["data"]
    with pytest.raises(ReportError, match="metrics of 'transfer_es_es' lack data.n_train_by_lang.es"):
        transfer_matrix(entries, bad, "use")


def test_undefined_r_is_noted_not_averaged():
    entries = transfer_entries(_transfer_cfg(languages=["fr"]), LANGS)
    runs = _runs(entries)
    runs["transfer_fr_fr"][0]["test"]["corr"] = None  # a constant prediction has no r
    row = transfer_matrix(entries, runs, "use").iloc[0]
    assert row["r_mean"] == pytest.approx(np.mean(R["fr", "fr"][1:]), abs=1e-4)
    assert row["notes"] == "r undefined in 1/3 seeds"


def test_build_from_run_folders(tmp_path):
    entries = transfer_entries(_transfer_cfg(languages=["es", "pt"]), LANGS)
    paths = []
    for name, metrics in _runs(entries).items():
        for m in metrics:
            path = tmp_path / "runs" / name / f"seed{m['seed']}" / "metrics.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(m))
            paths.append(str(path))
    csv, md = tmp_path / "transfer_matrix.csv", tmp_path / "transfer_matrix.md"
    table = build_transfer_matrix(sorted(paths, reverse=True), entries, "hash", str(csv), str(md))
    back = pd.read_csv(csv)
    assert list(back["experiment"]) == list(entries) == list(table["experiment"])
    assert back.loc[back["experiment"] == "transfer_pt_es", "r_mean"].item() == pytest.approx(
        np.mean(R["pt", "es"]), abs=1e-4
    )
    assert md.read_text().startswith("# Cross-lingual transfer matrix")
    assert set(back["text_encoder"]) == {"hash"} and "text encoder: hash" in md.read_text()


# ----------------------------------------------------------------------------- heatmap


def test_heatmap_is_written_deterministically(tmp_path):
    entries = transfer_entries(_transfer_cfg(languages=LANGS), LANGS)
    table = transfer_matrix(entries, _runs(entries), "use")
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    figures.transfer_heatmap(table, a, dpi=60)
    figures.build_transfer_heatmap(_to_csv(table, tmp_path / "m.csv"), {"dpi": 60}, str(b))
    assert a.read_bytes() == b.read_bytes()  # same table (through its csv), same bytes
    with Image.open(a) as image:
        width, height = image.size
    assert width > 1.8 * height  # the r and MAE panels side by side
    assert not list(tmp_path.glob("*.tmp*"))


def test_heatmap_changes_with_the_numbers_and_takes_one_seed(tmp_path):
    entries = transfer_entries(_transfer_cfg(languages=["fr", "es"], seeds=[1]), LANGS)
    table = transfer_matrix(entries, _runs(entries, seeds=(1,)), "use")
    assert table["r_std"].isna().all()  # one seed: no std, the cell prints the mean alone
    figures.transfer_heatmap(table, tmp_path / "one.png", dpi=60)
    shifted = table.assign(r_mean=-table["r_mean"])
    figures.transfer_heatmap(shifted, tmp_path / "two.png", dpi=60)
    assert (tmp_path / "one.png").read_bytes() != (tmp_path / "two.png").read_bytes()
    with pytest.raises(ReportError, match="no cells"):
        figures.transfer_heatmap(table.iloc[:0], tmp_path / "none.png")


def _to_csv(table: pd.DataFrame, path: Path) -> str:
    table.to_csv(path, index=False)
    return str(path)


# ----------------------------------------------------------------------------- workflow plan


@pytest.mark.parametrize(
    ("configfiles", "corpus_rule"),
    [
        (["config/transfer.yaml"], "corpus_demo"),
        # the same target on CMU-MOSEAS: config only (planning needs no release on disk)
        (["config/moseas.yaml", "config/transfer.yaml"], "corpus_external"),
    ],
    ids=["demo", "moseas"],
)
def test_transfer_config_plans_one_training_per_source(workflow_copy, configfiles, corpus_rule):
    jobs = planned_jobs(workflow_copy, "results/transfer_matrix.csv", "--configfile", *configfiles)
    by_rule: dict[str, list[str]] = {}
    for rule, wildcards in jobs:
        by_rule.setdefault(rule, []).append(wildcards)
    groups = ("transfer_de_de", "transfer_es_de", "transfer_fr_de", "transfer_pt_de")
    assert sorted(by_rule.get("train", [])) == [f"group={g}" for g in groups], describe_jobs(jobs)
    runs = set(by_rule["train_run"])
    assert runs == {f"exp=transfer_{s}_{t}, seed={seed}" for s in LANGS for t in LANGS for seed in (1, 2, 3)}
    assert sorted(by_rule["store"]) == [f"lang={lang}" for lang in sorted(LANGS)]
    assert len(by_rule["text"]) == 4 and len(by_rule["report_transfer_matrix"]) == 1
    # zero-shot through the shared text space: no translation, and nothing of Table 1
    assert "translate" not in by_rule and "report_table1" not in by_rule
    assert len(by_rule[corpus_rule]) == 1
