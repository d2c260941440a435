"""A cheap language check of transcripts (optional; off by default).

Signal: the share of a transcript's distinct words that simplemma's lemmatisation dictionary of a
language knows (``simplemma.langdetect``: offline, pure Python, dictionaries for fr/es/pt/de/en/it
and ~50 more). A transcript is flagged when the share for its own language is below
``align.plausibility.min_language_share`` *and* another candidate language knows more of its words
(that one is the guessed language). The second condition keeps short transcripts full of names or
numbers, which no dictionary knows, from being flagged.

Measured on the demo corpus (``scripts/bench_langcheck.py``, docs/BENCHMARKS.md): every demo
sentence in fr/es/pt/de, and each of them labelled with every other language ("swapped"). Closely
related languages (es/pt) share many short words, so a swapped es/pt sentence can pass: that is why
the bound is a user's choice and the check is off (``null``) unless configured.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from polysent.qc import QCLog

SETTING = "align.plausibility.min_language_share"


def language_shares(words: Iterable[str], candidates: Sequence[str]) -> dict[str, float]:
    """Share of the distinct (lower-cased) words known to each candidate language's dictionary."""
    import simplemma

    text = " ".join(w.lower() for w in words)
    shares = dict(simplemma.langdetect(text, lang=tuple(dict.fromkeys(candidates))))
    shares.pop("unk", None)
    return shares


def language_problem(words: Sequence[str], lang: str, cfg: dict) -> str | None:
    """The QC reason when ``words`` look like another language than ``lang``; None when they do
    not, when the check is off (``min_language_share`` null) or when there are no words."""
    bound = cfg.get("min_language_share")
    if bound is None or not words:
        return None
    candidates = [lang, *(c for c in cfg.get("language_candidates") or () if c != lang)]
    shares = language_shares(words, candidates)
    share = shares.get(lang, 0.0)
    guess, top = max(((c, s) for c, s in shares.items() if c != lang), key=lambda cs: cs[1], default=(None, 0.0))
    if share >= bound or guess is None or top <= share:
        return None
    return (
        f"transcript looks like another language: {share:.0%} of its words known to the "
        f"'{lang}' dictionary, {top:.0%} to '{guess}' (guessed language '{guess}'; bound "
        f"{SETTING} = {bound})"
    )


def screen_language(segments: list, cfg: dict, qc: QCLog) -> list:
    """The segments (``.words``, ``.lang``) that pass :func:`language_problem`; each other one
    gets a QC record naming the segment, the shares and the guessed language."""
    if cfg.get("min_language_share") is None:
        return segments
    kept = []
    for seg in segments:
        why = language_problem(seg.words, seg.lang, cfg)
        if why:
            qc.add(why, seg.segment_id, seg.video_id)
        else:
            kept.append(seg)
    return kept
