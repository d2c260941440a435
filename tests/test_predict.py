"""`polysent predict` (manifest + transcripts given) on the tiny workflow run: a bundle of one of
its runs, fed the run's own valid/test videos as "new" videos, rebuilds their features exactly
and reproduces the run's predictions; other feature settings are refused before any compute."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from polysent.bundle import FeatureMismatch, load_bundle, make_bundle
from polysent.predict import PredictError, predict_manifest

RUN = "results/runs/mult_t_fr_fr/seed1"
FEATURES = ("words", "text", "visual", "acoustic")


@pytest.fixture(autouse=True)
def _restore_torch_state():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(False)


@pytest.fixture(scope="module")
def bundle_path(tiny_run, tmp_path_factory):
    return make_bundle(tiny_run / RUN, {"fr": tiny_run / "results/store/fr.parquet"},
                       tmp_path_factory.mktemp("predict") / "bundle")


def new_videos(tiny_run, path, extra_rows=()):
    """The run's valid/test segments as a manifest of 'new' videos: no labels, split or shard."""
    man = pd.read_parquet(tiny_run / "results/corpus/manifest.parquet")
    man = man[(man["lang"] == "fr") & man["split"].isin(["valid", "test"])]
    man = man[["segment_id", "video_id", "lang", "start", "end", "transcript", "video_path", "audio_path"]]
    man = pd.concat([man, pd.DataFrame(list(extra_rows))], ignore_index=True)
    man.to_csv(path, index=False)
    return man


@pytest.fixture(scope="module")
def predicted(tiny_run, bundle_path, tmp_path_factory):
    """One `polysent predict` run (the CLI) over the run's valid/test videos plus a segment
    lying past the end of its video's audio."""
    from polysent.cli import main

    root = tmp_path_factory.mktemp("predict_run")
    man = pd.read_parquet(tiny_run / "results/corpus/manifest.parquet")
    vid = man[man["split"] == "test"].iloc[0]
    late = {"segment_id": f"{vid['video_id']}_late", "video_id": vid["video_id"], "lang": "fr", "start": 500.0,
            "end": 502.0, "transcript": "Bonjour.", "video_path": vid["video_path"], "audio_path": vid["audio_path"]}
    new_videos(tiny_run, root / "manifest.csv", [late])
    mp = pytest.MonkeyPatch()
    mp.chdir(tiny_run)  # the manifest's media paths are relative to the workflow folder
    try:
        rc = main(["predict", "--bundle", str(bundle_path), "--manifest", str(root / "manifest.csv"),
                   "--out", str(root / "pred.csv"), "--work", str(root / "work")])
    finally:
        mp.undo()
    assert rc == 0
    return root, late["segment_id"]


def test_predict_rebuilds_the_features_and_reproduces_the_run(tiny_run, bundle_path, predicted):
    root, late = predicted
    rows = pd.read_csv(root / "pred.csv")
    assert list(rows.columns) == ["segment_id", "video_id", "start", "end", "prediction", "reason"]
    want = pd.read_parquet(tiny_run / RUN / "predictions.parquet")
    got = rows.set_index("segment_id").loc[want["segment_id"]]
    assert got["reason"].isna().all()
    np.testing.assert_allclose(got["prediction"], want["y_pred"], rtol=0, atol=1e-5)  # CSV text, other batches
    # the rebuilt store holds the training store's features, bit for bit
    train = pq.read_table(tiny_run / "results/store/fr.parquet").to_pandas().set_index("segment_id")
    new = pq.read_table(root / "work/store/fr.parquet")
    assert sorted(new.column("segment_id").to_pylist()) == sorted(want["segment_id"])
    for row in new.to_pandas().to_dict("records"):
        for col in FEATURES:
            assert np.array_equal(np.stack(row[col]) if col != "words" else row[col],
                                  np.stack(train.loc[row["segment_id"], col]) if col != "words"
                                  else train.loc[row["segment_id"], col]), (row["segment_id"], col)
    # in the run's batches (one per split) the bundle gives the run's numbers exactly
    bundle = load_bundle(bundle_path)
    ids = new.column("segment_id").to_pylist()
    for split in ("valid", "test"):
        part = want[want["split"] == split]
        table = new.take(pa.array([ids.index(s) for s in part["segment_id"]]))
        np.testing.assert_array_equal(bundle.predict_table(table).column("y_pred").to_numpy(),
                                      part["y_pred"].to_numpy())
    meta = json.loads((root / "pred.csv.json").read_text())
    assert meta["model"] == "mult" and meta["allow_mismatch"] is False
    assert all(d["severity"] == "note" for d in meta["feature_differences"])


def test_a_segment_that_cannot_be_featurised_gets_a_reason(predicted):
    root, late = predicted
    rows = pd.read_csv(root / "pred.csv").set_index("segment_id")
    assert np.isnan(rows.loc[late, "prediction"])
    assert rows.loc[late, "reason"].startswith("media: ")


def test_other_feature_settings_are_refused_before_any_compute(tiny_run, bundle_path, tmp_path):
    new_videos(tiny_run, tmp_path / "m.csv")
    with pytest.raises(FeatureMismatch) as err:
        predict_manifest(bundle_path, tmp_path / "m.csv", tmp_path / "p.parquet", work=tmp_path / "work",
                         overrides={"acoustic": {"librosa": {"n_fft": 1024}}, "visual": {"backend": "openface"}})
    msg = str(err.value)
    assert "acoustic.params.n_fft: bundle 2048, new 1024" in msg
    assert 'visual.backend: bundle "landmarks", new "openface"' in msg
    assert not (tmp_path / "work" / "media").exists() and not (tmp_path / "p.parquet").exists()


def test_manifest_without_transcripts_or_segments_is_named(tiny_run, bundle_path, tmp_path):
    man = new_videos(tiny_run, tmp_path / "m.csv")
    man.loc[1, "transcript"] = ""
    man.to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(PredictError, match=rf"segment\(s\) without a transcript \['{man.loc[1, 'segment_id']}'\]"):
        predict_manifest(bundle_path, tmp_path / "m.csv", tmp_path / "p.csv", work=tmp_path / "work")
    man.drop(columns=["start"]).to_csv(tmp_path / "m2.csv", index=False)
    with pytest.raises(PredictError, match=r"missing column\(s\) \['start'\]"):
        predict_manifest(bundle_path, tmp_path / "m2.csv", tmp_path / "p.csv", work=tmp_path / "work")


def test_emotion_bundle_to_parquet(tiny_run, tmp_path, monkeypatch):
    run = tiny_run / "results/runs/emotions_mctn_posweight_fr/seed1"
    bundle = make_bundle(run, {"fr": tiny_run / "results/store/fr.parquet"}, tmp_path / "bundle")
    new_videos(tiny_run, tmp_path / "m.csv")
    monkeypatch.chdir(tiny_run)
    rows = predict_manifest(bundle, tmp_path / "m.csv", tmp_path / "p.parquet", work=tmp_path / "work",
                            progress=False)
    want = pd.read_parquet(run / "predictions.parquet")
    probs = [c for c in want.columns if c.startswith("prob_")]
    assert list(rows.columns) == ["segment_id", "video_id", "start", "end", *probs, "reason"]
    stored = pd.read_parquet(tmp_path / "p.parquet").set_index("segment_id").loc[want["segment_id"]]
    np.testing.assert_allclose(stored[probs].to_numpy(), want[probs].to_numpy(), rtol=0, atol=1e-6)
    meta = json.loads(pq.read_schema(tmp_path / "p.parquet").metadata[b"polysent"])
    assert meta["task"] == "emotion" and meta["model"] == "mctn"
