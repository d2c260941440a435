"""Transcript tokenisation shared by the aligner, the text encoders and the store."""

from __future__ import annotations

import re

# A word is a run of letters/digits, with inner apostrophes kept ("c'est", "l'homme") so that the
# aligner, the text encoders and the store all see the same tokens.
_WORD_RE = re.compile(r"\w+(?:['’]\w+)*", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Words of ``text`` in order, punctuation removed, case kept (the aligners need it as written)."""
    return [w.replace("’", "'") for w in _WORD_RE.findall(text or "")]
