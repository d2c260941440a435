"""Silence-based segmentation: speech segments of a recording from its short-time energy.

For a video that comes without segment times (``polysent predict`` on raw media), segments are
the stretches of sound between pauses. The rule, deterministic and documented here:

1. The mono signal (channels averaged) is cut into frames of ``frame`` seconds every ``hop``
   seconds (no centre padding; the last partial frame is zero-padded). Each frame's RMS level
   is expressed in dBFS (RMS relative to full scale 1.0; a full-scale sine is -3 dBFS).
2. A frame is **sound** when its level is at least ``peak - top_db`` (``peak``: the loudest
   frame of the file) *and* at least ``floor_dbfs``; the absolute floor keeps a silent or
   near-silent file (room noise only) from being "segmented" relative to its own faint peak.
3. A run of sound frames ``k0..k1`` spans from the end of frame ``k0`` to the start of frame
   ``k1``, widened by ``hop/2`` on each side: with a relative threshold this low, a frame
   becomes sound as soon as it overlaps the sound, so the frames' edges (not their centres)
   locate its edges, within ± ``hop/2`` for an abrupt onset. Sound in the first (last) frame
   extends the segment to the file's start (end).
4. Pauses shorter than ``min_silence`` do not split a segment (runs are merged across them);
   then segments shorter than ``min_segment`` are dropped (clicks, breaths).
5. Each segment is widened by ``padding`` on both sides, never past the file's ends and never
   into a neighbour (two padded segments meet at most at the midpoint of their pause).

Times are seconds from the file start, rounded to the millisecond. With the defaults (25 ms
frames, 10 ms hop) the edges of tones and noise bursts separated by silence are found within
5 ms (``hop/2``; measured at 8, 16 and 44.1 kHz), before padding; ``tests/test_segment.py``
asserts 20 ms. Speech has softer edges than tones: its onsets are found later and its endings
earlier by how long it stays below ``peak - top_db``, which ``padding`` covers.
"""

from __future__ import annotations

import csv
import math
import os
import sys
from pathlib import Path

import numpy as np

from polysent.config import schema_defaults
from polysent.errors import data_errors


def defaults() -> dict:
    """The segmentation settings' defaults (schema ``predict.<name>.segment``, documented there):
    top_db, floor_dbfs (dBFS), frame/hop/min_silence/min_segment/padding (seconds)."""
    return schema_defaults("predict", "*", "segment")


class SegmentError(ValueError):
    """Audio cannot be segmented; the message names the file or setting."""


def settings(cfg: dict | None = None) -> dict:
    """:func:`defaults` with ``cfg`` on top; an unknown key or a bad value is named."""
    cfg = dict(cfg or {})
    base = defaults()
    unknown = sorted(set(cfg) - set(base))
    if unknown:
        raise SegmentError(f"unknown segmentation setting(s) {unknown}; known: {sorted(base)}")
    out = {**base, **{k: float(v) for k, v in cfg.items()}}
    for key in ("frame", "hop"):
        if not out[key] > 0:
            raise SegmentError(f"segmentation setting {key} must be > 0 seconds, got {out[key]}")
    for key in ("top_db", "min_silence", "min_segment", "padding"):
        if out[key] < 0:
            raise SegmentError(f"segmentation setting {key} must be >= 0, got {out[key]}")
    return out


def frame_levels(y: np.ndarray, sr: int, frame: float, hop: float) -> tuple[np.ndarray, int, int]:
    """RMS level (dBFS) of each frame; also the frame and hop lengths in samples."""
    n_frame = max(1, int(round(frame * sr)))
    n_hop = max(1, int(round(hop * sr)))
    n = len(y)
    count = 1 + max(0, math.ceil((n - n_frame) / n_hop))
    padded = np.zeros((count - 1) * n_hop + n_frame)
    padded[:n] = y
    energy = np.concatenate([[0.0], np.cumsum(padded.astype(np.float64) ** 2)])
    starts = np.arange(count) * n_hop
    mean_sq = (energy[starts + n_frame] - energy[starts]) / n_frame
    return 10.0 * np.log10(np.maximum(mean_sq, 1e-20)), n_frame, n_hop


def noise_floor(levels: np.ndarray, percentile: float = 10.0) -> float:
    """The recording's own noise floor (dBFS): a low percentile of its frame levels.

    Speech is rarely quieter than its pauses, so the quietest tenth of the frames is the room
    noise between words; a fixed dBFS floor would lie below some rooms' noise and above others'.
    """
    return float(np.percentile(levels, percentile))


def speech_threshold(
    levels: np.ndarray, rel: float, floor_percentile: float = 10.0, level_percentile: float = 95.0
) -> float:
    """dBFS level above which a frame is speech: ``rel`` of the way from the noise floor to the
    speech level (the ``level_percentile`` of the frame levels)."""
    floor = noise_floor(levels, floor_percentile)
    return floor + rel * (float(np.percentile(levels, level_percentile)) - floor)


def speech_runs(
    y: np.ndarray,
    sr: int,
    rel: float,
    hop: float = 0.01,
    min_pause: float = 0.05,
    min_run: float = 0.03,
    floor_percentile: float = 10.0,
    level_percentile: float = 95.0,
) -> tuple[list[tuple[float, float]], np.ndarray]:
    """Stretches of speech in a mono signal by its own noise floor, and the per-frame flags.

    Frames are ``hop`` long and do not overlap (frame k covers ``[k hop, (k+1) hop)``), so a run's
    edges are within one hop of the level crossing. Pauses shorter than ``min_pause`` do not end
    a run (plosive closures, the gap inside a word); runs shorter than ``min_run`` are dropped
    (clicks). Returns ``([(start, end) s], active frames)``.
    """
    levels, _, _ = frame_levels(np.asarray(y, np.float64), sr, hop, hop)
    active = levels > speech_threshold(levels, rel, floor_percentile, level_percentile)
    spans = _merge([[k0 * hop, (k1 + 1) * hop] for k0, k1 in _runs(active)], min_pause)
    return [(s, e) for s, e in spans if e - s >= min_run], active


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) indices of each run of True."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def _merge(spans: list[list[float]], min_silence: float) -> list[list[float]]:
    merged: list[list[float]] = []
    for start, end in spans:
        if merged and start - merged[-1][1] < min_silence:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def _pad(spans: list[list[float]], padding: float, duration: float) -> list[list[float]]:
    out = []
    for i, (start, end) in enumerate(spans):
        lo = 0.0 if i == 0 else (spans[i - 1][1] + start) / 2
        hi = duration if i == len(spans) - 1 else (end + spans[i + 1][0]) / 2
        out.append([max(lo, start - padding), min(hi, end + padding)])
    return out


def speech_segments(y: np.ndarray, sr: int, cfg: dict | None = None) -> list[tuple[float, float]]:
    """(start, end) seconds of the sound segments of mono signal ``y`` (see the module doc)."""
    c = settings(cfg)
    y = np.asarray(y, np.float64)
    if y.ndim != 1:
        raise SegmentError(f"expected a mono signal, got shape {y.shape}")
    if len(y) == 0 or sr <= 0:
        return []
    duration = len(y) / sr
    levels, n_frame, n_hop = frame_levels(y, sr, c["frame"], c["hop"])
    sound = (levels >= levels.max() - c["top_db"]) & (levels >= c["floor_dbfs"])
    half = n_hop / 2
    spans = []
    for k0, k1 in _runs(sound):
        start, end = (k0 * n_hop + n_frame - half) / sr, (k1 * n_hop + half) / sr
        if end <= start:  # a run shorter than a frame: fall back to the frame centres
            start, end = (k0 * n_hop + n_frame / 2 - half) / sr, (k1 * n_hop + n_frame / 2 + half) / sr
        if k0 == 0:  # sound from the first frame on: it may start anywhere before its end
            start = 0.0
        if k1 == len(sound) - 1:
            end = duration
        spans.append([max(0.0, start), min(duration, end)])
    spans = [s for s in _merge(spans, c["min_silence"]) if s[1] - s[0] >= c["min_segment"]]
    spans = _pad(spans, c["padding"], duration)
    return [(round(s, 3), round(e, 3)) for s, e in spans]


def read_mono(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """A sound file as a float mono signal (channels averaged) and its sample rate."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise SegmentError(f"{path}: no such audio file")
    try:
        y, sr = sf.read(path, dtype="float32", always_2d=True)
    except data_errors(sf.SoundFileError) as err:  # libsndfile's errors, a truncated or odd file
        raise SegmentError(f"{path}: cannot read audio ({err})") from err
    return y.mean(axis=1), int(sr)


def segment_file(path: str | os.PathLike, cfg: dict | None = None) -> list[tuple[float, float]]:
    """Sound segments of an audio file (WAV/FLAC/... as soundfile reads it)."""
    y, sr = read_mono(path)
    return speech_segments(y, sr, cfg)


def segment_rows(video_id: str, spans: list[tuple[float, float]]) -> list[dict]:
    """Manifest-style rows ``segment_id, video_id, start, end`` (ids ``{video_id}_{k:03d}``)."""
    return [
        {"segment_id": f"{video_id}_{k:03d}", "video_id": video_id, "start": s, "end": e}
        for k, (s, e) in enumerate(spans)
    ]


# ---------------------------------------------------------------------------------------- CLI


def add_cli(sub) -> None:
    p = sub.add_parser("segment", help="find speech segments in an audio file from pauses (silence)")
    p.add_argument("audio", help="audio file (e.g. the WAV of polysent media)")
    p.add_argument("--out", default=None, help="CSV to write (default: stdout)")
    for key, value in defaults().items():
        p.add_argument(
            f"--{key.replace('_', '-')}",
            type=float,
            default=value,
            dest=key,
            help=f"see polysent.segment (default {value})",
        )
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    from polysent import io

    rows = segment_rows(Path(args.audio).stem, segment_file(args.audio, {k: getattr(args, k) for k in defaults()}))
    fields = ["segment_id", "video_id", "start", "end"]
    if args.out:
        import pandas as pd

        io.write_csv(args.out, pd.DataFrame(rows, columns=fields))
    else:
        writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return 0
