"""Model bundles: a run rebuilt from its bundle alone predicts what the run predicted; feature
settings that differ from the training stores' are refused with every differing key named."""

import copy
import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from polysent import io
from polysent.bundle import BundleError, FeatureMismatch, check_features, feature_settings, load_bundle, make_bundle
from polysent.checkpoint import read_checkpoint, read_weights
from polysent.synthetic import synthetic_store_table
from polysent.train import run_experiment
from test_train import DIMS, TRAIN

ACOUSTIC_CFG = {"backend": "librosa", "librosa": {"n_fft": 2048, "hop_length": 512}}
VISUAL_CFG = {"backend": "landmarks"}
TEXT_CFG = {"encoder": "hash", "hash": {"dim": DIMS["text"]}}


pytestmark = pytest.mark.usefixtures("restore_torch_state")


def store_metadata(lang, acoustic_cfg=ACOUSTIC_CFG, visual_cfg=VISUAL_CFG, shards=(0, 1)):
    """Store metadata as ``polysent.store.run_language`` writes it, the stages' own provenance inside."""
    from polysent import text
    from polysent.features import acoustic, visual

    extractor = acoustic.make_extractor(acoustic_cfg)
    return {
        "lang": lang,
        "dims": dict(DIMS),
        "feature_names": {m: [f"{m}_{i}" for i in range(d)] for m, d in DIMS.items()},
        "params": {"min_word_duration": 0.04, "missing_frames": "zero"},
        "stats": {"segments": 40},
        "inputs": {
            "acoustic": {
                f"results/acoustic/{s}.parquet": acoustic.provenance(extractor, acoustic_cfg, {"shard": str(s)})
                for s in shards
            },
            "visual": {f"results/visual/{s}.parquet": visual.provenance(visual_cfg, {"shard": str(s)}) for s in shards},
            "align": {
                f"results/align/{s}.parquet": {"stage": "align", "backend": "aeneas", "params": {}, "shard": str(s)}
                for s in shards
            },
            "text": {f"results/text/{lang}.parquet": text.provenance(TEXT_CFG, lang) | {"oov_rate": 0.1}},
        },
    }


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundle_stores")
    paths = {}
    for lang, other in (("fr", "es"), ("es", "fr")):
        paths[lang] = str(root / f"{lang}.parquet")
        table = synthetic_store_table(
            lang,
            n_videos=10,
            segments_per_video=4,
            dims=DIMS,
            max_words=12,
            tr_lang=other,
            emotions=("happiness", "sadness"),
        )
        io.write_parquet(paths[lang], table, provenance=store_metadata(lang))
    return paths


EXPERIMENTS = {
    "mctn_ta": {"model": "mctn", "variation": {"modalities": ["text", "acoustic"]}, "train": {"fr": 1.0}, "eval": "es"},
    "mult_emotion": {
        "model": "mult",
        "task": "emotion",
        "emotions": ["happiness", "sadness"],
        "train": {"fr": 1.0, "es": 0.3},
        "eval": "es",
    },
    "adamml": {"model": "adamml_clstm", "train": {"es": 1.0}, "eval": "fr"},
    "multilogue_word": {"model": "multilogue", "variation": {"time_axis": "word"}, "train": {"fr": 1.0}, "eval": "fr"},
}


@pytest.fixture(scope="module")
def runs(stores, tmp_path_factory):
    """One short training run per experiment, through the real training entry point."""
    root = tmp_path_factory.mktemp("bundle_runs")
    out = {}
    for name, exp in EXPERIMENTS.items():
        run_experiment(stores, exp, {**TRAIN, "max_len": 8}, 1, root / name, exp_name=name)
        out[name] = root / name
    return out


def relocated_bundle(run_dir, stores, dest):
    """Bundle a run, move the bundle elsewhere and delete the run: only the bundle remains."""
    bundle = make_bundle(run_dir, stores, run_dir / "bundle")
    moved = shutil.move(str(bundle), str(dest / "moved_bundle"))
    return moved


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_round_trip_reproduces_the_runs_predictions(name, runs, stores, tmp_path):
    run_copy = shutil.copytree(runs[name], tmp_path / "run")
    expected = pd.read_parquet(run_copy / "predictions.parquet")
    path = relocated_bundle(run_copy, stores, tmp_path)
    shutil.rmtree(run_copy)
    bundle = load_bundle(path)
    pred_cols = bundle.meta["labels"]["outputs"]
    tables = pa.concat_tables([pq.read_table(stores[lang]) for lang in sorted(stores)])
    row_of = {sid: i for i, sid in enumerate(tables.column("segment_id").to_pylist())}
    for split in ("valid", "test"):
        want = expected[expected["split"] == split]
        # the split's rows in the run's order: the same batches as training's evaluation
        rows = tables.take(pa.array([row_of[sid] for sid in want["segment_id"]]))
        got = bundle.predict_table(rows).to_pandas()
        assert got["segment_id"].tolist() == want["segment_id"].tolist() and got["reason"].isna().all()
        np.testing.assert_array_equal(got[pred_cols].to_numpy(), want[pred_cols].to_numpy())
        # other batches (one language at a time) change padding only: float32 rounding at most
        for lang in sorted(set(want["lang"])):
            part = want[want["lang"] == lang]
            alone = bundle.predict_table(tables.take(pa.array([row_of[s] for s in part["segment_id"]]))).to_pandas()
            np.testing.assert_allclose(alone[pred_cols].to_numpy(), part[pred_cols].to_numpy(), rtol=0, atol=1e-6)


def test_bundle_json_describes_model_features_and_provenance(runs, stores, tmp_path):
    path = make_bundle(runs["mctn_ta"], stores, tmp_path / "b")
    meta = json.loads((path / "bundle.json").read_text())
    assert meta["model"]["name"] == "mctn" and meta["model"]["kwargs"]["modalities"] == ["text", "acoustic"]
    assert meta["task"] == "sentiment" and meta["labels"]["outputs"] == ["y_pred"]
    assert meta["features"]["dims"] == DIMS and len(meta["features"]["names"]["acoustic"]) == DIMS["acoustic"]
    assert meta["inputs"] == {"max_len": 8, "standardize": True, "eval_batch_size": 256}
    assert set(meta["provenance"]) == {"fr", "es"}
    fr = meta["provenance"]["fr"]
    assert fr["acoustic"]["backend"] == "librosa" and fr["acoustic"]["params"]["n_fft"] == 2048
    assert "shard" not in fr["acoustic"] and "oov_rate" not in fr["text"]
    assert "stand_in" in fr["visual"] and "librosa" in fr["acoustic"]["versions"]
    assert meta["training"]["seed"] == 1 and meta["training"]["entry"]["eval"] == "es"
    assert len(meta["training"]["stores"]["fr"]["sha256"]) == 64
    state, _, normalizer = read_weights(path / "weights.safetensors")
    ckpt = read_checkpoint(runs["mctn_ta"])
    for m in ("text", "visual", "acoustic"):
        np.testing.assert_array_equal(normalizer[m]["mean"], ckpt.normalizer[m]["mean"])
    assert state.keys() == ckpt.state_dict.keys()
    assert all(torch.equal(state[k], ckpt.state_dict[k]) for k in state)
    # the same run bundled twice gives the same bytes
    again = make_bundle(runs["mctn_ta"], stores, tmp_path / "b2")
    for name in ("bundle.json", "weights.safetensors"):
        assert (path / name).read_bytes() == (again / name).read_bytes(), name


def test_same_feature_settings_pass_and_mismatches_are_named(runs, stores, tmp_path):
    bundle = load_bundle(make_bundle(runs["mctn_ta"], stores, tmp_path / "b"))
    assert check_features(bundle, store_metadata("es")) == []
    assert check_features(bundle, feature_settings(store_metadata("fr", shards=(5,)))) == []

    other = store_metadata(
        "es",
        acoustic_cfg={"backend": "librosa", "librosa": {"n_fft": 1024, "hop_length": 512}},
        visual_cfg={"backend": "openface"},
    )
    other["dims"]["acoustic"] = 7
    with pytest.raises(FeatureMismatch) as err:
        check_features(bundle, other)
    msg = str(err.value)
    for key, old, new in (
        ("acoustic.params.n_fft", "2048", "1024"),
        ("visual.backend", '"landmarks"', '"openface"'),
        ("store.dims.acoustic", "5", "7"),
    ):
        assert f"{key}: bundle {old}, new {new}" in msg, (key, msg)
    assert "visual.stand_in: bundle" in msg and "new null" in msg  # stand-in vs the real tool
    assert "--allow-feature-mismatch" in msg

    diffs = check_features(bundle, other, allow_mismatch=True)
    keys = {d.key for d in diffs}
    assert {"acoustic.params.n_fft", "visual.backend", "visual.stand_in", "store.dims.acoustic"} <= keys
    assert all(d.severity == "error" for d in diffs if d.key.startswith("acoustic.params"))
    assert json.dumps([d.as_dict() for d in diffs])  # recordable in metadata


def test_tool_versions_are_notes_not_refusals(runs, stores, tmp_path):
    bundle = load_bundle(make_bundle(runs["mctn_ta"], stores, tmp_path / "b"))
    newer = store_metadata("fr")
    for prov in newer["inputs"]["acoustic"].values():
        prov["versions"]["librosa"] = "99.0"
    diffs = check_features(bundle, newer)
    assert [(d.key, d.bundle, d.new, d.severity) for d in diffs] == [
        ("acoustic.versions.librosa", bundle.provenance["fr"]["acoustic"]["versions"]["librosa"], "99.0", "note")
    ]


def test_predict_store_checks_before_predicting(runs, stores, tmp_path):
    bundle = load_bundle(make_bundle(runs["mctn_ta"], stores, tmp_path / "b"))
    table = pq.read_table(stores["es"])
    meta = store_metadata("es", acoustic_cfg={"backend": "librosa", "librosa": {"n_fft": 2048, "hop_length": 256}})
    io.write_parquet(tmp_path / "other.parquet", table, provenance=meta)
    with pytest.raises(FeatureMismatch, match=r"acoustic.params.hop_length: bundle 512, new 256"):
        bundle.predict_store(tmp_path / "other.parquet")
    preds, diffs = bundle.predict_store(tmp_path / "other.parquet", allow_mismatch=True)
    assert [d.key for d in diffs] == ["acoustic.params.hop_length"] and preds.num_rows == table.num_rows
    same, none = bundle.predict_store(stores["es"])
    assert none == [] and same.column("y_pred").equals(preds.column("y_pred"))


def test_unlabelled_rows_and_segments_without_words(runs, stores, tmp_path):
    bundle = load_bundle(make_bundle(runs["mctn_ta"], stores, tmp_path / "b"))
    table = pq.read_table(stores["es"]).slice(0, 3)
    labelled = bundle.predict_table(table).column("y_pred").to_numpy()
    unlabelled = table.drop_columns(["sentiment"])
    np.testing.assert_array_equal(bundle.predict_table(unlabelled).column("y_pred").to_numpy(), labelled)
    cols = {
        m: pa.array([table.column(m)[0].as_py(), [], table.column(m)[2].as_py()], table.schema.field(m).type)
        for m in ("text", "visual", "acoustic")
    }
    holed = table
    for m, col in cols.items():
        holed = holed.set_column(holed.schema.get_field_index(m), m, col)
    out = bundle.predict_table(holed).to_pandas()
    assert np.isnan(out["y_pred"][1]) and out["reason"][1] == "no words in the segment"
    assert out["reason"][[0, 2]].isna().all() and np.isfinite(out["y_pred"][[0, 2]]).all()


def test_bad_bundles_and_runs_are_named(runs, stores, tmp_path):
    with pytest.raises(BundleError, match=r"no store given for language\(s\) \['fr'\]"):
        make_bundle(runs["mctn_ta"], {"es": stores["es"]}, tmp_path / "b")
    with pytest.raises(BundleError, match="no model.json"):
        make_bundle(tmp_path, stores)
    path = make_bundle(runs["mctn_ta"], stores, tmp_path / "b")
    weights = (path / "weights.safetensors").read_bytes()
    (path / "weights.safetensors").write_bytes(weights[:-10])
    with pytest.raises(BundleError, match="SHA-256 differs"):
        load_bundle(path)
    with pytest.raises(BundleError, match="not a polysent bundle"):
        load_bundle(tmp_path)
    # a bundle of the earlier format (weights.pt) is refused by its version, with what to do
    old = json.loads((path / "bundle.json").read_text())
    (path / "bundle.json").write_text(json.dumps({**old, "version": 1}))
    with pytest.raises(BundleError, match="bundle version 1, this polysent reads version 2 .*re-make it"):
        load_bundle(path)
    # a run folder whose weights changed after training is named with the key it fails
    run = tmp_path / "run"
    shutil.copytree(runs["mctn_ta"], run)
    (run / "model.safetensors").write_bytes((run / "model.safetensors").read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(BundleError, match="model.safetensors: SHA-256 differs from model.json key weights.sha256"):
        make_bundle(run, stores)
    # shards of one stage made with different settings cannot describe one store
    meta = store_metadata("fr")
    first = next(iter(meta["inputs"]["acoustic"].values()))
    bad = copy.deepcopy(meta)
    list(bad["inputs"]["acoustic"].values())[1]["params"] = {**first["params"], "n_fft": 512}
    with pytest.raises(BundleError, match=r"acoustic files it was built from disagree.*acoustic.params.n_fft"):
        feature_settings(bad, "fr.parquet")


def test_cli_bundle(runs, stores, tmp_path):
    from polysent.cli import main

    rc = main(
        [
            "bundle",
            "--run",
            str(runs["adamml"]),
            "--store",
            f"fr={stores['fr']}",
            "--store",
            f"es={stores['es']}",
            "--out",
            str(tmp_path / "b"),
        ]
    )
    assert rc == 0 and load_bundle(tmp_path / "b").meta["model"]["name"] == "adamml_clstm"


def test_bundle_without_time_axis_loads_the_word_axis_model(runs, stores, tmp_path):
    """Bundles made before Multilogue-Net's `time_axis` existed hold the word-axis model."""
    path = make_bundle(runs["multilogue_word"], stores, tmp_path / "b")
    desc = path / "bundle.json"
    meta = json.loads(desc.read_text())
    assert meta["model"]["kwargs"]["time_axis"] == "word"
    del meta["model"]["kwargs"]["time_axis"]
    desc.write_text(json.dumps(meta))
    assert load_bundle(path).model.time_axis == "word"
