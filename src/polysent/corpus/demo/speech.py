"""Speech of the demo corpus: espeak-ng, word by word, so the word boundaries are known exactly.

Each word is synthesized on its own, trimmed to the samples that carry speech, and placed on the
video's track with short gaps. The sample positions where a word's speech begins and ends are
therefore the ground truth the aligner is scored against. Prosody (``-s`` rate, ``-p`` pitch,
``-a`` amplitude) is the speaker's baseline shifted by the segment's audio latent.

Speed: one ``espeak-ng --stdout`` process per word costs ~10 ms, nearly all of it start-up, so
:func:`video_voice` hands out the words of one video from a per-process
:class:`EspeakServer` (libespeak-ng through ctypes, ~0.6 ms a word): each video starts from a
fresh fork of the just-initialised library and synthesizes its words in order, so its audio does
not depend on the pool worker or on earlier videos (:mod:`.espeak_server` says what state carries
from word to word and why not a fork per word). Where libespeak-ng cannot be loaded it falls back
to one command-line call per word (:func:`synth_word`, which the first word of every video
equals).
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

SAMPLE_RATE = 22050  # espeak-ng's native output rate
# A sample belongs to a word's speech when |x| exceeds this fraction of the word's peak.
TRIM_FRACTION = 0.02
RUMBLE_POLE = 0.98

log = logging.getLogger("polysent.corpus.demo")


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
    return _pcm_to_word(proc.stdout[44:], word)


def _pcm_to_word(pcm: bytes, word: str) -> np.ndarray:
    x = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    return trim(x, word)


class EspeakServer:
    """A running :mod:`.espeak_server`: :meth:`start_video` then :meth:`word` for each word."""

    def __init__(self) -> None:
        script = Path(__file__).with_name("espeak_server.py")
        # -I -S: the server needs only the standard library (a small process forks fast).
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.voice: str | None = None
        ok, message = self._answer()
        if not ok:
            self.close()
            raise SpeechError(f"libespeak-ng server did not start: {message.decode(errors='replace')}")

    def _ask(self, line: str) -> tuple[bool, bytes]:
        if "\n" in line:
            raise SpeechError(f"request {line!r} contains a newline")
        self.proc.stdin.write((line + "\n").encode("utf-8"))
        self.proc.stdin.flush()
        return self._answer()

    def _answer(self) -> tuple[bool, bytes]:
        head = self.proc.stdout.read(4)
        if len(head) < 4:
            raise SpeechError(f"libespeak-ng server exited (code {self.proc.poll()})")
        (n,) = struct.unpack("<i", head)
        return n >= 0, self.proc.stdout.read(abs(n))

    def start_video(self, voice: str) -> None:
        """A fresh synthesizer for ``voice``: the next words do not depend on any earlier word."""
        ok, message = self._ask(f"V\t{voice}")
        if not ok:
            raise SpeechError(message.decode(errors="replace"))
        self.voice = voice

    def word(self, word: str, prosody: Prosody) -> np.ndarray:
        if prosody.voice != self.voice:
            raise SpeechError(f"word {word!r} asks for voice {prosody.voice!r}, the video's voice is {self.voice!r}")
        if "\t" in word:
            raise SpeechError(f"word {word!r} contains a tab")
        ok, payload = self._ask(f"W\t{prosody.rate}\t{prosody.pitch}\t{prosody.amplitude}\t{word}")
        if not ok or not payload:
            raise SpeechError(
                f"libespeak-ng failed on word {word!r} (-v {prosody.voice} -s {prosody.rate} "
                f"-p {prosody.pitch} -a {prosody.amplitude}): {payload.decode(errors='replace') or 'no audio'}"
            )
        return _pcm_to_word(payload, word)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait()


_SERVER: tuple[int, EspeakServer | None] | None = None  # (owner pid, server or None = use the CLI)


def _server() -> EspeakServer | None:
    """This process's server (a forked child starts its own), or None where the library is missing."""
    global _SERVER
    if _SERVER is None or _SERVER[0] != os.getpid():
        try:
            _SERVER = (os.getpid(), EspeakServer())
        except (SpeechError, OSError) as exc:
            log.warning("%s; falling back to one espeak-ng process per word", exc)
            _SERVER = (os.getpid(), None)
    return _SERVER[1]


def close_server() -> None:
    """Stop this process's server (the next :func:`video_voice` starts a new one)."""
    global _SERVER
    if _SERVER is not None and _SERVER[0] == os.getpid() and _SERVER[1] is not None:
        _SERVER[1].close()
    _SERVER = None


def video_voice(voice: str, engine: str = "library") -> Callable[[str, Prosody], np.ndarray]:
    """``word, prosody -> samples`` for the words of one video, in order (see the module doc).

    ``engine="cli"`` is the previous path (one ``espeak-ng`` process per word); "library" uses
    :class:`EspeakServer` and falls back to "cli" where libespeak-ng is missing.
    """
    server = _server() if engine == "library" else None
    if server is None:
        exe = espeak_binary()
        return lambda word, prosody: synth_word(word, prosody, exe)
    server.start_video(voice)
    return server.word


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
