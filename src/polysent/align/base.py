"""What the alignment driver and its backends share: the segment to align and the error types.

A module of its own so that the backends (:mod:`polysent.align.aeneas_backend`,
:mod:`polysent.align.mfa`) do not import the package that imports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Segment:
    """One utterance to align: its audio clip (segment-relative) and words."""

    segment_id: str
    video_id: str
    lang: str
    words: tuple[str, ...]
    wav: Path
    duration: float


class AlignError(RuntimeError):
    """A backend could not align one segment (recorded in QC, never fatal for the shard)."""


class AlignerUnavailable(RuntimeError):
    """The configured aligner is not installed; the message says how to provide it."""
