"""Bounded cost (adversarial cases): a label edited in the manifest re-runs no feature stage, a
setting nothing reads re-runs nothing (the long WAV analysed in blocks: tests/test_acoustic.py).

The re-run verdicts are dry runs on a copy of the finished tiny run (``tiny_run``, no DAG run
here); the rules they hold to are in :mod:`polysent.corpus.triggers`.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import SCHEMA_DIR, copy_finished_run, describe_jobs, planned_jobs
from polysent.config import complete, load_schema
from polysent.corpus import triggers
from test_adversarial import folder_workflow  # noqa: F401 (fixture)

TINY = ("--configfile", "config/tiny.yaml")
# Rules of the stages that read no label and no split: a label edit must plan none of them.
FEATURE_RULES = {
    "corpus_demo",
    "corpus_external",
    "media",
    "acoustic",
    "visual",
    "align_aeneas",
    "align_mfa",
    "translate",
    "text",
}


# --------------------------------------------------------------------------- digests (no DAG)


def _manifest(tmp_path, frame: pd.DataFrame):
    path = tmp_path / "manifest.parquet"
    frame.to_parquet(path)
    return path


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "segment_id": ["a_0", "a_1", "b_0"],
            "video_id": ["a", "a", "b"],
            "lang": ["fr", "fr", "es"],
            "split": ["train", "train", "test"],
            "start": [0.0, 2.0, 0.0],
            "end": [2.0, 4.0, 1.5],
            "transcript": ["bonjour", "merci", "hola"],
            "sentiment": np.array([1.0, -1.0, 0.5], np.float32),
            "happy": np.array([1.0, 0.0, 0.0], np.float32),
            "video_path": ["a.mp4", "a.mp4", "b.mp4"],
            "audio_path": ["", "", ""],
            "shard": np.array([0, 0, 1], np.int32),
        }
    )


def test_label_and_split_edits_keep_every_feature_digest(tmp_path, frame):
    before = {s: triggers.segments_digest(_manifest(tmp_path, frame), shard=s) for s in (0, 1)}
    edited = frame.copy()
    edited.loc[0, "sentiment"] = -3.0
    edited.loc[2, "happy"] = 1.0
    edited.loc[2, "split"] = "valid"
    edited = edited.iloc[::-1]  # row order is no content either
    after = {s: triggers.segments_digest(_manifest(tmp_path, edited), shard=s) for s in (0, 1)}
    assert after == before


def test_transcript_edit_changes_the_digest_of_its_shard_only(tmp_path, frame):
    path = _manifest(tmp_path, frame)
    before = {s: triggers.segments_digest(path, shard=s) for s in (0, 1)}
    by_lang = {lang: triggers.segments_digest(path, lang=lang) for lang in ("fr", "es")}
    frame.loc[1, "transcript"] = "merci beaucoup"
    frame.to_parquet(path)
    assert triggers.segments_digest(path, shard=0) != before[0]
    assert triggers.segments_digest(path, shard=1) == before[1]
    assert triggers.segments_digest(path, lang="fr") != by_lang["fr"]
    assert triggers.segments_digest(path, lang="es") == by_lang["es"]


def test_no_manifest_yet_has_no_digest(tmp_path):
    assert triggers.segments_digest(tmp_path / "missing.parquet", shard=0) is None


def _folder_config(tmp_path, frame: pd.DataFrame, **folder) -> dict:
    csv = tmp_path / "my.csv"
    frame.drop(columns=["shard", "audio_path"]).to_csv(csv, index=False)
    cfg = {"manifest": str(csv), "labels": ["happy"], **folder}
    return {
        "corpus": {"source": "folder", "folder": complete(cfg, "corpus", "folder")},
        "languages": ["fr", "es"],
        "seed": 3,
        "shards": 2,
    }


def _segments(tmp_path, frame: pd.DataFrame):
    """The corpus job's output for ``frame`` (a MANIFEST with the label column ``happy``)."""
    import pyarrow as pa

    from polysent import contracts

    table = pa.Table.from_pandas(frame, schema=contracts.manifest_schema(["happy"]), preserve_index=False)
    path = tmp_path / "segments.parquet"
    pq.write_table(contracts.check(table, contracts.MANIFEST), path)
    return path


def test_folder_label_edit_changes_no_corpus_param_and_reaches_the_manifest(tmp_path, frame):
    """The corpus job's params (with its manifest file ancient) do not see a label edit; the
    relabel step copies the new labels into the manifest, rows and other columns untouched."""
    from polysent.corpus import folder

    segments = _segments(tmp_path, frame)
    before = triggers.corpus_params(_folder_config(tmp_path, frame))
    edited = frame.copy()
    edited.loc[1, ["sentiment", "happy"]] = [2.5, 1.0]
    cfg = _folder_config(tmp_path, edited)
    assert triggers.corpus_params(cfg) == before
    out = folder.relabel(cfg["corpus"]["folder"], segments, tmp_path / "m.parquet", tmp_path / "qc.parquet")
    got = out.to_pandas()
    assert got["sentiment"].tolist() == [1.0, 2.5, 0.5] and got["happy"].tolist() == [1.0, 1.0, 0.0]
    assert got.drop(columns=["sentiment", "happy"]).equals(frame.drop(columns=["sentiment", "happy"]))
    text = frame.copy()
    text.loc[0, "transcript"] = "bonsoir"
    assert triggers.corpus_params(_folder_config(tmp_path, text)) != before


@pytest.mark.parametrize("on_invalid", ["fail", "drop"])
def test_folder_bad_label_edit_is_named_or_dropped_with_a_record(tmp_path, frame, on_invalid):
    from polysent.corpus import folder
    from polysent.corpus.checks import ManifestError

    segments = _segments(tmp_path, frame)
    edited = frame.copy()
    edited["happy"] = edited["happy"].astype(object)
    edited.loc[2, "happy"] = "lots"
    cfg = _folder_config(tmp_path, edited, on_invalid=on_invalid)["corpus"]["folder"]
    if on_invalid == "fail":
        with pytest.raises(ManifestError, match=r"my.csv:4: happy = 'lots' is not a number in \[0, 1\]"):
            folder.relabel(cfg, segments, tmp_path / "m.parquet", tmp_path / "qc.parquet")
        return
    out = folder.relabel(cfg, segments, tmp_path / "m.parquet", tmp_path / "qc.parquet")
    assert out.column("segment_id").to_pylist() == ["a_0", "a_1"]
    qc = pd.read_parquet(tmp_path / "qc.parquet")
    assert qc["segment_id"].tolist() == ["b_0"] and "happy = 'lots'" in qc["reason"][0]


def test_split_settings_are_no_corpus_param_when_the_folder_manifest_has_splits(tmp_path, frame):
    given = triggers.corpus_params(_folder_config(tmp_path, frame, splits=[0.5, 0.25, 0.25]))
    assert "splits" not in given["cfg"] and given["seed"] is None
    assert given == triggers.corpus_params(_folder_config(tmp_path, frame, splits=[0.8, 0.1, 0.1]))
    drawn = triggers.corpus_params(_folder_config(tmp_path, frame.drop(columns=["split"]), splits=[0.5, 0.25, 0.25]))
    assert drawn["cfg"]["splits"] == [0.5, 0.25, 0.25] and drawn["seed"] == 3
    # an empty split column is drawn too (as the corpus stage does)
    empty = triggers.corpus_params(_folder_config(tmp_path, frame.assign(split=""), splits=[0.5, 0.25, 0.25]))
    assert empty["cfg"]["splits"] == [0.5, 0.25, 0.25]


def test_probe_knobs_are_no_corpus_param_while_the_probe_is_off(tmp_path, frame):
    off = triggers.corpus_params(_folder_config(tmp_path, frame, probe_jobs=3))
    assert "probe_jobs" not in off["cfg"]
    on = triggers.corpus_params(_folder_config(tmp_path, frame, probe=True, probe_jobs=3))
    assert on["cfg"]["probe_jobs"] == 3


def test_unselected_backend_settings_are_dropped():
    schema = load_schema(SCHEMA_DIR)["properties"]["acoustic"]
    cfg = complete({}, "acoustic")
    kept = triggers.selected(cfg, schema)
    assert "opensmile" not in kept and kept["librosa"] == cfg["librosa"]
    other = triggers.selected({**cfg, "backend": "opensmile"}, schema)
    assert "librosa" not in other and "opensmile" in other


# --------------------------------------------------------------------------- dry runs on the tiny run


@pytest.fixture
def done(tiny_run, tmp_path):
    return copy_finished_run(tiny_run, tmp_path / "wf")


@pytest.mark.workflow
def test_label_edit_in_the_manifest_plans_no_feature_job(done):
    """Editing labels by hand in results/corpus/manifest.parquet plans the store, training and
    the report, and no corpus or feature job."""
    path = done / "results/corpus/manifest.parquet"
    table = pq.read_table(path)
    frame = table.to_pandas()
    frame.loc[frame.index[0], "sentiment"] = np.float32(-frame["sentiment"].iloc[0] or 1.5)
    pq.write_table(table.from_pandas(frame, schema=table.schema, preserve_index=False), path)
    jobs = planned_jobs(done, *TINY)
    rules = {j.rule for j in jobs.values()}
    assert "store" in rules and "train" in rules, describe_jobs(jobs)
    assert not rules & FEATURE_RULES, describe_jobs(jobs)


@pytest.mark.workflow
def test_transcript_edit_in_the_manifest_replans_its_shard(done):
    """The other side of the same rule: a hand edit of what a feature stage reads re-runs it."""
    path = done / "results/corpus/manifest.parquet"
    table = pq.read_table(path)
    frame = table.to_pandas()
    frame.loc[frame.index[0], "transcript"] = frame["transcript"].iloc[0] + " vraiment"
    pq.write_table(table.from_pandas(frame, schema=table.schema, preserve_index=False), path)
    jobs = planned_jobs(done, *TINY)
    shard = f"shard={int(frame['shard'].iloc[0]):03d}"
    per_shard = {"media", "acoustic", "visual", "align_aeneas"}
    planned = {(j.rule, j.wildcards) for j in jobs.values() if j.rule in per_shard}
    assert planned == {(rule, shard) for rule in per_shard}, describe_jobs(jobs)
    changed = {j.rule for j in jobs.values() if "Params have changed" in j.reason}
    assert {"media", "visual"} <= changed, describe_jobs(jobs)


@pytest.mark.workflow
@pytest.mark.parametrize(
    "overlay",
    [
        {"acoustic": {"opensmile": {"sr": 8000}}},  # backend librosa
        {"corpus": {"moseas": {"splits": [0.6, 0.2, 0.2]}}},  # source demo
        {"corpus": {"folder": {"splits": [0.6, 0.2, 0.2]}}},
        {"visual": {"openface": {"binary": "/opt/openface/FeatureExtraction"}}},  # backend landmarks
    ],
    ids=lambda o: json.dumps(o),
)
def test_unused_setting_plans_nothing(done, overlay):
    (done / "config/overlay.yaml").write_text(yaml.safe_dump(overlay))
    jobs = planned_jobs(done, "--configfile", "config/tiny.yaml", "config/overlay.yaml")
    assert not jobs, describe_jobs(jobs)


@pytest.mark.workflow
@pytest.mark.parametrize(
    "column, value, planned",
    [
        ("sentiment", "2.5", ["corpus_folder_labels"]),  # a label: the label step alone
        ("transcript", "bonsoir", ["corpus_external", "corpus_folder_labels"]),  # not a label
    ],
)
def test_folder_manifest_edit_plans_the_label_step_or_the_corpus_job(folder_workflow, tmp_path, column, value, planned):
    """On the folder corpus of tests/test_adversarial.py (its corpus stage run): editing a label in
    the folder manifest file plans only the step that copies labels in; any other edit plans the
    corpus job. (Downstream, on the tiny DAG of a folder corpus, the label edit planned 27 jobs:
    that step, store x2, qc_summary, train x5, train_run x10, the report; docs/BENCHMARKS.md.)"""
    from conftest import parse_dry_run, snakemake
    from test_adversarial import FOLDER_CONFIG

    wf = copy_finished_run(folder_workflow, tmp_path / "wf")
    frame = pd.read_csv(wf / "data/m.csv", dtype=str)
    frame.loc[0, column] = value
    frame.to_csv(wf / "data/m.csv", index=False)
    jobs = parse_dry_run(snakemake(wf, "-n", "results/corpus/manifest.parquet", *FOLDER_CONFIG).stdout)
    assert sorted(j.rule for j in jobs.values()) == planned, describe_jobs(jobs)
