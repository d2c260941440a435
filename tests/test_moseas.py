"""CMU-MOSEAS source on a fake release tree (real CSV/transcript formats, real mp4s) served by a
loopback server that injects 500s, timeouts, resets, truncated bodies and 404s."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from polysent import contracts
from polysent.corpus import moseas
from polysent.corpus.sharding import shard_of
from polysent.corpus.validate import ManifestError
from test_moseas_support import ATTRS, VIDEOS, FaultServer, moseas_config, tiny_videos, write_fake_moseas  # noqa: F401

URL = "/cache/multilingual/{language}/data/{batch}/Videos/{video_id}{ext}"


def _path(vid):
    for lang, vids in VIDEOS.items():
        for v, _ in vids:
            if v == vid:
                from test_moseas_support import LANG_DIR

                language, batch = LANG_DIR[lang]
                return f"/cache/multilingual/{language}/data/{batch}/Videos/{vid}.mp4"
    raise KeyError(vid)


def _build(tmp_path, cfg, seed=5, shards=3):
    out = tmp_path / "results"
    table = moseas.build(
        cfg,
        ["fr", "es"],
        seed,
        shards,
        out / "corpus/manifest.parquet",
        out / "qc/corpus/all.parquet",
        out / "corpus/downloads.csv",
        out / "corpus/moseas_annotations.parquet",
        out / "corpus/media",
    )
    return table, out


def test_parse_video_field_handles_underscores_and_dashes():
    assert moseas.parse_video_field("/cache/multilingual/french/data/FR_B1_B2/aB_cD_eF_gH_12_0:00:31.mp4") == (
        "aB_cD_eF_gH",
        12,
        "FR_B1_B2",
    )
    assert moseas.parse_video_field("-ybgknUOTpd_0") == ("-ybgknUOTpd", 0, "")
    assert moseas.parse_video_field("/x/short_1") is None


def test_pipeline_with_faulty_server(tmp_path, tiny_videos):
    root = tmp_path / "moseas"
    truth = write_fake_moseas(root)
    # One video from a local mirror, the rest over HTTP with faults; two permanently missing.
    local = root / "french" / "videos" / "9HYvUk161nA.mp4"
    local.parent.mkdir(parents=True)
    local.write_bytes(tiny_videos["9HYvUk161nA"])
    files = {_path(v): b for v, b in tiny_videos.items() if v not in ("aB_cD_eF_gH", "Zz_9-8_7xYw", "9HYvUk161nA")}
    faults = {
        _path("HfTLQqNN_nM"): ["500", "timeout", "truncate"],
        _path("-ybgknUOTpd"): ["reset", "503", "truncate"],
        _path("2AnMJ7DAUhE"): ["truncate", "timeout"],
    }
    with FaultServer(files, faults=faults, status={_path("Zz_9-8_7xYw"): 403}) as srv:
        cfg = moseas_config(root, srv.base + URL, min_success_rate=0.5)
        table, out = _build(tmp_path, cfg)
        assert srv.count(_path("9HYvUk161nA")) == 0  # the local mirror came first

    contracts.check(table, contracts.MANIFEST)
    m = table.to_pandas()
    # Every recoverable video present and byte-identical; manifest points at it.
    for vid in ("HfTLQqNN_nM", "-ybgknUOTpd", "2AnMJ7DAUhE", "9HYvUk161nA"):
        lang = truth[f"{vid}_0"]["lang"]
        path = out / "corpus/media" / lang / f"{vid}.mp4"
        assert path.read_bytes() == tiny_videos[vid]
        assert set(m.loc[m.video_id == vid, "video_path"]) == {str(path)}
    assert not list((out / "corpus/media").rglob("*.part"))
    # Permanent failures: dropped from the manifest, in QC with a reason, per segment.
    qc = pd.read_parquet(out / "qc/corpus/all.parquet")
    lost = {"aB_cD_eF_gH_0", "aB_cD_eF_gH_1", "Zz_9-8_7xYw_0"}
    assert set(qc.segment_id) == lost and not lost & set(m.segment_id)
    assert (qc.stage == "corpus").all()
    r = dict(zip(qc.segment_id, qc.reason))
    assert (
        r["Zz_9-8_7xYw_0"] == "media unavailable (permanent): local: not in local folder "
        f"({root}/spanish/videos/Zz_9-8_7xYw.mp4); http: HTTP 403 Forbidden"
    )
    assert r["aB_cD_eF_gH_0"].endswith("http: HTTP 404 Not Found")
    # Labels: the paper's aggregation (mean sentiment; attribute = more than one tick).
    assert set(m.segment_id) == set(truth) - lost
    for row in m.itertuples(index=False):
        t = truth[row.segment_id]
        assert row.sentiment == pytest.approx(t["sentiment"], abs=1e-6)
        assert row.lang == t["lang"] and row.start == pytest.approx(t["start"]) and row.end == pytest.approx(t["end"])
        for a in ATTRS:
            assert getattr(row, a) == t[a], (row.segment_id, a)
        assert row.shard == shard_of(row.video_id, 3)
    assert {"nucléiques"} <= set(" ".join(m.transcript).split())
    assert set(m.split) <= {"train", "valid", "test"}
    assert m.groupby("video_id").split.nunique().max() == 1  # split by video
    # Reports: downloads per video, annotations with the attention check.
    dl = pd.read_csv(out / "corpus/downloads.csv")
    assert len(dl) == 6 and dl.ok.sum() == 4
    assert dl.set_index("key").loc["HfTLQqNN_nM", "attempts"] == 1 + 4  # local miss + 3 faults + success
    ann = pd.read_parquet(out / "corpus/moseas_annotations.parquet")
    assert len(ann) == 3 * len(truth) and set(ann.secret_word1) == {"banane"}


def test_same_inputs_give_identical_manifest_bytes(tmp_path, tiny_videos):
    root = tmp_path / "moseas"
    write_fake_moseas(root)
    files = {_path(v): b for v, b in tiny_videos.items()}
    with FaultServer(files) as srv:
        cfg = moseas_config(root, srv.base + URL)
        _, out1 = _build(tmp_path / "a", cfg)
        _, out2 = _build(tmp_path / "b", cfg)
    # Paths differ by run folder, so compare the tables minus the path column.
    t1 = pq.read_table(out1 / "corpus/manifest.parquet").drop(["video_path"])
    t2 = pq.read_table(out2 / "corpus/manifest.parquet").drop(["video_path"])
    assert t1.equals(t2) and t1.num_rows == sum(len(s) for vids in VIDEOS.values() for _, s in vids)
    # A video that fails to download moves no other video to another split.
    with FaultServer({p: b for p, b in files.items() if "2AnMJ7DAUhE" not in p}) as srv:
        cfg = moseas_config(root, srv.base + URL, min_success_rate=0.5)
        t3, _ = _build(tmp_path / "c", cfg)
    full = dict(zip(t1.column("segment_id").to_pylist(), t1.column("split").to_pylist()))
    part = dict(zip(t3.column("segment_id").to_pylist(), t3.column("split").to_pylist()))
    assert len(part) == len(full) - 2 and all(full[k] == v for k, v in part.items())


def test_min_success_rate_fails_loudly(tmp_path, tiny_videos):
    root = tmp_path / "moseas"
    write_fake_moseas(root)
    with FaultServer({}) as srv:  # everything 404
        cfg = moseas_config(root, srv.base + URL, min_success_rate=0.9)
        with pytest.raises(Exception, match=r"only 0.0% of 6 media files arrived"):
            _build(tmp_path, cfg)
    qc = pd.read_parquet(tmp_path / "results/qc/corpus/all.parquet")
    assert len(qc) == 10  # every segment recorded before failing


def test_bad_release_files_are_reported_together(tmp_path):
    root = tmp_path / "moseas"
    write_fake_moseas(root)
    tdir = root / "french/data/FR_B1_B2/Transcript/Transcript_timestamped_sentences"
    (tdir / "9HYvUk161nA.txt").write_bytes("9HYvUk161nA___0.05___1.2___d\xe9j\xe0 vu\n".encode("latin-1"))
    (tdir / "HfTLQqNN_nM.txt").write_text("HfTLQqNN_nM___0.06___0.9\nHfTLQqNN_nM___1.8___1.0___x\n", encoding="utf-8")
    cfg = moseas_config(root, "http://127.0.0.1:9/none")
    with pytest.raises(ManifestError) as err:
        _build(tmp_path, cfg)
    text = str(err.value)
    assert text.splitlines()[0] == "4 problem(s) in the CMU-MOSEAS release at " + str(root) + ":"
    assert (
        f"{tdir}/9HYvUk161nA.txt:1: not valid UTF-8 (byte b'\\xe9' at offset 28); re-encode the file as UTF-8" in text
    )
    assert f"{tdir}/HfTLQqNN_nM.txt:1: expected '<vid>___<start>___<end>___<sentence>', found 3 field(s)" in text
    assert f"{tdir}/HfTLQqNN_nM.txt:2: end 1 <= start 1.8" in text
    assert (
        "Batch_3851507_batch_results.csv:2: no transcript line for segment 'HfTLQqNN_nM_0' in HfTLQqNN_nM.txt" in text
    )


def test_drop_mode_and_checksums(tmp_path, tiny_videos):
    import csv
    import hashlib

    root = tmp_path / "moseas"
    truth = write_fake_moseas(root)
    batch = root / "french/data/FR_B1_B2/Batch_3851507_batch_results.csv"
    rows = list(csv.DictReader(batch.open(encoding="utf-8")))
    rows[3]["Answer.sentiment"] = "abc"  # line 5: segment HfTLQqNN_nM_1, annotator 1
    rows[7]["Answer.happiness"] = "maybe"  # line 9: segment -ybgknUOTpd_0
    with batch.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    sums = tmp_path / "SHA256SUMS"
    sums.write_text("".join(f"{hashlib.sha256(b).hexdigest()}  videos/{v}.mp4\n" for v, b in tiny_videos.items()))
    files = {_path(v): b for v, b in tiny_videos.items()}
    faults = {_path("9HYvUk161nA"): ["corrupt"] * 20, _path("2AnMJ7DAUhE"): ["corrupt"]}
    with FaultServer(files, faults=faults) as srv:
        cfg = moseas_config(root, srv.base + URL, min_success_rate=0.5)
        cfg["on_invalid"] = "drop"
        cfg["media"]["checksums"] = str(sums)
        table, out = _build(tmp_path, cfg)
    qc = pd.read_parquet(out / "qc/corpus/all.parquet").set_index("segment_id")
    assert qc.loc["HfTLQqNN_nM_1", "reason"] == (
        f"invalid manifest: {batch}:5: Answer.sentiment 'abc' is not an integer in -3..3"
    )
    assert qc.loc["-ybgknUOTpd_0", "reason"] == (
        f"invalid manifest: {batch}:9: Answer.happiness 'maybe' is not a checkbox value "
        "('1'/'checked'/'yes' or '0'/'no'/empty)"
    )
    assert qc.loc["9HYvUk161nA_0", "reason"] == (
        "media unavailable (gave up): local: not in local folder "
        f"({root}/french/videos/9HYvUk161nA.mp4); http: gave up after 5 attempts; last error: "
        "verification failed: SHA-256 mismatch"
    )
    assert len(qc) == 3
    kept = set(table.column("segment_id").to_pylist())
    assert kept == set(truth) - set(qc.index)
    assert (out / "corpus/media/es/2AnMJ7DAUhE.mp4").read_bytes() == tiny_videos["2AnMJ7DAUhE"]


def test_cli_builds_from_a_local_mirror(tmp_path, tiny_videos, capsys):
    import yaml

    from polysent.cli import main as cli

    root = tmp_path / "moseas"
    truth = write_fake_moseas(root)
    for vid, body in tiny_videos.items():
        language = "french" if truth[f"{vid}_0"]["lang"] == "fr" else "spanish"
        (root / language / "videos").mkdir(parents=True, exist_ok=True)
        (root / language / "videos" / f"{vid}.mp4").write_bytes(body)
    cfg = {
        "languages": ["fr", "es"],
        "shards": 2,
        "corpus": {"source": "moseas", "moseas": {"root": str(root), "media": {"order": ["local"]}}},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert cli(["moseas", "--config", str(tmp_path / "c.yaml"), "--results", str(tmp_path / "r")]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path}/r/corpus/manifest.parquet: 10 segments"
    m = pd.read_parquet(tmp_path / "r/corpus/manifest.parquet")
    assert set(m.segment_id) == set(truth)
    dl = pd.read_csv(tmp_path / "r/corpus/downloads.csv")
    assert set(dl.source) == {"local"}
