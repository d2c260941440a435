"""The shared foundation: atomic writes, contracts, QC summary and threshold, sharding."""

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from polysent import contracts, io, qc
from polysent.corpus.sharding import shard_ids, shard_of


def _manifest(n=4, **overrides):
    data = {
        "segment_id": [f"v{i // 2}_{i % 2}" for i in range(n)],
        "video_id": [f"v{i // 2}" for i in range(n)],
        "lang": ["fr"] * n,
        "split": ["train"] * n,
        "start": np.arange(n, dtype="float64"),
        "end": np.arange(n, dtype="float64") + 0.5,
        "transcript": ["bonjour"] * n,
        "sentiment": np.zeros(n, dtype="float32"),
        "video_path": ["a.mp4"] * n,
        "audio_path": [""] * n,
        "shard": np.zeros(n, dtype="int32"),
        "happiness": np.zeros(n, dtype="float32"),
    }
    data.update(overrides)
    return pa.Table.from_pandas(pd.DataFrame(data), preserve_index=False)


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_parquet_writes_are_byte_identical_and_keep_provenance(tmp_path):
    table = _manifest()
    io.write_parquet(tmp_path / "a.parquet", table, provenance={"backend": "x", "n_fft": 512})
    io.write_parquet(tmp_path / "b.parquet", table, provenance={"n_fft": 512, "backend": "x"})
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert io.read_provenance(tmp_path / "a.parquet") == {"backend": "x", "n_fft": 512}


def test_manifest_contract_accepts_valid_and_names_label_columns():
    table = contracts.check(_manifest(), contracts.MANIFEST, "m.parquet")
    assert contracts.label_columns(table.schema) == ["happiness"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"segment_id": ["a", "a", "b", "c"]}, "m.parquet: duplicate segment_id values: ['a']"),
        ({"split": ["train", "dev", "test", "test"]}, "m.parquet: unknown split values ['dev']"),
        ({"end": np.array([0.0, 1.5, 2.5, 3.5])}, "m.parquet: segments with end <= start: ['v0_0']"),
        ({"sentiment": np.array([0, 4, 0, 0], dtype="float32")}, "sentiment must be finite"),
        ({"shard": np.zeros(4, dtype="int64")}, "column 'shard' is int64, expected int32"),
        ({"happiness": ["x"] * 4}, "extra column 'happiness' is large_string, expected one of float"),
    ],
)
def test_manifest_contract_errors_name_file_and_problem(overrides, message):
    with pytest.raises(contracts.ContractError, match=None) as err:
        contracts.check(_manifest(**overrides), contracts.MANIFEST, "m.parquet")
    assert message in str(err.value)


def test_missing_column_is_named():
    table = _manifest().drop(["transcript"])
    with pytest.raises(contracts.ContractError) as err:
        contracts.check(table, contracts.MANIFEST, "m.parquet")
    assert "missing column 'transcript' (string)" in str(err.value)


def test_projected_read_checks_the_projected_columns(tmp_path):
    path = tmp_path / "m.parquet"
    pq.write_table(_manifest(shard=np.zeros(4, dtype="int64")), path)
    ok = contracts.read(path, contracts.MANIFEST, columns=["segment_id", "video_id"])
    assert ok.column_names == ["segment_id", "video_id"]
    with pytest.raises(contracts.ContractError, match="column 'shard' is int64, expected int32"):
        contracts.read(path, contracts.MANIFEST, columns=["segment_id", "shard"])
    with pytest.raises(contracts.ContractError, match=r"missing column\(s\) \['speaker'\]"):
        contracts.read(path, contracts.MANIFEST, columns=["segment_id", "speaker"])
    pq.write_table(_manifest(segment_id=["a", "a", "b", "c"]), path)
    with pytest.raises(contracts.ContractError, match="duplicate segment_id"):
        contracts.read(path, contracts.MANIFEST, columns=["segment_id"])


@pytest.mark.parametrize("damage", ["truncate", "text"])
def test_corrupt_parquet_is_named_with_the_way_out(tmp_path, damage):
    path = tmp_path / "words.parquet"
    io.write_parquet(path, _manifest())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"segment_id,word\n")
    for reader in (lambda: contracts.read(path, contracts.MANIFEST), lambda: io.read_provenance(path)):
        with pytest.raises(io.CorruptFileError) as err:
            reader()
        assert f"file {path} is corrupt" in str(err.value)
        assert "delete it and re-run" in str(err.value)


def test_vector_columns_must_be_fixed_size_float32():
    good = pa.table(
        {
            "segment_id": ["a"],
            "kind": ["source"],
            "word_idx": pa.array([0], pa.int32()),
            "word": ["oui"],
            "oov": [False],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array([1.0, 2.0], pa.float32()), 2),
        }
    )
    contracts.check(good, contracts.TEXT_VECTORS, "t.parquet")
    bad = good.set_column(5, "vector", pa.array([[1.0, 2.0]], pa.list_(pa.float64())))
    with pytest.raises(contracts.ContractError, match="column 'vector' is list<item: double>"):
        contracts.check(bad, contracts.TEXT_VECTORS, "t.parquet")


def test_qc_schema_is_the_qc_contract():
    assert qc.QC_SCHEMA == contracts.QC.schema()


def test_qc_summary_counts_segments_and_video_level_failures(tmp_path):
    io.write_parquet(tmp_path / "manifest.parquet", _manifest(n=6))
    log_a = qc.QCLog("acoustic")
    log_a.add("empty audio", segment_id="v0_0", video_id="v0")
    log_a.add("empty audio again", segment_id="v0_0", video_id="v0")
    log_a.write(tmp_path / "qc_a.parquet")
    log_v = qc.QCLog("visual")
    log_v.add("video unreadable", video_id="v1")  # both segments of v1
    log_v.write(tmp_path / "qc_v.parquet")
    qc.QCLog("align").write(tmp_path / "qc_empty.parquet")
    summary = qc.summarise_run(
        tmp_path / "manifest.parquet",
        [tmp_path / "qc_a.parquet", tmp_path / "qc_v.parquet", tmp_path / "qc_empty.parquet"],
        tmp_path / "summary.csv",
        tmp_path / "records.csv",
        max_failure_rate=0.5,
    )
    rows = summary.set_index("stage")
    assert rows.loc["acoustic", "failed"] == 1 and rows.loc["acoustic", "total"] == 6
    assert rows.loc["visual", "failed"] == 2
    records = pd.read_csv(tmp_path / "records.csv")
    assert set(records.loc[records.stage == "visual", "segment_id"]) == {"v1_0", "v1_1"}


def test_qc_threshold_fails_with_summary_but_writes_evidence(tmp_path):
    io.write_parquet(tmp_path / "manifest.parquet", _manifest(n=4))
    log = qc.QCLog("media")
    for seg in ["v0_0", "v0_1"]:
        log.add("no audio stream", segment_id=seg, video_id="v0")
    log.write(tmp_path / "q.parquet")
    with pytest.raises(qc.QCThresholdExceeded) as err:
        qc.summarise_run(
            tmp_path / "manifest.parquet",
            [tmp_path / "q.parquet"],
            tmp_path / "s.csv",
            tmp_path / "r.csv",
            max_failure_rate=0.25,
        )
    assert "media: 2/4 failed (50.0%), most often: no audio stream" in str(err.value)
    assert (tmp_path / "s.csv").exists() and (tmp_path / "r.csv").exists()


def test_shards_are_stable_and_spread():
    ids = [f"video_{i}" for i in range(400)]
    first = [shard_of(v, 4) for v in ids]
    assert first == [shard_of(v, 4) for v in ids]
    counts = np.bincount(first, minlength=4)
    assert counts.min() > 60, counts
    assert shard_ids(3) == ["000", "001", "002"]
    # Adding videos never moves existing ones.
    assert [shard_of(v, 4) for v in ids[:100]] == first[:100]


def _metrics(**overrides):
    metrics = {
        "experiment": "mult_t_fr_fr",
        "seed": 1,
        "model": "mult",
        "task": "sentiment",
        "valid": {"mae": 1.0},
        "test": {"mae": 1.1, "n": 4},
    }
    return {k: v for k, v in {**metrics, **overrides}.items() if v is not None}


@pytest.mark.parametrize(
    "content, message",
    [
        (_metrics(seed="1"), "key 'seed' is str, expected int"),
        (_metrics(seed=True), "key 'seed' is bool, expected int"),
        (_metrics(test=None), "missing key 'test'"),
        ([_metrics()], "top level is list"),
    ],
)
def test_metrics_reader_rejects_a_mismatched_file_naming_it(tmp_path, content, message):
    path = tmp_path / "mult_t_fr_fr" / "seed1" / "metrics.json"
    io.write_json(path, content)
    with pytest.raises(contracts.ContractError) as err:
        contracts.read_metrics(path)
    assert str(err.value).startswith(f"{path}: not a valid metrics file") and message in str(err.value)


def test_metrics_reader_reads_a_valid_file_and_names_a_corrupt_one(tmp_path):
    path = tmp_path / "metrics.json"
    io.write_json(path, _metrics())
    assert contracts.read_metrics(path) == _metrics()
    path.write_text(path.read_text()[:20])  # a job killed mid-write by something else than polysent
    with pytest.raises(io.CorruptFileError, match=f"file {path} is corrupt or not a JSON file.*delete it"):
        contracts.read_metrics(path)


def _predictions(**overrides):
    table = pa.table(
        {
            "segment_id": ["a", "b"],
            "lang": ["fr", "fr"],
            "split": ["valid", "test"],
            "y_true": pa.array([1.0, -1.0], pa.float32()),
            "y_pred": pa.array([0.5, -0.5], pa.float32()),
        }
    )
    for name, column in overrides.items():
        table = table.set_column(table.schema.get_field_index(name), name, column)
    return table


def _decisions(**overrides):
    table = pa.table(
        {
            "segment_id": ["a"],
            "split": ["test"],
            "window": pa.array([0], pa.int32()),
            "modality": ["text"],
            "selected": pa.array([1], pa.int8()),
            "prob": pa.array([0.9], pa.float32()),
        }
    )
    for name, column in overrides.items():
        table = table.set_column(table.schema.get_field_index(name), name, column)
    return table


@pytest.mark.parametrize(
    "reader, table, message",
    [
        (
            contracts.read_predictions,
            _predictions(y_pred=pa.array([0.5, -0.5], pa.float64())),
            "extra column 'y_pred' is double, expected one of float",
        ),
        (contracts.read_predictions, _predictions().drop_columns(["split"]), "missing column 'split' (string)"),
        (contracts.read_decisions, _decisions(selected=pa.array([True])), "column 'selected' is bool, expected int8"),
    ],
    ids=["predictions-type", "predictions-missing", "decisions-type"],
)
def test_run_table_readers_reject_a_mismatched_file_naming_it(tmp_path, reader, table, message):
    path = tmp_path / "run.parquet"
    io.write_parquet(path, table)
    with pytest.raises(contracts.ContractError) as err:
        reader(path)
    assert str(err.value).startswith(f"{path}: not a valid") and message in str(err.value)


def test_run_table_readers_read_valid_files_and_name_corrupt_ones(tmp_path):
    for reader, table in ((contracts.read_predictions, _predictions()), (contracts.read_decisions, _decisions())):
        path = tmp_path / "run.parquet"
        io.write_parquet(path, table)
        assert reader(path).equals(table)
        path.write_bytes(path.read_bytes()[:50])
        with pytest.raises(io.CorruptFileError, match=f"file {path} is corrupt"):
            reader(path)
