"""Report stage: run selection, Table 1 / findings / Table 2 / emotions aggregation, figures.

The runs are synthetic files of exactly the train stage's shape (metrics.json, predictions.parquet,
history.csv, decisions.parquet), written by :func:`write_synthetic_runs`, so these tests do not
depend on training.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from polysent import contracts
from polysent.config import validate_config
from polysent.io import write_parquet
from polysent.report import figures
from polysent.report.common import ReportError, describe_train, read_manifest, task_of
from polysent.report.emotions import emotion_table
from polysent.report.runs import group_by_experiment, load_metrics, parse_run_path, run_files, seeds_of, select
from polysent.report.table1 import build_table1, paper_footnotes, table1, table1_markdown
from polysent.report.table2 import table2
from polysent.report.utilisation import modality_utilisation

REPO = Path(__file__).resolve().parents[1]
SCHEMA_DIR = REPO / "workflow" / "schemas"
EXPERIMENTS = yaml.safe_load((REPO / "config" / "experiments.yaml").read_text())["experiments"]

# The paper's Table 1 (label, train, eval) -> (r, MAE), transcribed independently of the config.
PAPER_TABLE1 = {
    ("multilogue", "FR", "FR"): (0.35, 0.50),
    ("multilogue", "FR", "ES"): (0.28, 0.83),
    ("multilogue", "FR + ES", "FR"): (0.48, 0.46),
    ("multilogue", "FR + ES", "ES"): (0.54, 0.55),
    ("mctn", "FR", "FR"): (0.35, 0.53),
    ("mult", "FR", "FR"): (0.12, 0.62),
    ("adamml_nodl", "FR", "FR"): (0.38, 0.54),
    ("adamml_dl2", "FR", "FR"): (0.31, 0.53),
    ("adamml_dl2", "ES", "ES"): (0.28, 0.57),
    ("adamml_dl2", "FR", "ES"): (0.23, 0.60),
    # "FR + 13% ES" / "FR + 1% ES": §7.3 gives them as 230 and 30 labelled Spanish segments
    ("adamml_dl2", "FR + 230 seg. ES", "ES"): (0.27, 0.53),
    ("adamml_dl2", "FR + 30 seg. ES", "ES"): (0.28, 0.56),
    ("cross_tv", "FR + TransAug", "FR"): (0.40, 0.49),
    ("cross_tv", "FR + TransAug", "ES"): (0.32, 0.75),
    ("inter_tv", "FR + TransAug", "FR"): (0.34, 0.52),
    ("inter_tv", "FR + TransAug", "ES"): (0.30, 0.84),
    ("cross_tv+cross_ta", "FR + TransAug", "FR"): (0.39, 0.49),
    ("cross_tv+cross_ta", "FR + TransAug", "ES"): (0.33, 0.77),
}


def _kind(entry: dict) -> str:
    if entry.get("nce"):
        return "+".join(entry["nce"])
    if entry["model"] == "adamml_clstm":
        return "adamml_dl2" if entry["variation"].get("decision_loss") else "adamml_nodl"
    return entry["model"]


# ----------------------------------------------------------------------------- synthetic runs


def _sentiment_metrics(y: np.ndarray, p: np.ndarray) -> dict:
    non0 = y != 0
    r = float(np.corrcoef(y, p)[0, 1]) if np.std(p) > 0 else None
    return {
        "mae": float(np.mean(np.abs(y - p))),
        "corr": r,
        "acc2_has0": float(np.mean((y >= 0) == (p >= 0))),
        "acc2_non0": float(np.mean((y[non0] > 0) == (p[non0] > 0))),
        "f1_has0": float(np.mean((y >= 0) == (p >= 0))),
        "f1_non0": float(np.mean((y[non0] > 0) == (p[non0] > 0))),
        "acc5": float(np.mean(np.round(np.clip(y, -2, 2)) == np.round(np.clip(p, -2, 2)))),
        "acc7": float(np.mean(np.round(np.clip(y, -3, 3)) == np.round(np.clip(p, -3, 3)))),
        "n": int(len(y)),
    }


def write_synthetic_runs(
    root: Path, experiments: dict, seeds: list[int], skill: dict | None = None, n: int = 40
) -> list[Path]:
    """Write ``root/results/runs/{exp}/seed{seed}/`` for every experiment, as the train stage does.

    ``skill[exp]`` scales how much the prediction follows the truth (default 0.5); predictions of
    a skill of exactly 0 are constant (undefined r).
    """
    skill = skill or {}
    written = []
    for exp, entry in experiments.items():
        for seed in seeds:
            rng = np.random.default_rng([seed, len(exp)])
            # the labels of a test split are the eval language's, whatever the row or seed
            y_rng = np.random.default_rng([ord(c) for c in entry["eval"]])
            run = root / "results" / "runs" / exp / f"seed{seed}"
            run.mkdir(parents=True, exist_ok=True)
            ids = [f"{entry['eval']}_{i:03d}" for i in range(n)]
            task = entry.get("task", "sentiment")
            preds = {"segment_id": ids, "lang": [entry["eval"]] * n, "split": ["test"] * n}
            if task == "sentiment":
                y = np.round(y_rng.uniform(-3, 3, n) * 3) / 3
                k = skill.get(exp, 0.5)
                p = k * y + rng.normal(0, 0.6, n) if k else np.full(n, 0.2)
                test = _sentiment_metrics(y, p)
                preds.update(y_true=y.astype("float32"), y_pred=p.astype("float32"))
            else:
                per_label = {}
                for label in entry["emotions"]:
                    truth = rng.random(n) < 0.3
                    prob = np.clip(truth * 0.3 + rng.random(n) * 0.7, 0, 1)
                    hat = prob > 0.5
                    tp = int(np.sum(hat & truth))
                    precision = tp / max(int(hat.sum()), 1)
                    recall = tp / max(int(truth.sum()), 1)
                    f1 = 2 * precision * recall / max(precision + recall, 1e-9)
                    per_label[label] = {"precision": precision, "recall": recall, "f1": f1,
                                        "n_pos": int(truth.sum())}  # fmt: skip
                    preds[f"true_{label}"] = truth.astype("float32")
                    preds[f"prob_{label}"] = prob.astype("float32")
                macro = float(np.mean([v["f1"] for v in per_label.values()]))
                test = {"per_label": per_label, "macro_f1": macro, "n": n}
            epochs = 6
            metrics = {
                "experiment": exp, "seed": seed, "model": entry["model"], "task": task,
                "train_langs": sorted(entry["train"]), "eval_lang": entry["eval"], "best_epoch": 3,
                "selection": "valid_loss", "n_params": 1234, "valid": {"n": n // 2}, "test": test,
            }  # fmt: skip
            (run / "metrics.json").write_text(json.dumps(metrics))
            pd.DataFrame(preds).to_parquet(run / "predictions.parquet")
            loss = 1.5 / np.arange(1, epochs + 1)
            pd.DataFrame(
                {
                    "epoch": np.arange(1, epochs + 1),
                    "train_loss": loss,
                    "valid_loss": loss + 0.2,
                    "valid_mae": loss + 0.1,
                    "lr": 1e-3,
                }  # fmt: skip
            ).to_csv(run / "history.csv", index=False)
            if entry["model"] == "adamml_clstm":
                rows = []
                for i in ids:
                    for w in range(3):
                        for m in ("text", "visual", "acoustic"):
                            prob = 0.9 if m != "acoustic" else 0.25
                            rows.append((i, "test", w, m, int(rng.random() < prob), prob))
                dec = pd.DataFrame(rows, columns=["segment_id", "split", "window", "modality", "selected", "prob"])
                # the dtypes the trainer writes (contracts.DECISIONS), read back through its reader
                dec = dec.astype({"window": "int32", "selected": "int8", "prob": "float32"})
                dec.to_parquet(run / "decisions.parquet")
            written.append(run)
    return written


def write_synthetic_manifest(path: Path, n_per_lang: int = 60) -> pd.DataFrame:
    """A contract-valid manifest with two emotion label columns."""
    rng = np.random.default_rng(0)
    rows = []
    for lang in ("fr", "es"):
        for i in range(n_per_lang):
            rows.append({
                "segment_id": f"{lang}_v{i // 4}_{i}", "video_id": f"{lang}_v{i // 4}", "lang": lang,
                "split": ("train", "valid", "test")[i % 3], "start": 0.0, "end": 2.0,
                "transcript": "texto", "sentiment": float(np.round(rng.normal(0.3, 1.0) * 3) / 3),
                "video_path": "v.mp4", "audio_path": "a.wav", "shard": 0,
                "happiness": float(rng.random() < 0.2), "relaxed": float(rng.random() < 0.5),
            })  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["sentiment"] = frame["sentiment"].clip(-3, 3)
    schema = contracts.manifest_schema(["happiness", "relaxed"])
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    write_parquet(path, contracts.check(table, contracts.MANIFEST, str(path)))
    return frame


def _metric_paths(root: Path, names: list[str], seeds: list[int]) -> list[str]:
    report = {"seeds": seeds}
    return [str(root / p) for p in run_files(EXPERIMENTS, names, report, "metrics.json", "results/runs")]


# ----------------------------------------------------------------------------- the matrix


def test_experiments_cover_every_row_of_the_papers_table1():
    found = {}
    for name, entry in EXPERIMENTS.items():
        if task_of(entry) != "sentiment" or not entry.get("paper"):
            continue
        key = (_kind(entry), describe_train(entry["train"], entry.get("transaug", False)),
               entry["eval"].upper())  # fmt: skip
        assert key not in found, f"{name} duplicates {found[key]}"
        found[key] = name
        assert (entry["paper"]["r"], entry["paper"]["mae"]) == PAPER_TABLE1[key], name
    assert set(found) == set(PAPER_TABLE1)


def test_paper_kept_neutrals_only_for_multilogue_and_nce_rows():
    for name, entry in EXPERIMENTS.items():
        if task_of(entry) != "sentiment":
            continue
        expected_kept = entry["model"] == "multilogue"
        assert entry["drop_neutral"] is not expected_kept, name
        if entry.get("paper"):  # the paper's rows; the TransAug-only control and the two-stream ablation are not
            assert entry.get("transaug", False) == bool(entry.get("nce")), name


def test_default_and_tiny_report_configs_validate_and_select_existing_rows():
    for cfg_name in ("config.yaml", "tiny.yaml"):
        cfg = yaml.safe_load((REPO / "config" / cfg_name).read_text())
        report = validate_config({"languages": ["fr", "es"], "report": cfg["report"]}, SCHEMA_DIR)["report"]
        t1 = select(EXPERIMENTS, report, "table1")
        emo = select(EXPERIMENTS, report, "emotions")
        assert t1 and emo
        for name in t1 + emo:
            assert seeds_of(EXPERIMENTS[name], report)
    tiny = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())["report"]
    assert 2 <= len(tiny["table1"]) <= 4 and len(tiny["emotions"]) == 1 and len(tiny["seeds"]) == 2
    # The configured findings validate and name rows that exist.
    specs = yaml.safe_load((REPO / "config" / "experiments.yaml").read_text())["findings"]
    validate_config({"languages": ["fr"], "findings": copy.deepcopy(specs)}, SCHEMA_DIR)
    assert {s["name"] for s in specs} >= {"text_beats_audio", "zero_shot_gap", "few_shot_recovery"}
    for spec in specs:
        names = spec.get("better", []) + [spec.get("than")] + list(spec.get("recovery", {}).values())
        assert all(n in EXPERIMENTS for n in names if n), spec["name"]


def test_experiment_matrix_validates_against_the_experiments_schema():
    cfg = validate_config({"languages": ["fr", "es"], "experiments": copy.deepcopy(EXPERIMENTS)}, SCHEMA_DIR)
    assert set(cfg["experiments"]) == set(EXPERIMENTS)
    emotion = cfg["experiments"]["emotions_mctn_posweight_fr"]
    assert emotion["emotions"] == ["confident", "happiness", "relaxed"] and emotion["pos_weight"]


def test_select_defaults_to_all_of_the_task_in_config_order():
    t1 = select(EXPERIMENTS, {"table1": None}, "table1")
    assert t1 == [n for n, e in EXPERIMENTS.items() if task_of(e) == "sentiment"]
    emo = select(EXPERIMENTS, {}, "emotions")
    assert emo and all(EXPERIMENTS[n]["task"] == "emotion" for n in emo)


def test_select_rejects_unknown_and_wrong_task_names_with_hints():
    with pytest.raises(ReportError, match="did you mean 'mult_t_fr_fr'"):
        select(EXPERIMENTS, {"table1": ["mult_t_fr_frr"]}, "table1")
    with pytest.raises(ReportError, match="emotion experiment"):
        select(EXPERIMENTS, {"table1": ["emotions_mctn_fr"]}, "table1")
    with pytest.raises(ReportError, match="listed twice"):
        select(EXPERIMENTS, {"table1": ["mult_t_fr_fr", "mult_t_fr_fr"]}, "table1")


def test_run_files_use_report_seed_override():
    entry = {"seeds": [1, 2, 3]}
    assert seeds_of(entry, {"seeds": None}) == [1, 2, 3]
    assert run_files({"e": entry}, ["e"], {"seeds": [5]}, "metrics.json", "results/runs") == [
        "results/runs/e/seed5/metrics.json"
    ]
    assert parse_run_path("x/results/runs/e_1/seed12/history.csv") == ("e_1", 12)


@pytest.mark.parametrize(
    "train,transaug,text",
    [
        ({"fr": 1.0}, False, "FR"),
        ({"fr": 1.0, "es": 1.0}, False, "FR + ES"),
        ({"fr": 1.0, "es": 0.13}, False, "FR + 13% ES"),
        ({"fr": 1.0, "es": 0.01}, False, "FR + 1% ES"),
        ({"fr": 1.0, "es": {"count": 230, "unit": "segments"}}, False, "FR + 230 seg. ES"),
        ({"fr": 1.0, "es": {"count": 3, "unit": "videos"}}, False, "FR + 3 videos ES"),
        ({"fr": 1.0, "es": {"fraction": 0.13, "unit": "videos"}}, False, "FR + 13% videos ES"),
        ({"fr": {"fraction": 1.0}}, False, "FR"),
        ({"fr": 1}, True, "FR + TransAug"),
    ],
)
def test_describe_train(train, transaug, text):
    assert describe_train(train, transaug) == text


# ----------------------------------------------------------------------------- Table 1, findings


def test_table1_aggregates_over_seeds(tmp_path):
    names = ["mult_lonly_fr_fr", "mult_a_fr_fr", "adamml_dl2_fr13es_es"]
    exps = {n: EXPERIMENTS[n] for n in names}
    write_synthetic_runs(tmp_path, exps, [1, 2, 3], skill={"mult_a_fr_fr": 0})
    runs = group_by_experiment(_metric_paths(tmp_path, names, [1, 2, 3]))
    table = table1(exps, names, runs)
    assert list(table["experiment"]) == names
    row = table.set_index("experiment").loc["mult_lonly_fr_fr"]
    maes = [m["test"]["mae"] for m in runs["mult_lonly_fr_fr"]]
    rs = [m["test"]["corr"] for m in runs["mult_lonly_fr_fr"]]
    assert row["mae_mean"] == pytest.approx(np.mean(maes), abs=1e-4)
    assert row["r_std"] == pytest.approx(np.std(rs, ddof=1), abs=1e-4)
    assert (row["paper_r"], row["paper_mae"], row["n_test"], row["seeds"]) == (0.12, 0.62, 40, "1 2 3")
    few = table.set_index("experiment").loc["adamml_dl2_fr13es_es"]
    assert (few["train"], few["eval"], few["group"]) == ("FR + 230 seg. ES", "ES", "AdaMML + Contextual LSTM")
    # Constant predictions: r is undefined and said so, not averaged as 0.
    audio = table.set_index("experiment").loc["mult_a_fr_fr"]
    assert np.isnan(audio["r_mean"]) and "r undefined in 3/3 seeds" in audio["notes"]
    assert not audio["in_paper"] and np.isnan(audio["paper_r"])
    md = table1_markdown(table)
    assert "| MulT T | FR | FR | dropped |" in md and "±" in md


PAPER_REPO_FILE = re.compile(r"^(multilogue|mctn_adamml|models|data)/[\w.-]+\.(py|ipynb)")


def test_paper_entries_state_protocol_and_cited_defects():
    """The paper's Multilogue-Net and NCE rows were selected on the test split, its NCE loss lacks
    the MIL-NCE numerator sum and its "inter" run contrasts audio with video (review 2026-12)."""
    for name, entry in EXPERIMENTS.items():
        paper = entry.get("paper")
        if not paper:
            continue
        defects = paper.get("defects") or []
        expected = "test-selected" if entry["model"] == "multilogue" else "unknown"
        assert paper["protocol"] == expected, name
        for defect in defects:
            assert defect["what"] and PAPER_REPO_FILE.match(defect["source"]), (name, defect)
        text = " ".join(d["what"] for d in defects)
        assert ("test split" in text) == (paper["protocol"] == "test-selected"), name
        assert ("numerator" in text) == bool(entry.get("nce")), name
        assert ("audio with video" in text) == ("inter_tv" in entry.get("nce", [])), name


def test_paper_defects_need_a_source():
    broken = copy.deepcopy(EXPERIMENTS["mctn_ta_fr_fr"])
    broken["paper"]["defects"] = [{"what": "something"}]
    with pytest.raises(ValueError, match=r"experiments\.mctn_ta_fr_fr\.paper\.defects\.0: 'source'"):
        validate_config({"languages": ["fr"], "experiments": {"mctn_ta_fr_fr": broken}}, SCHEMA_DIR)
    broken["paper"] = {"r": 0.3, "mae": 0.5, "protocol": "best-guess"}
    with pytest.raises(ValueError, match="paper.protocol"):
        validate_config({"languages": ["fr"], "experiments": {"mctn_ta_fr_fr": broken}}, SCHEMA_DIR)


def test_table1_footnotes_the_papers_values(tmp_path):
    names = ["nce_inter_tv_fr", "multilogue_fr_fr", "mctn_ta_fr_fr", "mult_a_fr_fr", "nce_cross_tv_es"]
    exps = {n: EXPERIMENTS[n] for n in names}
    write_synthetic_runs(tmp_path, exps, [1])
    table = table1(exps, names, group_by_experiment(_metric_paths(tmp_path, names, [1])))
    numbers, texts = paper_footnotes(exps, names)
    # numbered in order of first use; a defect shared by rows keeps its number
    assert numbers == {"nce_inter_tv_fr": [1, 2, 3, 4], "multilogue_fr_fr": [1, 5], "mctn_ta_fr_fr": [6],
                       "mult_a_fr_fr": [], "nce_cross_tv_es": [1, 2, 3, 7]}  # fmt: skip
    assert "test split" in texts[0] and "numerator" in texts[1] and "two-text-stream" in texts[2]
    assert "audio with video" in texts[3] and "193-d" in texts[4] and "2 ln 2" in texts[6]
    assert "protocol unknown" in texts[5] and "multilogue/train_regression.py" in texts[0]
    rows = table.set_index("experiment")
    assert rows.loc["nce_inter_tv_fr", "paper_footnotes"] == "1 2 3 4"
    assert rows.loc["nce_inter_tv_fr", "paper_protocol"] == "test-selected"
    assert rows.loc["mctn_ta_fr_fr", "paper_protocol"] == "unknown"
    assert (rows.loc["mult_a_fr_fr", "paper_protocol"], rows.loc["mult_a_fr_fr", "paper_footnotes"]) == ("", "")
    # a csv row carries its own footnote texts (the HTML report shows the csv)
    assert rows.loc["multilogue_fr_fr", "paper_footnote_text"] == f"[1] {texts[0]} [5] {texts[4]}"
    md = table1_markdown(table, footnotes=texts)
    assert "| 0.34[^1][^2][^3][^4] |" in md and "| 0.52[^1][^2][^3][^4] |" in md and "| 0.35[^6] |" in md
    body, notes = md.split("Footnotes on the paper's values")
    assert [f"[^{i}]: {t}" for i, t in enumerate(texts, 1)] == [x for x in notes.split("\n") if x.startswith("[^")]
    audio = next(line for line in body.splitlines() if "MulT A (audio only)" in line)
    assert "[^" not in audio and "| – |" in audio  # not in the paper: no value, no footnote


def test_table1_n_train_column_counts_training_segments_per_language(tmp_path):
    names = ["adamml_dl2_fr13es_es", "mult_a_fr_fr"]
    exps = {n: EXPERIMENTS[n] for n in names}
    paths = _metric_paths(tmp_path, names, [1, 2])
    write_synthetic_runs(tmp_path, exps, [1, 2])
    counts = {
        "adamml_dl2_fr13es_es": [{"fr": 1745, "es": 230}, {"fr": 1745, "es": 230}],
        "mult_a_fr_fr": [{"fr": 1745}, {"fr": 1702}],
    }  # a subset redrawn per seed shows a range
    for path in paths:
        exp, seed = parse_run_path(path)
        metrics = json.loads(Path(path).read_text())
        metrics["data"] = {"n_train_by_lang": counts[exp][seed - 1]}
        if exp == "mult_a_fr_fr":
            metrics["warnings"] = ["train.fr: count 2000 exceeds the 1745 training segments left after filtering"]
        Path(path).write_text(json.dumps(metrics))
    table = table1(exps, names, group_by_experiment(paths)).set_index("experiment")
    assert "count 2000 exceeds the 1745" in table.loc["mult_a_fr_fr", "notes"]
    assert table.loc["adamml_dl2_fr13es_es", "notes"] == ""
    assert table.loc["adamml_dl2_fr13es_es", "n_train"] == "FR 1745 + ES 230"
    assert table.loc["mult_a_fr_fr", "n_train"] == "FR 1702-1745"
    assert "| n train | n test |" in table1_markdown(table.reset_index())
    assert "| FR 1745 + ES 230 | 40 |" in table1_markdown(table.reset_index())


def test_table1_single_seed_has_empty_std(tmp_path):
    exps = {"mult_t_fr_fr": EXPERIMENTS["mult_t_fr_fr"]}
    write_synthetic_runs(tmp_path, exps, [4])
    runs = group_by_experiment(_metric_paths(tmp_path, ["mult_t_fr_fr"], [4]))
    table = table1(exps, ["mult_t_fr_fr"], runs)
    assert np.isnan(table.loc[0, "r_std"]) and np.isfinite(table.loc[0, "r_mean"])


def test_metrics_that_disagree_with_their_folder_or_lack_keys_are_named(tmp_path):
    exps = {"mult_t_fr_fr": EXPERIMENTS["mult_t_fr_fr"]}
    (run,) = write_synthetic_runs(tmp_path, exps, [1])
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, "seed": 9}))
    with pytest.raises(ReportError, match="seed1.*|lies in mult_t_fr_fr/seed1"):
        load_metrics(run / "metrics.json")
    del metrics["test"]["acc7"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(ReportError, match=r"metrics.json 'test' lacks key\(s\) \['acc7'\]"):
        load_metrics(run / "metrics.json")


# ----------------------------------------------------------------------------- Table 2, emotions


def test_table2_counts_per_emotion_and_language(tmp_path):
    path = tmp_path / "manifest.parquet"
    frame = write_synthetic_manifest(path)
    manifest, labels = read_manifest(path)
    assert labels == ["happiness", "relaxed"]
    table = table2(manifest, labels, threshold=0.5).set_index(["emotion", "lang"])
    for lang in ("fr", "es"):
        part = frame[frame["lang"] == lang]
        assert table.loc[("happiness", lang), "positive"] == int((part["happiness"] > 0.5).sum())
        assert table.loc[("happiness", lang), "negative"] == int((part["happiness"] <= 0.5).sum())
    assert table.loc[("relaxed", "all"), "positive"] == int((frame["relaxed"] > 0.5).sum())
    assert table.loc[("relaxed", "all"), "paper_positive"] == 5442
    # Missing labels are counted as missing, not negative.
    manifest.loc[:4, "happiness"] = np.nan
    again = table2(manifest, labels).set_index(["emotion", "lang"])
    assert again.loc[("happiness", "all"), "missing"] == 5
    assert again.loc[("happiness", "all"), ["negative", "positive", "missing"]].sum() == len(frame)


def test_emotion_table_with_and_without_positive_weighting(tmp_path):
    names = ["emotions_mctn_fr", "emotions_mctn_posweight_fr"]
    exps = {n: EXPERIMENTS[n] for n in names}
    write_synthetic_runs(tmp_path, exps, [1, 2])
    runs = group_by_experiment(_metric_paths(tmp_path, names, [1, 2]))
    table = emotion_table(exps, names, runs)
    assert len(table) == 2 * 4  # three emotions + macro per experiment
    assert set(table["pos_weight"]) == {True, False}
    row = table[(table["experiment"] == names[0]) & (table["emotion"] == "happiness")].iloc[0]
    f1s = [m["test"]["per_label"]["happiness"]["f1"] for m in runs[names[0]]]
    assert row["f1_mean"] == pytest.approx(np.mean(f1s), abs=1e-4)
    p = row["n_pos"] / row["n_test"]
    assert row["f1_all_positive"] == pytest.approx(2 * p / (1 + p), abs=1e-4)


# ----------------------------------------------------------------------------- AdaMML, figures


def test_modality_utilisation_rates():
    rows = []
    for seg in ("a", "b"):
        for w in range(2):
            # argmax-like decisions: visual kept at w 0 with probability 0.6, dropped at w 1 (0.4)
            rows += [(seg, "test", w, "text", 1, 0.9), (seg, "test", w, "visual", int(w == 0), 0.6 - 0.2 * w),
                     (seg, "test", w, "acoustic", 0, 0.1), (seg, "valid", w, "acoustic", 1, 0.95)]  # fmt: skip
    dec = pd.DataFrame(rows, columns=["segment_id", "split", "window", "modality", "selected", "prob"])
    util = modality_utilisation({"adamml_dl2_fr_es": [dec, dec]}, EXPERIMENTS)
    got = util.set_index(["measure", "key"])["mean"]
    assert got[("hard_rate", "text")] == 1.0 and got[("hard_rate", "visual")] == 0.5
    assert got[("hard_rate", "acoustic")] == 0.0  # the valid split is not counted
    # the expected rate is the mean policy probability, not the share of hard decisions
    assert got[("expected_rate", "text")] == pytest.approx(0.9)
    assert got[("expected_rate", "visual")] == pytest.approx(0.5)
    assert got[("expected_rate", "acoustic")] == pytest.approx(0.1)
    assert got[("n_selected", "2")] == 0.5 and got[("n_selected", "1")] == 0.5
    assert got[("n_selected", "3")] == 0.0
    assert set(util["measure"]) == {"hard_rate", "expected_rate", "n_selected"}
    assert set(util["setting"]) == {"FR -> ES"}
    # seeds that disagree give a spread
    other = dec.assign(prob=dec["prob"] / 2)
    spread = modality_utilisation({"adamml_dl2_fr_es": [dec, other]}, EXPERIMENTS)
    text = spread.set_index(["measure", "key"]).loc[("expected_rate", "text")]
    assert text["mean"] == pytest.approx(0.675) and text["std"] == pytest.approx(np.std([0.9, 0.45], ddof=1), abs=1e-4)
    for broken, match in [(dec.drop(columns="window"), "lack column"), (dec.drop(columns="prob"), "lack column"),
                          (dec.assign(prob=1.5), "outside")]:  # fmt: skip
        with pytest.raises(ReportError, match=match):
            modality_utilisation({"adamml_dl2_fr_es": [broken]}, EXPERIMENTS)


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_figures_are_written_deterministically(tmp_path):
    names = ["mult_t_fr_fr", "adamml_dl2_fr_es", "adamml_dl2_es_es"]
    exps = {n: EXPERIMENTS[n] for n in names}
    write_synthetic_runs(tmp_path, exps, [1, 2])
    manifest_path = tmp_path / "manifest.parquet"
    frame = write_synthetic_manifest(manifest_path)
    out = tmp_path / "fig"
    report = {"seeds": [1, 2], "dpi": 60, "neutral_band": 0.5}

    counts = figures.build_label_distribution(str(manifest_path), report, str(out / "labels.png"))
    fr = frame[frame["lang"] == "fr"]["sentiment"]
    assert counts[counts["lang"] == "fr"]["count"].sum() == len(fr)
    assert counts.set_index(["lang", "bin_centre"]).loc[("fr", 0.0), "count"] == int((fr.abs() < 1 / 6).sum())

    def paths(filename, which=names):
        return [str(tmp_path / p) for p in run_files(EXPERIMENTS, which, report, filename, "results/runs")]

    adamml = {n: exps[n] for n in names[1:]}
    util = figures.build_modality_utilisation(
        paths("decisions.parquet", names[1:]), adamml, report, str(out / "util.png"), str(out / "util.csv")
    )
    assert list(dict.fromkeys(util["experiment"])) == names[1:]
    written = pd.read_csv(out / "util.csv").set_index(["experiment", "measure", "key"])["mean"]
    assert written[(names[1], "expected_rate", "acoustic")] == pytest.approx(0.25)
    assert written[(names[1], "hard_rate", "text")] == pytest.approx(0.9, abs=0.1)
    figures.build_learning_curves(paths("history.csv"), paths("metrics.json"), exps, report,
                                  str(out / "curves.png"))  # fmt: skip
    report = validate_config({"languages": ["fr", "es"], "report": report}, SCHEMA_DIR)["report"]
    specs = [{"name": "f", "claim": "c", "metric": "r", "better": ["adamml_dl2_es_es"], "than": "adamml_dl2_fr_es"},
             {"name": "g", "claim": "d", "metric": "mae", "better": ["mult_t_fr_fr"], "than": "mult_a_fr_fr"}]  # fmt: skip
    table = build_table1(paths("metrics.json"), paths("predictions.parquet"), exps, report, specs,
                         str(out / "t1.csv"), str(out / "t1.md"), str(out / "f.csv"))  # fmt: skip
    found = pd.read_csv(out / "f.csv")
    assert found["verdict"].tolist()[1] == "skipped" and np.isfinite(found.loc[0, ["ci_low", "ci_high"]]).all()
    assert "## Findings" in (out / "t1.md").read_text()
    assert len(table) == 3
    figures.build_scatter(paths("predictions.parquet"), str(out / "t1.csv"), report, str(out / "sc.png"))
    first = {}
    for name in ("labels.png", "util.png", "curves.png", "sc.png"):
        assert _is_png(out / name), name
        first[name] = (out / name).read_bytes()
    figures.build_label_distribution(str(manifest_path), report, str(out / "labels.png"))
    assert (out / "labels.png").read_bytes() == first["labels.png"]
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_figure_inputs_with_wrong_columns_are_named(tmp_path):
    hist = pd.DataFrame({"epoch": [1], "loss": [1.0]})
    with pytest.raises(ReportError, match=r"e/seed1 lacks column\(s\) \['train_loss', 'valid_loss'\]"):
        figures.learning_curves({"e": [(1, hist)]}, {}, {}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
