"""`results/predict/{name}.csv` through the stage rules (issue 14, deliverable 4).

On a copy of the finished tiny run, a predict entry naming one of its runs (`bundle:
mult_t_fr_fr/seed1`) and its own valid/test videos as a manifest of new videos: the DAG plans
the bundle and the entry's own stage jobs (`predict_corpus`, the stage rules reused as
`predict_<stage>`, `predict_words`, `predict`), nothing of the main DAG; the predictions equal
the run's `predictions.parquet` and the one-process CLI's output; editing the predict manifest
re-plans that entry's jobs only; a bundle whose settings the stages cannot reproduce is refused
with the differing keys before any stage job runs.
"""

import json
import shutil
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import copy_finished_run, describe_jobs, planned_jobs, snakemake
from test_predict import FEATURES, RUN, new_videos

pytestmark = [pytest.mark.workflow, pytest.mark.usefixtures("restore_torch_state")]

CONFIG = ("--configfile", "config/tiny.yaml", "predict.yaml")
TARGET = "results/predict/rt.csv"
# The stage rules of the main DAG, reused for prediction (rule name -> its predict_<rule>).
STAGE_RULES = ("media", "acoustic", "visual", "align_aeneas", "text", "store")


@pytest.fixture(scope="module")
def dag(tiny_run, tmp_path_factory):
    """The finished tiny run plus `predict.rt`: planned, then built; (folder, planned jobs, seconds)."""
    wf = copy_finished_run(tiny_run, tmp_path_factory.mktemp("predict_dag") / "wf")
    new_videos(tiny_run, wf / "new.csv")
    (wf / "predict.yaml").write_text(
        "predict:\n  rt: {bundle: mult_t_fr_fr/seed1, manifest: new.csv}\n"
        "  bad: {bundle: badbundle, manifest: new.csv}\n"
    )
    jobs = planned_jobs(wf, *CONFIG, "--", TARGET)
    start = time.monotonic()
    snakemake(wf, "--cores", "2", *CONFIG, "--", TARGET)
    return wf, jobs, time.monotonic() - start


def test_the_dag_runs_the_stage_rules_for_the_entry_only(dag):
    wf, jobs, _ = dag
    rules = {j.rule for j in jobs.values()}
    assert rules == {"bundle", "predict_corpus", "predict_words", "predict", *(f"predict_{r}" for r in STAGE_RULES)}, (
        describe_jobs(jobs)
    )
    shards = {j.wildcards for j in jobs.values() if j.rule == "predict_media"}
    assert shards == {"name=rt, shard=000", "name=rt, shard=001"}  # sharded like the corpus (tiny: 2)
    assert all(o.startswith("results/predict/rt") for j in jobs.values() if j.rule != "bundle" for o in j.outputs)
    # the stage jobs ran the stage rules' scripts with the bundle's settings
    settings = json.loads((wf / "results/predict/rt/settings.json").read_text())
    bundle = json.loads((wf / RUN / "bundle/bundle.json").read_text())["provenance"]["fr"]
    assert settings["shard_stages"]["acoustic"]["librosa"] == bundle["acoustic"]["params"]
    assert settings["languages"]["fr"]["text"] == bundle["text"]["params"]
    assert (wf / "logs/predict/rt/acoustic/000.log").exists() and (wf / "benchmarks/predict/rt/store/fr.tsv").exists()


def test_round_trip_through_the_dag_gives_the_runs_predictions(dag):
    wf, _, seconds = dag
    print(f"predict DAG on the tiny run: {seconds:.0f} s")
    rows = pd.read_csv(wf / TARGET)
    assert list(rows.columns) == ["segment_id", "video_id", "start", "end", "prediction", "reason"]
    want = pd.read_parquet(wf / RUN / "predictions.parquet")
    got = rows.set_index("segment_id").loc[want["segment_id"]]
    assert len(rows) == len(want) and got["reason"].isna().all()
    np.testing.assert_allclose(got["prediction"], want["y_pred"], rtol=0, atol=1e-5)  # CSV text, one batch
    # the stores the stage rules built hold the training store's features, bit for bit
    train = pq.read_table(wf / "results/store/fr.parquet").to_pandas().set_index("segment_id")
    new = pq.read_table(wf / "results/predict/rt/store/fr.parquet").to_pandas()
    assert sorted(new["segment_id"]) == sorted(want["segment_id"])
    for row in new.to_dict("records"):
        for col in FEATURES:
            a, b = row[col], train.loc[row["segment_id"], col]
            assert np.array_equal(*(map(np.stack, (a, b)) if col != "words" else (a, b))), (row["segment_id"], col)
    meta = json.loads((wf / f"{TARGET}.json").read_text())
    assert meta["bundle"] == f"{RUN}/bundle" and meta["model"] == "mult" and meta["manifest"] == "new.csv"


def test_the_cli_gives_the_same_output_as_the_dag(dag, tmp_path, monkeypatch):
    """The one-process path (`polysent predict`) and the cached path share the stage functions."""
    from polysent.cli import main

    wf, _, _ = dag
    monkeypatch.chdir(wf)
    assert (
        main(
            [
                "predict",
                "--bundle",
                f"{RUN}/bundle",
                "--manifest",
                "new.csv",
                "--out",
                str(tmp_path / "cli.csv"),
                "--work",
                str(tmp_path / "work"),
            ]
        )
        == 0
    )
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "cli.csv"), pd.read_csv(wf / TARGET))
    assert json.loads((tmp_path / "cli.csv.json").read_text()) == json.loads((wf / f"{TARGET}.json").read_text())


def test_editing_the_manifest_replans_that_entry_only(dag, tmp_path):
    wf, first, _ = dag
    wf = copy_finished_run(wf, tmp_path / "wf")
    done = planned_jobs(wf, *CONFIG, "--", "all", TARGET)
    assert not done, describe_jobs(done)  # a predict entry adds nothing to the main DAG
    man = pd.read_csv(wf / "new.csv")
    man.iloc[:-1].to_csv(wf / "new.csv", index=False)  # one segment fewer
    jobs = planned_jobs(wf, *CONFIG, "--", "all", TARGET)
    expected = {k for k, j in first.items() if j.rule != "bundle"}
    assert set(jobs) == expected, describe_jobs(jobs)
    assert "new.csv" in jobs[("predict_corpus", "name=rt")].reason


def test_a_mismatched_bundle_is_refused_before_any_stage_job(dag, tmp_path):
    """A bundle recording an acoustic sample rate that its own parameters do not give (e.g. made
    by another version): predict_corpus names the key and both values; no stage job starts."""
    wf, _, _ = dag
    wf = copy_finished_run(wf, tmp_path / "wf")
    shutil.copytree(wf / RUN / "bundle", wf / "badbundle")
    desc = json.loads((wf / "badbundle/bundle.json").read_text())
    desc["provenance"]["fr"]["acoustic"]["sample_rate"] = 16000
    (wf / "badbundle/bundle.json").write_text(json.dumps(desc))
    proc = snakemake(wf, "--cores", "2", *CONFIG, "--", "results/predict/bad.csv", check=False)
    log = (wf / "logs/predict/bad/corpus.log").read_text()
    assert proc.returncode != 0
    assert "acoustic.sample_rate: bundle 16000, new 22050" in log + proc.stderr
    assert not (wf / "results/predict/bad/media").exists() and not (wf / "logs/predict/bad/media").exists()


def test_an_unknown_name_is_refused_at_dag_build(dag):
    wf, _, _ = dag
    proc = snakemake(wf, "-n", *CONFIG, "--", "results/predict/nope.csv", check=False)
    assert proc.returncode != 0
    assert "no predict.nope entry in the config (configured: ['bad', 'rt'])" in proc.stdout + proc.stderr
