"""Test fixture: espeak-ng words joined by known pauses over a realistic noise floor.

Each word is synthesised on its own (espeak-ng, 22.05 kHz), cut to its samples above -70 dBFS
(espeak-ng pads with digital silence, so the cut is exact), joined with the given pauses and
resampled to 16 kHz; then brown (1/f²) noise at ``noise_dbfs`` RMS is added everywhere, pauses
included, as room noise is. The word boundaries are known by construction.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak(word: str, voice: str = "fr", speed: int = 150) -> tuple[np.ndarray, int]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "w.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(out), word], check=True)
        y, sr = sf.read(out, dtype="float64")
    return y, sr


def brown_noise(n: int, dbfs: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.standard_normal(n))
    x -= np.convolve(x, np.ones(801) / 801, mode="same")  # remove the random walk's drift (< 20 Hz)
    return x * (10 ** (dbfs / 20) / np.sqrt(np.mean(x**2)))


def noisy_speech(
    words: list[str],
    pauses: list[float],
    voice: str = "fr",
    noise_dbfs: float = -50.0,
    lead: float = 0.3,
    tail: float = 0.3,
    seed: int = 0,
) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """16 kHz float signal and the true ``(word, start, end)``; ``pauses[i]`` follows ``words[i]``."""
    import soxr

    assert len(pauses) == len(words) - 1
    pieces, truth, t = [np.zeros(int(lead * RATE))], [], lead
    for i, word in enumerate(words):
        y, sr = espeak(word, voice)
        loud = np.flatnonzero(np.abs(y) > 10 ** (-70 / 20))
        y = soxr.resample(y[loud[0] : loud[-1] + 1], sr, RATE)
        pieces.append(y)
        truth.append((word, t, t + len(y) / RATE))
        t += len(y) / RATE
        gap = pauses[i] if i < len(pauses) else tail
        pieces.append(np.zeros(int(round(gap * RATE))))
        t += int(round(gap * RATE)) / RATE
    y = np.concatenate(pieces)
    y = 0.5 * y / np.max(np.abs(y))
    y = y + brown_noise(len(y), noise_dbfs, seed)
    return y.astype(np.float32), truth


def write_wav(path: Path, y: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y, RATE, subtype="PCM_16")
    return path
