"""Speech of the demo corpus: espeak-ng, word by word, so the word boundaries are known exactly.

Each word is synthesized on its own (``espeak-ng --stdout``; ~8 ms a call), trimmed to the samples
that carry speech, and placed on the video's track with short gaps. The sample positions where a
word's speech begins and ends are therefore the ground truth the aligner is scored against.
Prosody (``-s`` rate, ``-p`` pitch, ``-a`` amplitude) is the speaker's baseline shifted by the
segment's audio latent.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

SAMPLE_RATE = 22050  # espeak-ng's native output rate
# A sample belongs to a word's speech when |x| exceeds this fraction of the word's peak.
TRIM_FRACTION = 0.02
RUMBLE_POLE = 0.98


class SpeechError(RuntimeError):
    """espeak-ng is missing or failed on a word."""


@dataclass(frozen=True)
class Prosody:
    """espeak-ng parameters of one segment (already including speaker offsets)."""

    voice: str  # e.g. "fr+f3"
    rate: int  # words per minute (-s)
    pitch: int  # 0..99 (-p)
    amplitude: int  # 0..200 (-a)


def espeak_binary() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SpeechError(
            "espeak-ng not found on PATH: the demo corpus synthesizes its speech with it "
            "(Debian/Ubuntu: apt-get install espeak-ng; see scripts/setup.sh)"
        )
    return exe


def synth_word(word: str, prosody: Prosody, exe: str | None = None) -> np.ndarray:
    """float32 samples in [-1, 1] at :data:`SAMPLE_RATE` of ``word`` alone, trimmed to its speech."""
    cmd = [
        exe or espeak_binary(),
        "-v", prosody.voice,
        "-s", str(prosody.rate),
        "-p", str(prosody.pitch),
        "-a", str(prosody.amplitude),
        "--stdout",
        word,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0 or len(proc.stdout) <= 44:
        raise SpeechError(
            f"espeak-ng failed on word {word!r} ({' '.join(cmd[1:-1])}): "
            f"{proc.stderr.decode(errors='replace').strip() or 'no audio'}"
        )
    # espeak-ng streams a canonical 44-byte RIFF header (sizes unknown) then 16-bit mono PCM.
    pcm = np.frombuffer(proc.stdout[44 : 44 + (len(proc.stdout) - 44) // 2 * 2], dtype="<i2")
    x = pcm.astype(np.float32) / 32768.0
    return trim(x, word)


def trim(x: np.ndarray, what: str = "") -> np.ndarray:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        raise SpeechError(f"espeak-ng produced silence for {what!r}")
    loud = np.flatnonzero(np.abs(x) > TRIM_FRACTION * peak)
    return x[loud[0] : loud[-1] + 1]


def add_noise(track: np.ndarray, rng: np.random.Generator, snr_db: float) -> np.ndarray:
    """Background noise (white + low-frequency rumble) at ``snr_db`` below the speech RMS."""
    speech = track[np.abs(track) > 1e-4]
    rms = float(np.sqrt(np.mean(speech**2))) if speech.size else 0.1
    level = rms / (10 ** (snr_db / 20.0))
    white = rng.normal(0.0, 1.0, size=track.size)
    # One-pole low-pass of white noise: a room/street rumble under the hiss.
    rumble = lfilter([1.0 - RUMBLE_POLE], [1.0, -RUMBLE_POLE], rng.normal(0.0, 1.0, size=track.size))
    rumble /= np.std(rumble) + 1e-12
    noise = (white + rumble) / np.sqrt(2.0)
    return (track + level * noise).astype(np.float32)


def to_int16(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, -1.0, 1.0) * 32767.0).round().astype("<i2")


def write_wav(path, x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """16-bit mono PCM WAV (stdlib ``wave``: byte-identical for identical samples)."""
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(to_int16(x).tobytes())
