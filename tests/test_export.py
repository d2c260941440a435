"""exporters: MMSA pkl and CMU-SDK csd round trips, CSD reader/import of video-keyed sequences."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pandas as pd

from polysent import export as E, store as S
from polysent.io import write_parquet
from test_store import LABELS, _inputs


def _store(tmp_path):
    man, words, ac, vis, text, text_tr = _inputs()
    table, _, meta = S.build_store(man, "fr", words, ac, vis, text, text_tr, "es", LABELS, {})
    meta["lang"] = "fr"
    write_parquet(tmp_path / "fr.parquet", table, provenance=meta)
    write_parquet(tmp_path / "align.parquet", __import__("pyarrow").Table.from_pandas(words, preserve_index=False))
    return table, meta, words


def test_mmsa_pkl_round_trip(tmp_path):
    table, meta, _ = _store(tmp_path)
    E.write_mmsa(tmp_path / "fr.parquet", tmp_path / "fr.pkl", seq_len=3)
    with open(tmp_path / "fr.pkl", "rb") as f:
        d = pickle.load(f)
    assert set(d) == {"train", "valid", "test", "config"}
    tr = d["train"]
    assert tr["id"] == ["s1"] and tr["raw_text"] == ["très bon"]
    assert tr["text"].shape == (1, 3, 4) and tr["audio"].shape == (1, 3, 3) and tr["vision"].shape == (1, 3, 1)
    assert tr["audio_lengths"] == [2] and tr["regression_labels"].tolist() == [1.0]
    assert np.allclose(tr["audio"][0, :2], S.to_arrays(table.column("acoustic"))[0])
    assert not tr["audio"][0, 2].any()  # zero padding at the end
    assert d["valid"]["id"] == ["s2"] and d["test"]["id"] == [] and d["test"]["text"].shape == (0, 3, 4)
    assert tr["happiness"].dtype == np.float32


def test_csd_round_trip_layout_and_import(tmp_path):
    table, meta, words = _store(tmp_path)
    paths = E.write_csds(tmp_path / "fr.parquet", [tmp_path / "align.parquet"], tmp_path / "csd")
    assert {p.name for p in paths} == {"text.csd", "acoustic.csd", "visual.csd", "words.csd", "labels.csd"}
    with h5py.File(tmp_path / "csd" / "acoustic.csd") as h5:  # the SDK's exact layout
        assert list(h5.keys()) == ["polysent_fr_acoustic"]
        g = h5["polysent_fr_acoustic"]
        assert set(g) == {"data", "metadata"} and set(g["data"]["s1"]) == {"features", "intervals"}
        assert h5py.check_string_dtype(g["metadata"]["root name"].dtype) is not None
    root, data, md = E.read_csd(tmp_path / "csd" / "acoustic.csd")
    assert root == "polysent_fr_acoustic" and md["dimension names"] == ["a0", "a1", "a2"]
    assert np.allclose(data["s1"]["features"], S.to_arrays(table.column("acoustic"))[0])
    assert np.allclose(data["s2"]["intervals"], words[words.segment_id == "s2"][["start", "end"]])
    _, wd, _ = E.read_csd(tmp_path / "csd" / "words.csd")
    assert [w[0].decode() for w in wd["s1"]["features"]] == ["très", "bon"]
    _, ld, lm = E.read_csd(tmp_path / "csd" / "labels.csd")
    assert lm["dimension names"] == ["sentiment", *LABELS] and ld["s2"]["features"][0, 0] == -2.0
    frames = E.csd_to_frames(tmp_path / "csd" / "acoustic.csd")
    assert list(frames.columns) == ["segment_id", "time", "a0", "a1", "a2"] and len(frames) == 4


def test_csd_reader_cuts_video_keyed_sequences_and_checks_integrity(tmp_path):
    t = np.arange(0, 10, 0.5)
    E.write_csd(
        tmp_path / "of.csd",
        "OpenFace_2",
        {"vid": (np.c_[t, -t].astype(np.float32), np.c_[t, t + 0.5])},
        {"dimension names": ["AU12_r", "AU04_r"]},
    )
    man = pd.DataFrame({"segment_id": ["vid_0"], "video_id": ["vid"], "start": [2.0], "end": [3.0]})
    fr = E.csd_to_frames(tmp_path / "of.csd", man)
    assert fr["segment_id"].unique().tolist() == ["vid_0"]
    assert fr["time"].tolist() == [0.0, 0.5, 1.0] and fr["AU12_r"].tolist() == [2.0, 2.5, 3.0]
    with h5py.File(tmp_path / "bad.csd", "w") as h5:
        e = h5.create_group("x/data/v")
        e["features"], e["intervals"] = np.zeros((3, 2)), np.zeros((2, 2))
        h5.create_group("x/metadata")
    import pytest

    with pytest.raises(ValueError, match="integrity"):
        E.read_csd(tmp_path / "bad.csd")
