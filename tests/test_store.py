"""store: per-word pooling (paper's rule, widening, missing faces), layout, translation columns,
QC accounting, and the finished demo stores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from polysent import store as S, text as T
from polysent.io import write_parquet

LABELS = ["happiness", "fear"]


def test_pool_mean_of_frames_inside_interval_ignoring_nan():
    t = np.array([0.0, 0.1, 0.2, 0.3])
    f = np.array([[1.0], [np.nan], [3.0], [5.0]], np.float32)
    out, miss = S.pool(t, f, np.array([0.0, 0.15, 0.9]), np.array([0.2, 0.3, 1.0]))
    assert out[:, 0].tolist() == [2.0, 4.0, 0.0] and miss.tolist() == [False, False, True]


def test_short_words_are_widened_by_min_duration():
    s, e = S.widen(np.array([0.0, 1.0]), np.array([0.01, 1.5]), 0.04)
    assert np.allclose(e, [0.05, 1.5])
    t = np.array([0.03])  # a frame just after a 10 ms word: found only thanks to widening
    out, miss = S.pool(t, np.ones((1, 2), np.float32), s[:1], e[:1])
    assert not miss[0]


def test_retime_is_proportional_to_length_over_the_span():
    s, e = S.retime(["a", "bbb"], 1.0, 3.0)
    assert np.allclose(s, [1.0, 1.666666]) and np.allclose(e, [1.666666, 3.0])


def _inputs():
    man = pd.DataFrame(
        {
            "segment_id": ["s1", "s2", "s3", "x1"],
            "video_id": ["v", "v", "w", "z"],
            "lang": ["fr", "fr", "fr", "es"],
            "split": ["train", "valid", "test", "train"],
            "sentiment": np.array([1.0, -2.0, 0.5, 0.0], np.float32),
            "happiness": np.float32(1),
            "fear": np.float32(0),
        }
    )
    words = pd.DataFrame(
        {
            "segment_id": ["s1", "s1", "s2", "s2"],
            "word_idx": [0, 1, 0, 1],
            "word": ["très", "bon", "pas", "bon"],
            "start": [0.0, 0.5, 0.0, 0.6],
            "end": [0.4, 1.0, 0.5, 0.61],
        }
    )
    ac = pd.DataFrame({"segment_id": ["s1"] * 11 + ["s2"] * 11, "time": list(np.arange(11) / 10) * 2})
    for k in range(3):
        ac[f"a{k}"] = np.float32(ac["time"] * (k + 1))
    vis = ac[["segment_id", "time"]].copy()
    vis["success"] = vis["time"] < 0.45  # the face is lost after 0.45 s
    vis["confidence"] = np.float32(1)
    vis["v0"] = np.where(vis["success"], 1.0, np.nan).astype(np.float32)
    vec = lambda n: [np.full(4, i, np.float32) for i in range(n)]  # noqa: E731
    text = pd.DataFrame(
        {
            "segment_id": words["segment_id"],
            "kind": "source",
            "word_idx": words["word_idx"],
            "word": words["word"],
            "vector": vec(4),
        }
    )
    text_tr = pd.DataFrame(
        {
            "segment_id": ["s1", "s1", "s1"],
            "kind": "translation",
            "word_idx": [0, 1, 2],
            "word": ["muy", "muy", "bueno"],
            "vector": vec(3),
        }
    )
    return man, words, ac, vis, text, text_tr


def test_build_store_layout_qc_and_translation():
    man, words, ac, vis, text, text_tr = _inputs()
    table, qc, meta = S.build_store(man, "fr", words, ac, vis, text, text_tr, "es", LABELS, {})
    assert table.column("segment_id").to_pylist() == ["s1", "s2"]
    assert {r["segment_id"]: r["reason"] for r in qc.records} == {"s3": "no word alignment (see qc/align)"}
    assert meta["dims"] == {"acoustic": 3, "visual": 1, "text": 4}
    assert meta["feature_names"]["visual"] == ["v0"]
    assert table.schema.field("visual").type == pa.list_(pa.list_(pa.float32(), 1))
    assert table.schema.field("happiness").type == pa.float32()
    row = {k: v for k, v in zip(table.column_names, [c[0].as_py() for c in table.columns])}
    assert row["words"] == ["très", "bon"] and row["tr_lang"] == "es" and len(row["words_tr"]) == 3
    ac1 = S.to_arrays(table.column("acoustic"))[0]
    assert np.allclose(ac1[:, 0], [0.2, 0.75])  # mean of frames 0..0.4 and 0.5..1.0
    vis1 = S.to_arrays(table.column("visual"))
    assert vis1[0][0, 0] == 1.0 and vis1[0][1, 0] == 0.0  # 2nd word: no face → zero-imputed
    assert meta["stats"]["imputed_words"]["visual"] == 2  # s1 word 2, s2 word 2
    assert S.to_arrays(table.column("text_tr"))[0].shape == (3, 4)
    assert S.to_arrays(table.column("visual_tr"))[0].shape == (3, 1)
    assert S.to_arrays(table.column("text_tr"))[1].shape == (0, 4)  # s2 has no translation
    assert table.column("tr_lang")[1].as_py() is None


def test_missing_frames_drop_policy_records_qc():
    man, words, ac, vis, text, text_tr = _inputs()
    table, qc, _ = S.build_store(man, "fr", words, ac, vis, text, text_tr, "es", LABELS, {"missing_frames": "drop"})
    assert table.num_rows == 0
    assert {r["segment_id"] for r in qc.records} == {"s1", "s2", "s3"}
    assert any("visual: 1 of 2" in r["reason"] for r in qc.records)


def _qc(*records):
    return pd.DataFrame(records, columns=["segment_id", "video_id", "stage", "reason"])


def test_segments_with_an_earlier_blocking_qc_record_are_left_out_with_their_own_row():
    man, words, ac, vis, text, text_tr = _inputs()
    prior = _qc(
        ("s1", "v", "media", "segment ends at 9.000 s but the audio lasts 2.000 s"),
        ("s1", "v", "visual", "no face detected in any of its 20 frames"),
        ("x1", "z", "acoustic", "no frames"),  # another language: not this store's business
        ("s3", "w", "align", "aeneas: failed"),
    )  # align: the store's own 'no word alignment'
    blocked = S.blocking_records(prior, man, ["media", "acoustic", "visual"])
    assert blocked["s1"] == (
        "media QC: segment ends at 9.000 s but the audio lasts 2.000 s; visual QC: "
        "no face detected in any of its 20 frames (store.exclude_qc_from)"
    )
    assert set(blocked) == {"s1", "x1"}
    table, qc, meta = S.build_store(man, "fr", words, ac, vis, text, text_tr, "es", LABELS, {}, blocked)
    assert table.column("segment_id").to_pylist() == ["s2"]  # the good segment stays
    reasons = {r["segment_id"]: r["reason"] for r in qc.records}
    assert reasons == {"s1": f"excluded: {blocked['s1']}", "s3": "no word alignment (see qc/align)"}
    assert meta["stats"]["segments"] == 1
    # Only the configured stages block: without visual, the face-less segment would stay if its
    # media were fine.
    assert S.blocking_records(prior.iloc[1:2], man, ["media", "acoustic"]) == {}


def test_a_video_level_qc_record_blocks_every_segment_of_its_video():
    man = _inputs()[0]
    blocked = S.blocking_records(_qc((None, "v", "acoustic", "unreadable audio")), man, ["acoustic"])
    assert sorted(blocked) == ["s1", "s2"] and blocked["s2"].startswith("acoustic QC: unreadable audio")


def test_store_excludes_media_acoustic_visual_by_default():
    from polysent.config import complete

    assert complete(None, "store")["exclude_qc_from"] == ["media", "acoustic", "visual"]


def test_read_store_round_trip_and_contract(tmp_path):
    man, words, ac, vis, text, text_tr = _inputs()
    table, _, meta = S.build_store(man, "fr", words, ac, vis, text, text_tr, "es", LABELS, {})
    write_parquet(tmp_path / "fr.parquet", table, provenance=meta)
    back, m2 = S.read_store(tmp_path / "fr.parquet")
    assert back.equals(table.replace_schema_metadata(back.schema.metadata)) and m2["dims"] == meta["dims"]
    write_parquet(tmp_path / "bad.parquet", table.drop_columns(["text_tr"]))
    with pytest.raises(ValueError, match="bad.parquet: not a valid feature_store store: missing column 'text_tr'"):
        S.read_store(tmp_path / "bad.parquet")


def _store_table():
    man, words, ac, vis, text, text_tr = _inputs()
    return S.build_store(man, "fr", words, ac, vis, text, text_tr, "es", LABELS, {})[0]


@pytest.mark.parametrize(
    "damage, messages",
    [
        (
            lambda t: t.set_column(
                t.schema.get_field_index("sentiment"), "sentiment", t.column("sentiment").cast(pa.float64())
            ),
            ["column 'sentiment' is double, expected float"],
        ),
        (
            lambda t: t.set_column(
                t.schema.get_field_index("visual"),
                "visual",
                pa.array([[[0.0]]] * t.num_rows, pa.list_(pa.list_(pa.float64()))),
            ),
            ["column 'visual' is list<", "double>>, expected list<fixed_size_list<float32>>"],
        ),
        (lambda t: pa.concat_tables([t, t.slice(0, 1)]), ["duplicate segment_id values: ['s1']"]),
    ],
    ids=["label-type", "sequence-type", "duplicate-segment"],
)
def test_every_store_reader_rejects_a_mismatched_store_naming_it(tmp_path, damage, messages):
    """The store's readers (training's data.samples_from_store, export's and the bundle's store.read_store)
    check contracts.FEATURE_STORE and name the file; the writer refuses such a table too."""
    from polysent import contracts, data

    path = tmp_path / "fr.parquet"
    write_parquet(path, damage(_store_table()))
    for reader in (S.read_store, data.samples_from_store):
        with pytest.raises(contracts.ContractError) as err:
            reader(path)
        assert str(err.value).startswith(f"{path}: ")
        assert all(m in str(err.value) for m in messages)
    with pytest.raises(contracts.ContractError) as err:
        contracts.check(damage(_store_table()), contracts.FEATURE_STORE, "out.parquet")
    assert str(err.value).startswith("out.parquet: ") and messages[-1] in str(err.value)


def test_a_corrupt_store_is_named_with_the_way_out(tmp_path):
    from polysent import data
    from polysent.io import CorruptFileError

    path = tmp_path / "fr.parquet"
    write_parquet(path, _store_table())
    path.write_bytes(path.read_bytes()[:200])
    for reader in (S.read_store, data.samples_from_store):
        with pytest.raises(CorruptFileError, match=f"file {path} is corrupt.*delete it and re-run"):
            reader(path)


@pytest.mark.workflow
def test_demo_stores_account_for_every_segment(tiny_run):
    """Every manifest segment is in its language's store or in a QC file with a reason."""
    import glob

    res = tiny_run / "results"
    man = pd.read_parquet(res / "corpus" / "manifest.parquet")
    qc = pd.concat([pd.read_parquet(p) for p in glob.glob(str(res / "qc" / "*" / "*.parquet"))])
    visual_dim = len(
        [
            c
            for c in pd.read_parquet(next((res / "visual").glob("*.parquet"))).columns
            if c not in ("segment_id", "time", "success", "confidence")
        ]
    )
    for lang, part in man.groupby("lang"):
        table, meta = S.read_store(res / "store" / f"{lang}.parquet")
        stored = set(table.column("segment_id").to_pylist())
        missing = set(part["segment_id"]) - stored
        assert missing <= set(qc["segment_id"]), sorted(missing - set(qc["segment_id"]))[:5]
        text_dim = pq.read_schema(res / "text" / f"{lang}.parquet").field("vector").type.list_size
        assert meta["dims"] == {"text": text_dim, "acoustic": 25, "visual": visual_dim}
        assert meta["text_encoder"]["encoder"] == "use" and meta["text_encoder"]["dim"] == text_dim == 512
        assert meta["text_encoder"]["model"]["weights_sha256"] == T.use_model_info()["weights_sha256"]
        assert table.num_rows >= 0.5 * len(part)


@pytest.mark.workflow
def test_store_stage_leaves_out_segments_blocked_by_earlier_qc_files(tiny_run, tmp_path):
    """The stage entry point reads the earlier stages' QC files (as the store rule passes them):
    the blocked segments get store QC rows, every other segment is stored exactly as in the DAG."""
    from polysent.qc import QCLog

    res = tiny_run / "results"
    dag, _ = S.read_store(res / "store" / "fr.parquet")
    dag = dag.to_pandas()
    seg, other = dag.segment_id.iloc[0], dag.video_id[dag.video_id != dag.video_id.iloc[0]].iloc[0]
    media, visual = QCLog("media"), QCLog("visual")
    media.add("segment ends at 9.000 s but the audio lasts 2.000 s (tolerance 0.1 s)", seg, dag.video_id.iloc[0])
    visual.add("no face in the whole video", None, other)  # video-level: all its segments
    media.write(tmp_path / "qc/media/000.parquet")
    visual.write(tmp_path / "qc/visual/000.parquet")
    args = dict(
        manifest=res / "corpus/manifest.parquet",
        lang="fr",
        align_paths=sorted(res.glob("align/*.parquet")),
        acoustic_paths=sorted(res.glob("acoustic/*.parquet")),
        visual_paths=sorted(res.glob("visual/*.parquet")),
        text_path=res / "text/fr.parquet",
        text_tr_path=None,
        tr_lang=None,
        translate_path=None,
    )
    S.run_language(
        **args,
        out=tmp_path / "fr.parquet",
        qc_path=tmp_path / "qc.parquet",
        cfg={},
        prior_qc_paths=[tmp_path / "qc/media/000.parquet", tmp_path / "qc/visual/000.parquet"],
    )
    got = S.read_store(tmp_path / "fr.parquet")[0].to_pandas()
    blocked = {seg} | set(dag.segment_id[dag.video_id == other])
    assert set(got.segment_id) == set(dag.segment_id) - blocked and len(got) > 0
    qc = pd.read_parquet(tmp_path / "qc.parquet").set_index("segment_id")["reason"]
    assert set(qc.index) == blocked
    assert qc[seg] == (
        "excluded: media QC: segment ends at 9.000 s but the audio lasts 2.000 s (tolerance 0.1 s) "
        "(store.exclude_qc_from)"
    )
    keep = dag.set_index("segment_id").loc[got.segment_id]
    for col in ("words", "text", "visual", "acoustic"):
        assert all(
            np.array_equal(np.stack(a), np.stack(b)) if len(a) else len(b) == 0 for a, b in zip(got[col], keep[col])
        ), col
    # with exclude_qc_from: [] the same QC files block nothing
    S.run_language(
        **args,
        out=tmp_path / "all.parquet",
        qc_path=tmp_path / "qc_all.parquet",
        cfg={"exclude_qc_from": []},
        prior_qc_paths=[tmp_path / "qc/media/000.parquet", tmp_path / "qc/visual/000.parquet"],
    )
    assert set(S.read_store(tmp_path / "all.parquet")[0].column("segment_id").to_pylist()) == set(dag.segment_id)
