"""Seeded train/valid/test splits by video (no speaker/video leaks across splits).

Shared by every corpus source. Splits are drawn per language so that each language gets the
configured fractions (the paper splits French and Spanish videos 80/10/10 separately). The
assignment depends only on the seed and the *set* of video ids (sorted before shuffling), so the
order in which files were read never changes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

from polysent.contracts import SPLITS


def _stable_key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=4).digest(), "big")


def split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """How many of ``n`` videos go to train/valid/test.

    Largest-remainder rounding; once there are at least three videos, valid and test get at
    least one each (a split without videos would make model selection or evaluation impossible).
    """
    fr = np.asarray(fractions, dtype=float)
    if fr.shape != (3,) or np.any(fr < 0) or not np.isclose(fr.sum(), 1.0):
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    raw = fr * n
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    if n >= 3:
        for i in (1, 2):
            if counts[i] == 0 and fr[i] > 0:
                counts[i] = 1
                counts[int(np.argmax(counts))] -= 1
    return [int(c) for c in counts]


def assign_splits(
    video_ids: Iterable[str], seed: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), group: str = ""
) -> dict[str, str]:
    """Map each distinct video id to ``train``/``valid``/``test``; ``group`` (e.g. the language) salts the seed."""
    videos = sorted(set(video_ids))
    rng = np.random.default_rng([seed, _stable_key(f"splits/{group}")])
    order = rng.permutation(len(videos))
    counts = split_counts(len(videos), fractions)
    labels = np.repeat(np.array(SPLITS), counts)
    return {videos[i]: str(labels[k]) for k, i in enumerate(order)}


def split_frame(frame, seed: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), by_lang: bool = True):
    """Return the ``split`` column (a list aligned with ``frame`` rows) for a frame with ``video_id``/``lang``."""
    mapping: dict[tuple[str, str], str] = {}
    if by_lang:
        for lang, part in frame.groupby("lang", sort=True):
            for vid, split in assign_splits(part["video_id"], seed, fractions, group=str(lang)).items():
                mapping[(str(lang), vid)] = split
        return [mapping[(str(lang), v)] for lang, v in zip(frame["lang"], frame["video_id"])]
    flat = assign_splits(frame["video_id"], seed, fractions)
    return [flat[v] for v in frame["video_id"]]
