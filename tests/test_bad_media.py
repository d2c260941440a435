"""Bad media through the frame stages: every segment ends in the store or in QC, with a reason.

One shard holds a good video next to a truncated mp4, a video without an audio stream, a video
whose audio track is empty, and an all-black video. No stage may crash on them, and no segment
may vanish: for each stage, segments = segments with frames + segments with a QC record.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from polysent import contracts, media
from polysent.corpus.demo.video import encode
from polysent.features import acoustic, visual
from test_media import corpus_folders, face_frame, shard_of_video, speech, write_manifest

FPS, SIZE = 10, 256
BAD = ["truncated", "no_audio", "empty_audio", "black"]


def _video(path: Path, wav: Path | None, seconds: float, black: bool = False) -> Path:
    face = np.zeros((SIZE, SIZE, 3), np.uint8) if black else face_frame(SIZE)
    encode(path, wav, (face for _ in range(int(seconds * FPS))), SIZE, FPS)
    return path


@pytest.fixture(scope="module")
def bad_corpus(tmp_path_factory) -> Path:
    root, media = corpus_folders(tmp_path_factory, "bad_media")
    wav = speech(root / "speech.wav", "Bonjour, je suis très content de cette vidéo aujourd'hui.")
    seconds = sf.info(str(wav)).duration
    good = _video(media / "good.mp4", wav, seconds)
    cut = good.read_bytes()
    (media / "truncated.mp4").write_bytes(cut[: len(cut) // 3])
    _video(media / "no_audio.mp4", None, seconds)
    empty = root / "empty.wav"
    sf.write(str(empty), np.zeros(0, np.float32), 16000)
    _video(media / "empty_audio.mp4", empty, seconds)
    _video(media / "black.mp4", wav, seconds, black=True)

    rows = []
    for vid in ["good", *BAD]:
        for k, (start, end) in enumerate([(0.0, seconds / 2), (seconds / 2, seconds - 0.05)]):
            rows.append(
                {
                    "segment_id": f"{vid}_{k}",
                    "video_id": vid,
                    "start": start,
                    "end": end,
                    "video_path": f"results/corpus/media/fr/{vid}.mp4",
                }
            )
    write_manifest(root / "results" / "corpus" / "manifest.parquet", rows)
    return root


@pytest.fixture(scope="module")
def stage_outputs(bad_corpus) -> dict[str, dict]:
    """Media, acoustic and visual on every shard; per stage: segments with frames, QC reasons."""
    cwd = os.getcwd()
    os.chdir(bad_corpus)  # manifest paths are relative to the working directory
    out: dict[str, dict] = {s: {"frames": set(), "qc": {}} for s in ("media", "acoustic", "visual")}
    try:
        manifest = "results/corpus/manifest.parquet"
        for shard in sorted({shard_of_video(v) for v in ["good", *BAD]}):
            media.run_shard(
                manifest, shard, f"results/media/{shard}", f"qc/media/{shard}.parquet", None, threads=1, progress=False
            )
            acoustic.run_shard(
                manifest,
                shard,
                f"acoustic/{shard}.parquet",
                f"qc/acoustic/{shard}.parquet",
                None,
                threads=1,
                media_dir=f"results/media/{shard}",
                progress=False,
            )
            visual.run_shard(
                manifest,
                shard,
                f"visual/{shard}.parquet",
                f"qc/visual/{shard}.parquet",
                None,
                threads=1,
                progress=False,
            )
            index = pq.read_table(f"results/media/{shard}/index.parquet")
            out["media"]["frames"] |= set(index.column("video_id").to_pylist())
            for stage in ("acoustic", "visual"):
                frames = pq.read_table(f"{stage}/{shard}.parquet")
                contract = contracts.VISUAL_FRAMES if stage == "visual" else contracts.FRAMES
                contracts.check(frames, contract)
                out[stage]["frames"] |= set(frames.column("segment_id").to_pylist())
            for stage in out:
                qc = pq.read_table(f"qc/{stage}/{shard}.parquet")
                contracts.check(qc, contracts.QC)
                for row in qc.to_pylist():
                    key = row["segment_id"] or row["video_id"]
                    out[stage]["qc"].setdefault(key, []).append(row["reason"])
    finally:
        os.chdir(cwd)
    return out


def _segments(video: str) -> list[str]:
    return [f"{video}_0", f"{video}_1"]


def test_good_video_passes_every_stage(stage_outputs):
    for stage in ("acoustic", "visual"):
        assert set(_segments("good")) <= stage_outputs[stage]["frames"], stage
        assert not set(_segments("good")) & set(stage_outputs[stage]["qc"]), stage


@pytest.mark.parametrize("video", BAD)
def test_no_segment_of_a_bad_video_is_lost(stage_outputs, video):
    for stage in ("acoustic", "visual"):
        frames, qc = stage_outputs[stage]["frames"], stage_outputs[stage]["qc"]
        for seg in _segments(video):
            assert seg in frames or seg in qc or video in qc, f"{stage}: {seg} not stored, not in QC"
            for reason in qc.get(seg, []):
                assert reason.strip(), f"{stage}: {seg} has an empty QC reason"


@pytest.mark.parametrize(
    "video, stage, words",
    [
        ("truncated", "media", ["truncat", "lasts", "ffmpeg", "cannot", "invalid", "missing"]),
        ("no_audio", "media", ["audio"]),
        ("empty_audio", "media", ["audio", "empty", "lasts", "0.0"]),
        ("black", "visual", ["face"]),
    ],
)
def test_bad_video_has_a_qc_reason_at_its_stage(stage_outputs, video, stage, words):
    qc = stage_outputs[stage]["qc"]
    reasons = [r for key in (video, *_segments(video)) for r in qc.get(key, [])]
    assert reasons, f"{video}: no QC record in the {stage} stage ({qc})"
    assert any(any(w in r.lower() for w in words) for r in reasons), reasons
    # and the later stages do not pretend to have features for it
    if stage == "media":
        assert not set(_segments(video)) & stage_outputs["acoustic"]["frames"]
