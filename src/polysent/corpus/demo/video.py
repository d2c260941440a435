"""Per-frame face state of a demo video and its H.264/AAC encoding with ffmpeg.

:func:`frame_schedule` turns a video's timeline (segments, words, cutaways) into one bank index
tuple per frame: the smile follows the segment's visual latent (eased in and out, resting
expression between segments), the lower lip opens on syllables while a word is spoken, blinks
come at random, and the head rolls and translates a little (smoothed random walks).
:func:`encode` pipes the raw frames to ffmpeg and muxes the source WAV as AAC.

Speed (issue 13): the demo encodes with x264 ``-preset superfast`` plus the macroblock tree
and a 10-frame rate-control lookahead of ``veryfast`` (``-x264-params mbtree=1:rc-lookahead=10``;
plain superfast drops them and nearly doubles the file of these almost static shots) and ffmpeg's
``-aac_coder fast`` instead of its two-loop search. Per 18 s video (2-core EPYC, loaded) that is
~0.22 instead of ~0.32 CPU s of ffmpeg for the video stream, at +16 % video bytes for the same
CRF, and ~0.05 instead of ~0.25 CPU s of AAC (the WAV, not the mp4's AAC, is what the audio
stages read). ultrafast would save another ~0.04 s but drops CABAC and deblocking (files ~2×).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

from polysent.corpus.demo.face import FaceBank

SYLLABLE_HZ = 3.5  # mouth open/close cycles per second while a word is spoken
EASE_S = 0.3  # time constant of expression changes


class EncodeError(RuntimeError):
    """ffmpeg is missing or failed to encode a demo video."""


@dataclass(frozen=True)
class Schedule:
    smile: np.ndarray  # float, the continuous expression per frame in [-1, 1]
    smile_i: np.ndarray
    blink_i: np.ndarray
    mouth_i: np.ndarray
    roll_i: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    cutaway: np.ndarray  # bool per frame


def _ar1(rng: np.random.Generator, n: int, rho: float, sd: float) -> np.ndarray:
    """Smoothed random walk (AR(1) with stationary standard deviation ``sd``)."""
    eps = rng.normal(0.0, sd * np.sqrt(1 - rho**2), size=n)
    out = np.empty(n)
    x = rng.normal(0.0, sd)
    for i in range(n):
        x = rho * x + eps[i]
        out[i] = x
    return out


def frame_schedule(
    rng: np.random.Generator,
    bank: FaceBank,
    n_frames: int,
    fps: float,
    segments: list[tuple[float, float, float]],
    words: list[tuple[float, float]],
    cutaways: list[tuple[float, float]],
    rest_smile: float,
    face_cfg: dict,
) -> Schedule:
    """Bank indices per frame.

    ``segments``: (start, end, smile) in video seconds; ``words``: (start, end) of every spoken
    word; ``cutaways``: (start, end) intervals showing a face-less picture.
    """
    t = np.arange(n_frames) / fps
    target = np.full(n_frames, rest_smile)
    for start, end, smile in segments:
        target[(t >= start) & (t < end)] = smile
    # Exponential easing so expressions change over ~EASE_S rather than jumping at boundaries.
    alpha = 1.0 - np.exp(-1.0 / (fps * EASE_S))
    smile = np.empty(n_frames)
    s = rest_smile
    for i in range(n_frames):
        s += alpha * (target[i] - s)
        smile[i] = s
    smile_i = np.array([bank.smile_index(v) for v in smile], dtype=np.int64)

    mouth = np.zeros(n_frames, dtype=np.int64)
    for ws, we in words:
        inside = (t >= ws) & (t < we)
        phase = ((t - ws) * SYLLABLE_HZ) % 1.0
        mouth[inside & (phase < 0.6)] = 1

    blink = np.zeros(n_frames, dtype=np.int64)
    duration = n_frames / fps
    n_blinks = rng.poisson(face_cfg["blink_rate_hz"] * duration)
    for bt in np.sort(rng.uniform(0, duration, size=n_blinks)):
        k = int(bt * fps)
        for off, state in ((0, 1), (1, 2), (2, 1)):  # half-closed, closed, half-closed
            if k + off < n_frames:
                blink[k + off] = max(blink[k + off], state)

    rolls = bank.roll_degrees
    roll = _ar1(rng, n_frames, 0.97, max(abs(rolls).max(), 1e-9) * 0.6)
    roll_i = np.abs(roll[:, None] - rolls[None, :]).argmin(1)
    jit = face_cfg["jitter_px"]
    dx = np.clip(np.rint(_ar1(rng, n_frames, 0.95, jit / 2.0)), -min(jit, bank.pad), min(jit, bank.pad))
    dy = np.clip(np.rint(_ar1(rng, n_frames, 0.95, jit / 2.0)), -min(jit, bank.pad), min(jit, bank.pad))

    cut = np.zeros(n_frames, dtype=bool)
    for start, end in cutaways:
        cut[(t >= start) & (t < end)] = True
    return Schedule(smile, smile_i, blink, mouth, roll_i, dx.astype(int), dy.astype(int), cut)


def ffmpeg_binary() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise EncodeError(
            "ffmpeg not found on PATH: the demo corpus encodes its videos with it "
            "(Debian/Ubuntu: apt-get install ffmpeg; see scripts/setup.sh)"
        )
    return exe


def encode(
    out_path,
    wav_path,
    frames,
    size: int,
    fps: float,
    crf: int = 23,
    pad_audio_to: float | None = None,
    preset: str = "superfast",
    aac_coder: str = "fast",
    x264_params: str | None = "mbtree=1:rc-lookahead=10",
) -> None:
    """Encode an iterable of ``size``×``size`` RGB uint8 frames + the WAV into an H.264/AAC mp4.

    ``wav_path`` None gives a video without an audio stream; ``pad_audio_to`` (seconds) pads
    the audio with silence and cuts the file to that length. Single-threaded x264 and
    bit-exact flags make the file identical across runs; no metadata (creation time, encoder
    strings) is copied in.
    """
    cmd = [
        ffmpeg_binary(), "-nostdin", "-v", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size}x{size}", "-r", str(fps), "-i", "pipe:0",
    ]  # fmt: skip
    if wav_path is not None:
        cmd += ["-i", str(wav_path), "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-aac_coder", aac_coder, "-b:a", "64k"]
    if pad_audio_to is not None:
        cmd += ["-af", "apad", "-t", f"{pad_audio_to}"]
    cmd += [
        "-c:v", "libx264", "-preset", preset, *(["-x264-params", x264_params] if x264_params else []),
        "-crf", str(crf), "-pix_fmt", "yuv420p",
        "-threads", "1",
        "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
        "-movflags", "+faststart", "-f", "mp4",
        str(out_path),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for frame in frames:
            proc.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).data)  # one copy, not two
    except BrokenPipeError:
        pass
    finally:
        proc.stdin.close()
    err = proc.stderr.read().decode(errors="replace")
    if proc.wait() != 0:
        raise EncodeError(f"ffmpeg failed to encode {out_path}: {err.strip()[-2000:]}")
