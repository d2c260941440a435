"""`results/predict/{name}.csv`: rule `predict` runs the same entry function as `polysent predict`.

On a copy of the finished tiny run, a predict entry naming one of its runs (`bundle:
mult_t_fr_fr/seed1`) and its own valid/test videos as a manifest of new videos: the DAG plans the
bundle and one predict job, nothing of the main DAG; the predictions equal the run's
`predictions.parquet`, and the CLI gives the same rows and the same metadata (every setting, the
text seed included); editing the predict manifest re-plans that entry only; a bundle whose settings
the stages cannot reproduce is refused with the differing keys before any stage runs.
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


def test_the_dag_runs_one_predict_job_for_the_entry(dag):
    wf, jobs, _ = dag
    assert {j.rule for j in jobs.values()} == {"bundle", "predict"}, describe_jobs(jobs)
    assert all(o.startswith("results/predict/rt") for j in jobs.values() if j.rule != "bundle" for o in j.outputs)
    # the stages ran with the bundle's settings, recorded in the output's metadata
    meta = json.loads((wf / f"{TARGET}.json").read_text())
    bundle = json.loads((wf / RUN / "bundle/bundle.json").read_text())["provenance"]["fr"]
    assert meta["stage_settings"]["fr"]["acoustic"]["librosa"] == bundle["acoustic"]["params"]
    assert meta["stage_settings"]["fr"]["text"] == bundle["text"]["params"]
    assert meta["settings"]["text_seeds"] == {
        "fr": {"seed": 0, "source": "default 0 (the bundle records no text seed)"}
    }
    assert (wf / "logs/predict/rt.log").exists() and (wf / "results/predict/rt/store/fr.parquet").exists()


def test_round_trip_through_the_dag_gives_the_runs_predictions(dag):
    wf, _, seconds = dag
    print(f"predict DAG on the tiny run: {seconds:.0f} s")
    rows = pd.read_csv(wf / TARGET)
    assert [c for c in rows.columns if not c.startswith("ood_")] == [
        "segment_id",
        "video_id",
        "start",
        "end",
        "prediction",
        "reason",
    ]
    want = pd.read_parquet(wf / RUN / "predictions.parquet")
    got = rows.set_index("segment_id").loc[want["segment_id"]]
    assert len(rows) == len(want) and got["reason"].isna().all()
    np.testing.assert_allclose(got["prediction"], want["y_pred"], rtol=0, atol=1e-5)  # CSV text, one batch
    # the rebuilt store holds the training store's features, bit for bit
    train = pq.read_table(wf / "results/store/fr.parquet").to_pandas().set_index("segment_id")
    new = pq.read_table(wf / "results/predict/rt/store/fr.parquet").to_pandas()
    assert sorted(new["segment_id"]) == sorted(want["segment_id"])
    for row in new.to_dict("records"):
        for col in FEATURES:
            a, b = row[col], train.loc[row["segment_id"], col]
            assert np.array_equal(*(map(np.stack, (a, b)) if col != "words" else (a, b))), (row["segment_id"], col)
    meta = json.loads((wf / f"{TARGET}.json").read_text())
    assert meta["bundle"] == f"{RUN}/bundle" and meta["model"] == "mult" and meta["manifest"] == "new.csv"
    assert meta["not_predicted"] == []


def test_the_cli_gives_the_same_output_and_settings_as_the_dag(dag, tmp_path, monkeypatch):
    from polysent.cli import main

    wf, _, _ = dag
    monkeypatch.chdir(wf)
    argv = ["predict", "--bundle", f"{RUN}/bundle", "--manifest", "new.csv", "--out", str(tmp_path / "cli.csv")]
    assert main([*argv, "--work", str(tmp_path / "work")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "cli.csv"), pd.read_csv(wf / TARGET))
    assert json.loads((tmp_path / "cli.csv.json").read_text()) == json.loads((wf / f"{TARGET}.json").read_text())


def test_cli_options_and_a_config_entry_give_the_same_entry():
    """Every setting the CLI takes is a key of the workflow's predict entry, completed by the same schema."""
    from polysent.cli import build_parser
    from polysent.predict import entry_settings
    from polysent.predict.command import entry_of

    argv = ["predict", "--bundle", "b", "--media", "talk.mp4", "--out", "p.csv", "--text-seed", "7", "--threads", "2"]
    argv += ["--segment", "min_segment=0.1", "--asr", "chunk=20", "--pseudo-word", "0.3", "--lang", "es"]
    entry = {
        "media": "talk.mp4",
        "lang": "es",
        "text_seed": 7,
        "threads": 2,
        "segment": {"min_segment": 0.1},
        "asr": {"chunk": 20},
        "pseudo_word": 0.3,
    }
    assert entry_of(build_parser().parse_args(argv)) == entry_settings(entry)


def test_editing_the_manifest_replans_that_entry_only(dag, tmp_path):
    wf, first, _ = dag
    wf = copy_finished_run(wf, tmp_path / "wf")
    done = planned_jobs(wf, *CONFIG, "--", "all", TARGET)
    assert not done, describe_jobs(done)  # a predict entry adds nothing to the main DAG
    man = pd.read_csv(wf / "new.csv")
    man.iloc[:-1].to_csv(wf / "new.csv", index=False)  # one segment fewer
    jobs = planned_jobs(wf, *CONFIG, "--", "all", TARGET)
    assert {j.rule for j in jobs.values()} == {"predict"}, describe_jobs(jobs)
    assert "new.csv" in jobs[("predict", "name=rt")].reason


def test_a_mismatched_bundle_is_refused_before_any_stage(dag, tmp_path):
    """A bundle recording an acoustic sample rate that its own parameters do not give (e.g. made
    by another version): rule predict names the key and both values; no stage runs."""
    wf, _, _ = dag
    wf = copy_finished_run(wf, tmp_path / "wf")
    shutil.copytree(wf / RUN / "bundle", wf / "badbundle")
    desc = json.loads((wf / "badbundle/bundle.json").read_text())
    desc["provenance"]["fr"]["acoustic"]["sample_rate"] = 16000
    (wf / "badbundle/bundle.json").write_text(json.dumps(desc))
    proc = snakemake(wf, "--cores", "2", *CONFIG, "--", "results/predict/bad.csv", check=False)
    log = (wf / "logs/predict/bad.log").read_text()
    assert proc.returncode != 0
    assert "acoustic.sample_rate: bundle 16000, new 22050" in log + proc.stderr
    assert "media: " not in log and not (wf / "results/predict/bad/media").exists()


def test_an_unknown_name_is_refused_at_dag_build(dag):
    wf, _, _ = dag
    proc = snakemake(wf, "-n", *CONFIG, "--", "results/predict/nope.csv", check=False)
    assert proc.returncode != 0
    assert "no predict.nope entry in the config (configured: ['bad', 'rt'])" in proc.stdout + proc.stderr
