"""Docstrings, comments, schemas and configs describe what is: no issue numbers, no dated history.

History lives in git and docs/BENCHMARKS.md (which keeps its dated rows). An upstream citation
(``issue #34`` of another project) is written with ``#`` and is not matched.
"""

from __future__ import annotations

import re

from conftest import REPO

HISTORY = re.compile(r"\bissues? \d+(\.\d+)*\b|\bpre-\d{4}-\d{2}\b", re.I)
SEARCHED = ("src/polysent", "workflow/schemas", "config")
SUFFIXES = {".py", ".yaml", ".yml", ".smk"}

# Files allowed to hold history while a branch that cleans them is open (empty: every file is
# clean; test_the_history_allowlist_only_shrinks fails once a listed file is clean).
ALLOWED: set[str] = set()


def history_mentions(text: str) -> list[tuple[int, str]]:
    return [(i, m.group()) for i, line in enumerate(text.splitlines(), 1) for m in HISTORY.finditer(line)]


def _hits() -> dict[str, list[str]]:
    hits = {}
    for folder in SEARCHED:
        for path in sorted((REPO / folder).rglob("*")):
            if path.suffix in SUFFIXES and path.is_file():
                found = history_mentions(path.read_text(encoding="utf-8"))
                if found:
                    rel = path.relative_to(REPO).as_posix()
                    hits[rel] = [f"{rel}:{line}: {what}" for line, what in found]
    return hits


def test_no_issue_numbers_or_dated_history():
    bad = [hit for rel, found in _hits().items() if rel not in ALLOWED for hit in found]
    assert not bad, "history in docstrings/comments/schemas/configs (say what is):\n  " + "\n  ".join(bad)


def test_the_history_allowlist_only_shrinks():
    clean = sorted(ALLOWED - set(_hits()))
    assert not clean, f"remove from ALLOWED: {clean}"


def test_the_history_check_sees_it():
    text = "a\n# Sized for evidence (issue 13): x\nthe pre-2026-12 rule\nupstream issue #34\nissues 7\n"
    assert history_mentions(text) == [(2, "issue 13"), (3, "pre-2026-12"), (5, "issues 7")]
