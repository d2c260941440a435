"""Read word intervals from Praat TextGrids as Montreal Forced Aligner writes them.

MFA 3 exports (via praatio) one TextGrid per utterance with interval tiers ``words`` and
``phones``, or ``"<speaker> - words"`` when a file has several speakers. Silences are empty
intervals; they are skipped, as in the paper's preprocessing. Parsing uses praatio (the library
MFA itself writes with), both the long and the short TextGrid formats.
"""

from __future__ import annotations

from pathlib import Path

from praatio import textgrid
from praatio.utilities.errors import PraatioException

SKIP_MARKS = {"", "sil", "sp", "<eps>"}


def word_tier_name(names: list[str], speaker: str | None = None) -> str:
    if "words" in names:
        return "words"
    wanted = f"{speaker} - words" if speaker else None
    if wanted in names:
        return wanted
    candidates = [n for n in names if n.endswith(" - words")]
    if len(candidates) == 1:
        return candidates[0]
    raise ValueError(f"no unique words tier (tiers: {names}; speaker: {speaker})")


def read_words(path: str | Path, speaker: str | None = None) -> list[tuple[str, float, float]]:
    """``(word, start, end)`` of the TextGrid's words tier, non-empty marks only, in time order."""
    try:
        tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    except (PraatioException, IndexError, KeyError) as exc:  # malformed file: a data error
        raise ValueError(f"{path}: not a readable TextGrid ({type(exc).__name__}: {exc})") from exc
    tier = tg.getTier(word_tier_name(list(tg.tierNames), speaker))
    return [
        (e.label.strip(), float(e.start), float(e.end))
        for e in sorted(tier.entries, key=lambda e: e.start)
        if e.label.strip() not in SKIP_MARKS
    ]
