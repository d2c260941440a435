"""Benchmark: the optional transcript language check (polysent.langcheck) on the demo corpus.

Usage:

    .venv/bin/python scripts/bench_langcheck.py [--bounds 0.3 0.5 0.7] [--manifest results/corpus/manifest.parquet]

Every sentence the demo lexicon renders (each evaluative concept with each noun, each neutral
template with each noun) in fr/es/pt/de is checked twice: under its own language (a flag is a
false positive) and labelled with each other language (a "swapped" transcript, as a manifest
with the wrong language column would give; a flag is a detection). With ``--manifest`` the
segments of a built corpus are checked under their own language too (false positives on the real
demo segments). Prints a Markdown block for docs/BENCHMARKS.md: rates per bound and per pair,
and the check's cost per segment.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import time
from pathlib import Path

from polysent import languages
from polysent.config import complete
from polysent.corpus.demo.text import Concept, load_lexicon
from polysent.langcheck import language_problem
from polysent.tokens import tokenize

LANGS = languages.codes("demo")
RESOURCES = Path(__file__).resolve().parents[1] / "resources" / "demo"


def demo_sentences() -> dict[str, list[list[str]]]:
    """Words of every distinct demo sentence, per language (parallel lists: index i translates)."""
    lex = load_lexicon(str(RESOURCES), LANGS)
    concepts = [
        Concept(c.template, noun, c.adjective, c.intensifier, c.negated) for c in lex.candidates() for noun in lex.nouns
    ]
    concepts += [Concept(tpl, noun) for tpl in lex.neutral for noun in lex.nouns]
    return {lang: [tokenize(lex.render(c, lang)) for c in concepts] for lang in LANGS}


def flagged(sentences: list[list[str]], lang: str, cfg: dict) -> int:
    return sum(language_problem(words, lang, cfg) is not None for words in sentences)


def manifest_sentences(path: str) -> dict[str, list[list[str]]]:
    import pandas as pd

    man = pd.read_parquet(path, columns=["lang", "transcript"])
    return {lang: [tokenize(t) for t in g.transcript] for lang, g in man.groupby("lang")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bounds", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    ap.add_argument("--manifest", default=None, help="a built manifest: false positives on its segments")
    args = ap.parse_args()

    base = complete({}, "align", "plausibility")
    sentences = demo_sentences()
    n = len(sentences["fr"])
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"{n} demo sentences per language, candidates {base['language_candidates']}\n"
    )
    print("| bound | false positives (own language) | detected (swapped language) |")
    print("|---|---|---|")
    per_pair = {}
    for bound in args.bounds:
        cfg = {**base, "min_language_share": bound}
        fp = {lang: flagged(sentences[lang], lang, cfg) for lang in LANGS}
        det = {(src, dst): flagged(sentences[src], dst, cfg) for src, dst in itertools.permutations(LANGS, 2)}
        per_pair[bound] = det
        fp_all, det_all = sum(fp.values()), sum(det.values())
        print(
            f"| {bound} | {fp_all}/{n * len(LANGS)} ({fp_all / (n * len(LANGS)):.1%}; "
            + ", ".join(f"{k} {v}" for k, v in fp.items())
            + f") | {det_all}/{n * len(det)} ({det_all / (n * len(det)):.1%}) |"
        )
    print("\nDetected per pair (sentence in X labelled Y), by bound:\n")
    print("| X -> Y | " + " | ".join(str(b) for b in args.bounds) + " |")
    print("|---|" + "---|" * len(args.bounds))
    for pair in itertools.permutations(LANGS, 2):
        print(f"| {pair[0]} -> {pair[1]} | " + " | ".join(f"{per_pair[b][pair] / n:.0%}" for b in args.bounds) + " |")
    if args.manifest:
        segs = manifest_sentences(args.manifest)
        total = sum(len(v) for v in segs.values())
        print(f"\nBuilt manifest {args.manifest} ({total} segments), false positives under their own language:\n")
        for bound in args.bounds:
            cfg = {**base, "min_language_share": bound}
            fp = sum(flagged(v, lang, cfg) for lang, v in segs.items())
            print(f"- bound {bound}: {fp}/{total}")
    cfg = {**base, "min_language_share": args.bounds[0]}
    words = [w for lang in LANGS for w in sentences[lang]]
    language_problem(words[0], "fr", cfg)  # dictionaries loaded once, outside the timing
    t0 = time.perf_counter()
    for w in words:
        language_problem(w, "fr", cfg)
    per = (time.perf_counter() - t0) / len(words)
    print(f"\nCost: {per * 1e3:.2f} ms per segment (mean over one pass of {len(words)} sentences, dictionaries loaded)")


if __name__ == "__main__":
    main()
