"""Silence segmentation on synthetic recordings with pauses of known length."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from polysent.segment import SegmentError, defaults, segment_file, segment_rows, speech_segments

SR = 16000
TOLERANCE = 0.02  # seconds: the documented accuracy of an edge with the default frames
NO_PAD = {"padding": 0.0}


def tone(seconds, freq=220.0, dbfs=-12.0, sr=SR):
    t = np.arange(int(round(seconds * sr))) / sr
    return (10 ** (dbfs / 20) * np.sqrt(2) * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds, dbfs, seed, sr=SR):
    samples = np.random.default_rng(seed).standard_normal(int(round(seconds * sr)))
    return (10 ** (dbfs / 20) * samples).astype(np.float32)


def recording(parts, floor_dbfs=-70.0, seed=0, sr=SR):
    """Concatenate ('sound'|'tone'|'silence', seconds) parts over a faint noise floor.

    Returns the signal and the true (start, end) of every non-silent part.
    """
    pieces, truth, t = [], [], 0.0
    for k, (kind, seconds) in enumerate(parts):
        if kind == "tone":
            piece = tone(seconds, freq=180.0 + 40 * k, sr=sr)
        elif kind == "noise":
            piece = noise(seconds, -18.0, seed + k, sr=sr)
        else:
            piece = np.zeros(int(round(seconds * sr)), np.float32)
        if kind != "silence":
            truth.append((t, t + len(piece) / sr))
        pieces.append(piece)
        t += len(piece) / sr
    y = np.concatenate(pieces)
    return y + noise(len(y) / sr, floor_dbfs, seed + 99, sr=sr)[: len(y)], truth


def assert_edges(found, truth, tol=TOLERANCE):
    assert len(found) == len(truth), (found, truth)
    err = np.abs(np.array(found) - np.array(truth))
    assert err.max() <= tol, (found, truth, err.max())


PARTS = [
    ("silence", 0.7),
    ("tone", 1.2),
    ("silence", 0.5),
    ("noise", 0.8),
    ("silence", 1.0),
    ("tone", 0.6),
    ("silence", 0.4),
    ("noise", 1.5),
    ("silence", 0.9),
]


def test_tones_and_noise_bursts_between_known_pauses():
    y, truth = recording(PARTS)
    assert_edges(speech_segments(y, SR, NO_PAD), truth)


def test_other_sample_rate_and_stereo_file(tmp_path):
    y, truth = recording(PARTS)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([y, 0.5 * y], 1), SR, subtype="PCM_16")
    assert_edges(segment_file(path, NO_PAD), truth)
    y44, truth44 = recording(PARTS, seed=3, sr=44100)
    assert_edges(speech_segments(y44, 44100, NO_PAD), truth44)


def test_short_pause_does_not_split_and_click_is_dropped():
    parts = [
        ("silence", 0.5),
        ("tone", 0.8),
        ("silence", 0.15),
        ("tone", 0.7),
        ("silence", 0.8),
        ("noise", 0.05),
        ("silence", 0.8),
        ("noise", 1.0),
        ("silence", 0.5),
    ]
    y, truth = recording(parts)
    found = speech_segments(y, SR, NO_PAD)
    # the 0.15 s pause is below min_silence (0.30 s): one segment over both tones; the 50 ms
    # burst is below min_segment (0.25 s): gone
    assert_edges(found, [(truth[0][0], truth[1][1]), truth[3]])
    split = speech_segments(y, SR, {"padding": 0.0, "min_silence": 0.1, "min_segment": 0.02})
    assert_edges(split, truth)


def test_padding_widens_but_stops_at_file_ends_and_pause_midpoints():
    parts = [("tone", 0.8), ("silence", 0.12 + 0.3), ("noise", 1.0), ("silence", 0.05)]
    y, truth = recording(parts)
    raw = speech_segments(y, SR, NO_PAD)
    padded = speech_segments(y, SR, {"padding": 0.5})
    duration = len(y) / SR
    assert padded[0][0] == 0.0 and padded[-1][1] == pytest.approx(duration, abs=1e-3)
    mid = (raw[0][1] + raw[1][0]) / 2
    assert padded[0][1] == pytest.approx(mid, abs=1e-3) and padded[1][0] == pytest.approx(mid, abs=1e-3)
    small = speech_segments(y, SR, {"padding": defaults()["padding"]})
    assert small[0][1] == pytest.approx(raw[0][1] + defaults()["padding"], abs=1e-3)
    assert small[1][0] == pytest.approx(raw[1][0] - defaults()["padding"], abs=1e-3)


def test_silence_and_noise_floor_only_give_no_segment():
    assert speech_segments(np.zeros(SR * 2, np.float32), SR) == []
    assert speech_segments(noise(2.0, -65.0, 1), SR) == []  # room noise is below floor_dbfs
    assert speech_segments(np.zeros(0, np.float32), SR) == []
    # a quiet speaker is still found once the floor is lowered below their level
    quiet = np.concatenate([np.zeros(SR // 2, np.float32), tone(1.0, dbfs=-60.0), np.zeros(SR // 2, np.float32)])
    assert speech_segments(quiet, SR, NO_PAD) == []
    assert_edges(speech_segments(quiet, SR, {"padding": 0.0, "floor_dbfs": -70.0}), [(0.5, 1.5)])


def test_deterministic_and_rows(tmp_path):
    y, _ = recording(PARTS, seed=5)
    first = speech_segments(y, SR)
    assert first == speech_segments(y.copy(), SR)
    rows = segment_rows("vid", first)
    assert [r["segment_id"] for r in rows] == [f"vid_{k:03d}" for k in range(len(first))]
    assert all(r["end"] > r["start"] for r in rows)


def test_bad_input_is_named(tmp_path):
    bad = tmp_path / "clip.wav"
    bad.write_bytes(b"not a wav file")
    with pytest.raises(SegmentError, match="clip.wav: cannot read audio"):
        segment_file(bad)
    with pytest.raises(SegmentError, match="no such audio file"):
        segment_file(tmp_path / "missing.wav")
    with pytest.raises(SegmentError, match=r"unknown segmentation setting\(s\) \['top_dB'\]"):
        speech_segments(np.zeros(10), SR, {"top_dB": 30})
    with pytest.raises(SegmentError, match="hop must be > 0"):
        speech_segments(np.zeros(10), SR, {"hop": 0})


def test_cli_segment(tmp_path):
    from polysent.cli import main

    y, truth = recording(PARTS)
    sf.write(tmp_path / "talk.wav", y, SR)
    assert main(["segment", str(tmp_path / "talk.wav"), "--padding", "0", "--out", str(tmp_path / "s.csv")]) == 0
    table = pd.read_csv(tmp_path / "s.csv")
    assert list(table.columns) == ["segment_id", "video_id", "start", "end"]
    assert set(table["video_id"]) == {"talk"}
    assert_edges(list(zip(table["start"], table["end"])), truth)


def test_schema_defaults_are_the_segmenters_and_asrs():
    """predict.<name>.segment / .asr in the workflow config get the library's defaults (one truth)."""
    from polysent import asr
    from polysent.predict import entry_settings

    entry = entry_settings()
    assert entry["segment"] == defaults()
    assert entry["asr"] == asr.defaults()


def test_speech_runs_follow_the_recordings_own_noise_floor():
    """Speech over room noise at -50 dBFS (above a fixed -55/-60 dBFS floor): the detector's
    floor is the recording's own, so the pauses are found and the edges are within 50 ms."""
    from noisy_speech import brown_noise
    from polysent.segment import frame_levels, noise_floor, speech_runs

    parts = [("silence", 0.4), ("tone", 0.5), ("silence", 0.3), ("noise", 0.4), ("silence", 0.15), ("tone", 0.3)]
    y, truth = recording(parts + [("silence", 0.5)], floor_dbfs=-120.0)
    y = y + brown_noise(len(y), -50.0, seed=1).astype(np.float32)
    levels = frame_levels(y, SR, 0.01, 0.01)[0]
    assert -65.0 <= noise_floor(levels) <= -50.0  # brown noise: 10 ms frames swing below its RMS
    runs, active = speech_runs(y, SR, rel=0.25)
    assert_edges(runs, truth, tol=0.05)  # the target for word boundaries
    assert active.mean() < 0.6  # the noise between the parts is not speech
    # a pause shorter than min_pause joins its neighbours into one stretch
    joined, _ = speech_runs(y, SR, rel=0.25, min_pause=0.2)
    assert_edges(joined, [truth[0], (truth[1][0], truth[2][1])], tol=0.05)
