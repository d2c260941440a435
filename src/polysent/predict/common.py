"""What every part of :mod:`polysent.predict` shares: its error type and constants."""

from __future__ import annotations

ALIGN_RATE = 16000  # the aligners' sample rate (polysent.align reads the 16 kHz WAV)
# Manifest columns a new video may leave out, and what they become (labels are never used).
OPTIONAL_COLUMNS = {"sentiment": 0.0, "split": "test", "shard": 0, "audio_path": "", "transcript": ""}
MEDIA_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".wav", ".flac", ".mp3", ".m4a", ".ogg")
SHARD_STAGES = ("media", "acoustic", "visual", "align")  # run per shard, for every language
PSEUDO_WORD = "_"  # the token of a pseudo-word (text-free bundles: the text vector is never read)


class PredictError(ValueError):
    """Prediction cannot run; the message names the file, segment or setting."""


def plural(n: int, noun: str) -> str:
    """``3 videos``, ``1 segment``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
