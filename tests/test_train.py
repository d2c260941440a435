"""Training loop: run folder contract, determinism, validation-only selection, rule and CLI."""

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from conftest import REPO, SCHEMA_DIR, copy_workflow, snakemake
from polysent.checkpoint import read_checkpoint
from polysent.config import load_schema, validate_config
from polysent.models import build_model
from polysent.runfiles import RUN_FILES
from polysent.synthetic import synthetic_store_table
from polysent.train import evaluate, evaluation_batches, run_experiment, settings_for, snapshot

DIMS = {"text": 10, "visual": 4, "acoustic": 5}
TRAIN = {
    "max_epochs": 3,
    "patience": 2,
    "batch_size": 16,
    "lr": 0.01,
    "max_len": 8,
    "threads": 1,
    "models": {
        "mctn": {"hidden": 6, "reg_hidden": 6},
        "multilogue": {"d_g": 6, "d_p": 6, "d_e": 6, "d_h": 6},
        "mult": {"d": 4, "heads": 2, "layers": 1, "mem_layers": 1},
        "adamml_clstm": {
            "window": 3,
            "policy_feat": 6,
            "policy_hidden": 6,
            "uni_hidden": 6,
            "uni_dim": 6,
            "fusion_hidden": 6,
            "dense": 6,
        },
    },
}
SENTIMENT_KEYS = {"mae", "corr", "acc2_has0", "acc2_non0", "f1_has0", "f1_non0", "acc5", "acc7", "n"}


pytestmark = pytest.mark.usefixtures("restore_torch_state")


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("stores")
    paths = {}
    for lang, other in (("fr", "es"), ("es", "fr")):
        paths[lang] = str(root / f"{lang}.parquet")
        pq.write_table(
            synthetic_store_table(
                lang,
                n_videos=10,
                segments_per_video=4,
                dims=DIMS,
                max_words=8,
                tr_lang=other,
                emotions=("happiness", "sadness"),
            ),
            paths[lang],
        )
    return paths


def run(stores, out, exp, seed=1, **train):
    return run_experiment(stores, exp, {**TRAIN, **train}, seed, out, exp_name="t")


def test_run_folder_contract_and_same_seed_same_bytes(stores, tmp_path):
    exp = {"model": "mctn", "variation": {"modalities": ["text", "acoustic"]}, "train": {"fr": 1.0}, "eval": "es"}
    m = run(stores, tmp_path / "a", exp)
    run(stores, tmp_path / "b", exp)
    run(stores, tmp_path / "c", exp, seed=2)
    for name in RUN_FILES:
        assert (tmp_path / "a" / name).exists(), name
    a = (tmp_path / "a" / "metrics.json").read_bytes()
    assert a == (tmp_path / "b" / "metrics.json").read_bytes()
    assert a != (tmp_path / "c" / "metrics.json").read_bytes()
    pa_ = pd.read_parquet(tmp_path / "a" / "predictions.parquet")
    pd.testing.assert_frame_equal(pa_, pd.read_parquet(tmp_path / "b" / "predictions.parquet"))
    meta = json.loads(a)
    for key in (
        "experiment",
        "seed",
        "model",
        "task",
        "train_langs",
        "eval_lang",
        "best_epoch",
        "selection",
        "n_params",
        "valid",
        "test",
    ):
        assert key in meta, key
    assert meta["selection"] == "valid_mae" and meta["train_langs"] == {"fr": 1.0} and meta["eval_lang"] == "es"
    assert SENTIMENT_KEYS <= set(meta["test"]) and SENTIMENT_KEYS <= set(meta["valid"])
    assert meta["test"]["n"] == m["data"]["n_test"]
    assert list(pa_.columns) == ["segment_id", "lang", "split", "y_true", "y_pred"]
    assert set(pa_["split"]) == {"valid", "test"} and set(pa_.loc[pa_["split"] == "test", "lang"]) == {"es"}
    test_rows = pa_[pa_["split"] == "test"]
    assert np.mean(np.abs(test_rows["y_pred"] - test_rows["y_true"])) == pytest.approx(meta["test"]["mae"], rel=1e-5)
    hist = pd.read_csv(tmp_path / "a" / "history.csv")
    assert list(hist.columns) == ["epoch", "train_loss", "valid_loss", "valid_mae", "lr", "temperature"]
    assert hist["valid_mae"].min() == pytest.approx(meta["valid"]["mae"], rel=1e-5)
    assert hist["valid_mae"].idxmin() == meta["best_epoch"]
    ckpt = read_checkpoint(tmp_path / "a")
    assert ckpt.spec["model"] == "mctn" and ckpt.spec["dims"] == DIMS and ckpt.nce_state_dict is None
    assert set(ckpt.normalizer) == {"text", "visual", "acoustic"}
    # the weights are the trained model's: a model rebuilt from model.json alone loads them exactly
    rebuilt = build_model("mctn", ckpt.spec["dims"], n_out=ckpt.spec["n_out"], task="sentiment", **ckpt.spec["kwargs"])
    rebuilt.load_state_dict(ckpt.state_dict)
    for name in ("model.safetensors", "model.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "a" / "model.safetensors").read_bytes() != (tmp_path / "c" / "model.safetensors").read_bytes()
    assert pd.read_parquet(tmp_path / "a" / "decisions.parquet").empty


def test_selection_never_looks_at_test_labels(stores, tmp_path):
    exp = {"model": "mult", "variation": {"modalities": ["text"]}, "train": {"fr": 1.0}, "eval": "fr"}
    a = run(stores, tmp_path / "a", exp, max_epochs=4, patience=4)
    table = pq.read_table(stores["fr"])
    y = table.column("sentiment").to_numpy().copy()
    test = np.array(table.column("split").to_pylist()) == "test"
    y[test] = -y[test]  # scramble the test labels only
    table = table.set_column(table.schema.get_field_index("sentiment"), "sentiment", pa.array(y, pa.float32()))
    pq.write_table(table, tmp_path / "fr.parquet")
    b = run({**stores, "fr": str(tmp_path / "fr.parquet")}, tmp_path / "b", exp, max_epochs=4, patience=4)
    assert a["best_epoch"] == b["best_epoch"] and a["valid"] == b["valid"]
    assert a["test"]["mae"] != b["test"]["mae"]


def test_empty_valid_and_test_splits_train_without_selection(stores, tmp_path):
    """A tiny corpus can lose a whole split to drop_neutral: the run says so instead of failing."""
    table = pq.read_table(stores["fr"])
    split = np.array(table.column("split").to_pylist())
    y = table.column("sentiment").to_numpy().copy()
    y[split != "train"] = 0.25  # every valid/test segment neutral
    y[split == "train"] = np.where(np.abs(y[split == "train"]) <= 0.5, 1.0, y[split == "train"])
    table = table.set_column(table.schema.get_field_index("sentiment"), "sentiment", pa.array(y, pa.float32()))
    pq.write_table(table, tmp_path / "fr.parquet")
    exp = {"model": "adamml_clstm", "train": {"fr": 1.0}, "eval": "fr", "drop_neutral": True}
    m = run({"fr": str(tmp_path / "fr.parquet")}, tmp_path / "run", exp)
    assert m["selection"] == "none_last_epoch" and m["best_epoch"] == TRAIN["max_epochs"] - 1
    assert m["test"]["n"] == 0 and m["test"]["mae"] is None and m["valid"]["n"] == 0
    assert len(m["warnings"]) == 2
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["corr"] is None
    assert pd.read_parquet(tmp_path / "run" / "decisions.parquet").empty


def test_adamml_writes_decisions_and_temperature(stores, tmp_path):
    exp = {
        "model": "adamml_clstm",
        "variation": {"decision_loss": True, "target": 2},
        "train": {"fr": 1.0, "es": 0.2},
        "eval": "es",
    }
    run(stores, tmp_path, exp)
    dec = pd.read_parquet(tmp_path / "decisions.parquet")
    assert list(dec.columns) == ["segment_id", "split", "window", "modality", "selected", "prob"]
    assert set(dec["split"]) == {"test"} and set(dec["modality"]) == {"text", "visual", "acoustic"}
    assert set(dec["selected"].unique()) <= {0, 1}
    # argmax at evaluation (the default): kept exactly where the policy probability is above 1/2
    assert ((dec["prob"] > 0.5).astype(int) == dec["selected"]).all()
    preds = pd.read_parquet(tmp_path / "predictions.parquet")
    assert set(dec["segment_id"]) == set(preds.loc[preds["split"] == "test", "segment_id"])
    hist = pd.read_csv(tmp_path / "history.csv")
    assert hist["temperature"].tolist() == pytest.approx([5.0 * 0.965**e for e in hist["epoch"]])


def test_emotion_run(stores, tmp_path):
    exp = {
        "model": "mctn",
        "task": "emotion",
        "emotions": ["happiness", "sadness"],
        "pos_weight": True,
        "variation": {"modalities": ["acoustic", "visual"]},
        "train": {"fr": 1.0},
        "eval": "fr",
    }
    m = run(stores, tmp_path, exp)
    assert m["selection"] == "valid_loss"
    assert set(m["test"]["per_label"]) == {"happiness", "sadness"}
    assert {"precision", "recall", "f1", "n_pos"} == set(m["test"]["per_label"]["happiness"])
    cols = pd.read_parquet(tmp_path / "predictions.parquet").columns
    assert {"true_happiness", "prob_happiness", "true_sadness", "prob_sadness"} <= set(cols)


def test_nce_with_transaug_trains(stores, tmp_path):
    exp = {
        "model": "multilogue",
        "nce": ["cross_tv", "cross_ta", "inter_tv"],
        "transaug": True,
        "train": {"fr": 1.0},
        "eval": "es",
    }
    m = run(stores, tmp_path, exp, max_epochs=2)
    assert m["data"]["transaug_samples"] == m["data"]["n_train"] // 2
    assert np.isfinite(pd.read_csv(tmp_path / "history.csv")["train_loss"]).all()


@pytest.mark.parametrize("terms", [["inter_tv"], ["cross_tv", "inter_tv"]])
@pytest.mark.parametrize("time_axis", ["utterance", "word"])
def test_no_row_s_own_translation_is_ever_an_nce_negative(stores, monkeypatch, terms, time_axis):
    """Every batch the training loop draws (TransAug on, inter_tv alone or with a cross term, both
    batch units): in every inter-modal NCE call a TransAug row shares its original's group, so
    neither is the other's negative; rows of other segments stay negatives."""
    import polysent.models.nce as nce_module
    from polysent.data import build_splits
    from polysent.models import NCEObjective, build_model
    from polysent.train import training_batches

    exp = {"model": "multilogue", "nce": terms, "transaug": True, "train": {"fr": 1.0}, "eval": "fr"}
    splits = build_splits(stores, exp, seed=1, max_len=8)
    model = build_model("multilogue", splits.dims, **{**TRAIN["models"]["multilogue"], "time_axis": time_axis})
    nce = NCEObjective(terms, model.rep_dims, dim=4)
    calls = []
    real = nce_module.info_nce

    def spy(a, b, tau=0.1, symmetric=True, groups=None):
        calls.append(groups)
        return real(a, b, tau, symmetric, groups)

    monkeypatch.setattr(nce_module, "info_nce", spy)
    checked = 0
    for epoch in range(2):
        for part, batch in training_batches(model, nce, splits.train, 8, np.random.default_rng([1, epoch])):
            calls.clear()
            nce(model, batch, model(batch))
            inter = [g for g in calls if g is not None]  # the cross terms pass no groups
            assert len(inter) == 1
            groups = inter[0].tolist()
            row = {s.segment_id: i for i, s in enumerate(part)}
            for j, s in enumerate(part):
                if s.augmented:
                    original = row[s.segment_id.split("#tr-")[0]]
                    assert groups[j] == groups[original], (s.segment_id, groups)
                    checked += 1
            # only a segment and its own translation share a group
            assert len(set(groups)) == sum(not s.augmented for s in part)
    assert checked == 2 * splits.report["transaug_samples"]


def test_partial_train_settings_get_the_schema_defaults():
    schema = load_schema(SCHEMA_DIR)["properties"]["train"]["properties"]
    settings = settings_for({"max_epochs": 3}, {"train_overrides": {"nce": {"tau": 0.5}}})
    assert settings["max_epochs"] == 3 and settings["nce"]["tau"] == 0.5
    for key, spec in schema.items():
        if "default" in spec and key not in ("max_epochs", "nce", "models"):
            assert settings[key] == spec["default"], key
    assert settings["nce"]["dim"] == schema["nce"]["properties"]["dim"]["default"]


def test_experiment_entries_validate_and_fill_defaults():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["experiments"] = {"x": {"model": "mult", "train": {"fr": 1.0}, "eval": "es"}}
    validate_config(config, SCHEMA_DIR)
    entry = config["experiments"]["x"]
    assert entry["task"] == "sentiment" and entry["seeds"] == [1, 2, 3] and entry["nce"] == []
    config["experiments"]["y"] = {"model": "bert", "train": {"fr": 2.0}, "eval": "es", "nce": ["cross_xv"]}
    with pytest.raises(Exception) as err:
        validate_config(config, SCHEMA_DIR)
    msg = str(err.value)
    assert "'bert'" in msg and "cross_xv" in msg and "experiments.y.train.fr" in msg


def test_partial_entry_is_named_when_used(stores, tmp_path):
    from polysent.experiments import experiment_entry

    with pytest.raises(ValueError, match=r"experiment 'x' lacks required key\(s\) \['model', 'eval'\]"):
        experiment_entry({"x": {"train": {"fr": 1.0}}}, "x")
    with pytest.raises(ValueError, match="lacks required"):
        run_experiment(stores, {"drop_neutral": True}, TRAIN, 1, tmp_path, exp_name="partial")


def test_cli_train(stores, tmp_path, capsys):
    from polysent.cli import main

    cfg = {
        "train": TRAIN,
        "experiments": {
            "m": {"model": "mult", "variation": {"modalities": ["text"]}, "train": {"es": 1.0}, "eval": "es"}
        },
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))

    def train_cli(out):
        argv = ["train", "--store", f"es={stores['es']}", "--config", str(tmp_path / "c.yaml"), "--experiment", "m"]
        return main([*argv, "--seed", "3", "--out", str(tmp_path / out)])

    rc = train_cli("run")
    assert rc == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["seed"] == 3
    # the CLI validates its config like the workflow: a typo is named in one line, not silently defaulted
    cfg["train"] = {**TRAIN, "max_epoch": 3}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    capsys.readouterr()
    assert train_cli("run2") == 1
    err = capsys.readouterr().err
    assert "unknown key 'max_epoch' in train (did you mean 'max_epochs'?)" in err and "Traceback" not in err


def test_train_rule_runs_in_snakemake(stores, tmp_path):
    """Rules `train` + `train_run` on synthetic stores in a private workflow copy (only these may run):
    a run outside the report is a training group of one, "{exp}.seed{seed}"."""
    wf = copy_workflow(tmp_path / "wf")
    for lang, path in stores.items():
        (wf / "results" / "store").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, wf / "results" / "store" / f"{lang}.parquet")
    cfg = {
        "train": TRAIN,
        "experiments": {
            "mult_t": {"model": "mult", "variation": {"modalities": ["text"]}, "train": {"fr": 1.0}, "eval": "es"}
        },
        "report": {"table1": [], "emotions": []},
    }  # no report rows: only this rule's target
    (wf / "config" / "test_train.yaml").write_text(yaml.safe_dump(cfg))
    target = "results/runs/mult_t/seed4/metrics.json"
    snakemake(
        wf,
        target,
        "--cores",
        "1",
        "--allowed-rules",
        "train",
        "train_run",
        "--configfile",
        "config/tiny.yaml",
        "config/test_train.yaml",
    )
    meta = json.loads((wf / target).read_text())
    assert meta["experiment"] == "mult_t" and meta["seed"] == 4 and meta["eval_lang"] == "es"
    assert (wf / "logs" / "train" / "mult_t.seed4.log").exists()
    assert (wf / "benchmarks" / "train" / "mult_t.seed4.tsv").exists()
    group_copy = wf / "results" / "train_groups" / "mult_t.seed4" / "mult_t" / "seed4" / "metrics.json"
    assert group_copy.read_bytes() == (wf / target).read_bytes()
    proc = snakemake(
        wf,
        "results/runs/nope/seed1/metrics.json",
        "-n",
        "--configfile",
        "config/tiny.yaml",
        "config/test_train.yaml",
        check=False,
    )
    assert proc.returncode != 0 and "unknown experiment 'nope'" in proc.stdout + proc.stderr


# ------------------------------------------------------------ early stopping, LR plateau, counts


def _stop_epoch(values, patience, max_epochs):
    """Epochs a run lasts when it stops after ``patience`` epochs without a lower value."""
    best, bad = float("inf"), 0
    for epoch, value in enumerate(values):
        if value < best:
            best, bad = value, 0
        else:
            bad += 1
        if bad >= patience:
            return epoch + 1
    return max_epochs


def test_mult_trains_every_epoch_by_default_and_stopping_can_be_turned_on(stores, tmp_path):
    exp = {"model": "mult", "variation": {"modalities": ["text", "acoustic"]}, "train": {"fr": 1.0}, "eval": "fr"}
    off = run(stores, tmp_path / "off", exp, max_epochs=6, patience=1, lr=0.05)
    assert off["epochs_run"] == 6  # official MulT: no early stopping, best validation checkpoint
    assert off["schedule"] == {
        "early_stopping": False,
        "patience": None,
        "plateau_patience": 20,
        "max_epochs": 6,
        "grad_clip": 0.8,
        "lr_reductions": 0,
    }
    hist = pd.read_csv(tmp_path / "off" / "history.csv")
    assert off["best_epoch"] == hist["valid_mae"].idxmin()
    on = run(stores, tmp_path / "on", exp, max_epochs=6, patience=1, lr=0.05, early_stopping=True, plateau_patience=0)
    expected = _stop_epoch(hist["valid_mae"].tolist(), 1, 6)
    assert expected < 6, "the test needs a run that stops early"
    assert on["epochs_run"] == expected and on["schedule"]["early_stopping"] is True


def _clip_calls(monkeypatch):
    calls = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *args, **kwargs):
        calls.append(max_norm)
        return real(params, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    return calls


def test_gradient_clipping_follows_each_model_s_reference_unless_set(stores, tmp_path, monkeypatch):
    calls = _clip_calls(monkeypatch)
    mctn = {"model": "mctn", "variation": {"modalities": ["text", "acoustic"]}, "train": {"fr": 1.0}, "eval": "fr"}
    mult = {"model": "mult", "variation": {"modalities": ["text"]}, "train": {"fr": 1.0}, "eval": "fr"}
    m = run(stores, tmp_path / "mctn", mctn, max_epochs=1)  # grad_clip null: MCTN's reference does not clip
    assert calls == [] and m["schedule"]["grad_clip"] is None
    m = run(stores, tmp_path / "mult", mult, max_epochs=1)  # MulT's official --clip 0.8
    assert calls and set(calls) == {0.8} and m["schedule"]["grad_clip"] == 0.8
    calls.clear()
    run(stores, tmp_path / "set", mctn, max_epochs=1, grad_clip=1.0)  # a global value (the demo's)
    assert calls and set(calls) == {1.0}
    calls.clear()
    run(stores, tmp_path / "off", mult, max_epochs=1, grad_clip=0)  # 0 = off, also for MulT
    assert calls == []


def test_model_overrides_set_one_model_s_budget(stores, tmp_path, monkeypatch):
    calls = _clip_calls(monkeypatch)
    overrides = {"mctn": {"max_epochs": 2, "patience": 5, "grad_clip": 0.5}}
    mctn = {"model": "mctn", "variation": {"modalities": ["text", "acoustic"]}, "train": {"fr": 1.0}, "eval": "fr"}
    m = run(stores, tmp_path / "mctn", mctn, max_epochs=4, model_overrides=overrides)
    assert m["epochs_run"] == 2 and m["schedule"]["max_epochs"] == 2 and m["schedule"]["patience"] == 5
    assert set(calls) == {0.5}
    # another model keeps the section's values; an experiment's train_overrides go on top
    other = {"model": "mult", "variation": {"modalities": ["text"]}, "train": {"fr": 1.0}, "eval": "fr"}
    assert settings_for({**TRAIN, "model_overrides": overrides}, other)["max_epochs"] == TRAIN["max_epochs"]
    on_top = {**mctn, "train_overrides": {"max_epochs": 7}}
    assert settings_for({**TRAIN, "model_overrides": overrides}, on_top)["max_epochs"] == 7


def test_lr_plateau_fires_on_the_validation_loss(stores, tmp_path):
    exp = {"model": "mult", "variation": {"modalities": ["text", "acoustic"]}, "train": {"fr": 1.0}, "eval": "fr"}
    m = run(stores, tmp_path, exp, max_epochs=8, lr=0.2, plateau_patience=1)
    hist = pd.read_csv(tmp_path / "history.csv")
    # Replay torch's ReduceLROnPlateau on the recorded validation losses: the run's LR must follow.
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
    replay = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", patience=1, factor=0.1)
    expected = []
    for loss in hist["valid_loss"]:
        expected.append(opt.param_groups[0]["lr"])
        replay.step(loss)
    assert hist["lr"].tolist() == pytest.approx(expected)
    assert m["schedule"]["lr_reductions"] >= 1 and hist["lr"].iloc[-1] < 0.2
    assert not any("plateau_patience" in w for w in m["warnings"])


def test_plateau_that_cannot_act_before_stopping_warns(stores, tmp_path):
    exp = {"model": "mctn", "variation": {"modalities": ["text", "acoustic"]}, "train": {"fr": 1.0}, "eval": "fr"}
    m = run(stores, tmp_path, exp, max_epochs=2, patience=8, plateau_patience=20)
    assert any("plateau_patience 20 >= patience 8 - 1" in w for w in m["warnings"])


def test_metrics_record_training_counts_per_language(stores, tmp_path):
    exp = {
        "model": "mult",
        "variation": {"modalities": ["text"]},
        "train": {"fr": 1.0, "es": {"count": 5}},
        "eval": "es",
        "transaug": True,
    }
    a = run(stores, tmp_path / "a", exp, seed=1, max_epochs=1)
    b = run(stores, tmp_path / "b", exp, seed=2, max_epochs=1)
    n_fr = sum(s == "train" for s in pq.read_table(stores["fr"]).column("split").to_pylist())
    assert a["data"]["n_train_by_lang"] == b["data"]["n_train_by_lang"] == {"es": 5, "fr": n_fr}
    assert a["data"]["n_train"] == 2 * (n_fr + 5)  # TransAug doubles the samples, not the per-language counts
    assert a["data"]["subsets"]["es"]["segments"] == 5 and "fr" not in a["data"]["subsets"]
    meta = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert meta["data"]["n_train_by_lang"]["es"] == 5 and isinstance(meta["best_epoch"], int)
    preds = pd.read_parquet(tmp_path / "a" / "predictions.parquet")
    assert len(preds[(preds["split"] == "valid") & (preds["lang"] == "es")]) == sum(
        s == "valid" for s in pq.read_table(stores["es"]).column("split").to_pylist()
    )  # ES valid kept whole


def test_moseas_preset_trains_each_model_with_its_reference_budget():
    """config/moseas.yaml: MCTN 200 epochs / patience 20, Multilogue-Net 100 epochs without early
    stopping, MulT 40 epochs clipped at 0.8; no other model clips."""
    from polysent.models import build_model
    from polysent.train import grad_clip_of, schedule_for

    config = yaml.safe_load((REPO / "config" / "moseas.yaml").read_text())
    train = validate_config({"languages": ["fr", "es"], "train": config["train"]}, SCHEMA_DIR)["train"]
    dims = {"text": 6, "visual": 3, "acoustic": 4}
    expected = {
        "mctn": (200, True, 20, 0.0),
        "multilogue": (100, False, None, 0.0),
        "mult": (40, False, None, 0.8),
        "adamml_clstm": (40, True, 8, 0.0),
    }
    for name, (epochs, stopping, patience, clip) in expected.items():
        settings = settings_for(train, {"model": name})
        model = build_model(name, dims, **({"modalities": ["text", "acoustic"]} if name == "mctn" else {}))
        schedule = schedule_for(model, settings)
        assert (settings["max_epochs"], schedule["early_stopping"], schedule["patience"]) == (
            epochs,
            stopping,
            patience,
        ), name
        assert grad_clip_of(model, settings) == clip, name


def test_checkpoint_snapshot_is_a_copy_and_restores_the_selected_state():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    model(torch.randn(4, 3))  # running stats and num_batches_tracked move
    selected = {k: v.clone() for k, v in model.state_dict().items()}
    snap = snapshot(model)
    with torch.no_grad():  # later training steps change the live weights and buffers in place
        for p in model.parameters():
            p.add_(1.0)
    model(torch.randn(4, 3))
    assert all(torch.equal(snap[k], v) for k, v in selected.items())
    model.load_state_dict(snap)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in selected.items())


def test_evaluation_on_prepared_batches_equals_collating_anew(stores):
    from polysent.data import build_splits
    from polysent.models.heads import TaskLoss

    exp = {"model": "mctn", "variation": {"modalities": ["text", "acoustic"]}, "train": {"fr": 1.0}, "eval": "es"}
    splits = build_splits(stores, exp, 1, max_len=8)
    torch.manual_seed(0)
    model = build_model("mctn", splits.dims, n_out=1, task="sentiment", modalities=["text", "acoustic"])
    loss = TaskLoss("sentiment")
    prepared = evaluation_batches(model, splits.valid, 16, torch.device("cpu"))
    a = evaluate(model, splits.valid, 16, loss, torch.device("cpu"), prepared)
    b = evaluate(model, splits.valid, 16, loss, torch.device("cpu"))
    c = evaluate(model, splits.valid, 16, loss, torch.device("cpu"), prepared)  # reused: unchanged
    np.testing.assert_array_equal(a["pred"], b["pred"])
    np.testing.assert_array_equal(a["pred"], c["pred"])
    assert a["loss"] == b["loss"] == c["loss"]
