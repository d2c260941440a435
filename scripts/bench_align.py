"""Benchmark: aeneas word-boundary error against the demo's ground-truth timings, and Apertium
translation quality against the demo's own parallel renderings (chrF / BLEU, sacrebleu).

Usage (on a finished run, e.g. after `snakemake --configfile config/tiny.yaml results/media/000`):

    .venv/bin/python scripts/bench_align.py --results results [--limit 40]

Prints a Markdown block for docs/BENCHMARKS.md. Boundary error = |aligned - true| over every word
start and end (seconds from the segment start); ends include the pause the aligner gives a word
before the next one, so they are the harder half.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from polysent.align import align_shard


VARIANTS = {
    "aeneas defaults (40 ms shift, no trimming)": {"mfcc_window_shift": 0.04, "trim_silence": False},
    "20 ms shift, no trimming": {"mfcc_window_shift": 0.02, "trim_silence": False},
    "polysent default (10 ms shift + silence trimming)": {},
}


def align_errors(results: Path, acfg: dict, limit: int | None, threads: int) -> dict:
    man = pd.read_parquet(results / "corpus" / "manifest.parquet")
    truth = pd.read_parquet(results / "corpus" / "word_truth.parquet")
    rows, n_qc, t0 = [], 0, time.perf_counter()
    for shard, part in man.groupby("shard"):
        if limit:
            part = part.head(limit)
        with tempfile.TemporaryDirectory() as tmp:
            cfg = {"backend": "aeneas", "aeneas": acfg}
            table, qc = align_shard(part, results / "media" / f"{int(shard):03d}", cfg, tmp, threads)
        rows.append(table.to_pandas())
        n_qc += len(qc)
    secs = time.perf_counter() - t0
    got = pd.concat(rows, ignore_index=True)
    j = got.merge(truth, on=["segment_id", "word_idx"], suffixes=("", "_true"))
    j = j[j["word"].str.lower() == j["word_true"].str.lower()]
    s = np.abs(j["start"] - j["start_true"]).to_numpy()
    e = np.abs(j["end"] - j["end_true"]).to_numpy()
    both = np.concatenate([s, e])
    return {
        "segments": got["segment_id"].nunique(), "qc": n_qc, "words": len(j),
        "median_ms": 1000 * np.median(both), "p90_ms": 1000 * np.percentile(both, 90),
        "start_median_ms": 1000 * np.median(s), "end_median_ms": 1000 * np.median(e),
        "s_per_segment": secs / max(got["segment_id"].nunique(), 1),
    }


def translation_scores(limit: int) -> dict:
    """Apertium fr→es of demo sentences vs the demo's Spanish rendering of the same concepts."""
    import sacrebleu

    from polysent.corpus.demo.text import Concept, load_lexicon
    from polysent.translate import apertium_translate

    res = str(Path(__file__).resolve().parents[1] / "resources" / "demo")
    lex = load_lexicon(res, ("fr", "es"))
    concepts = [Concept(t, n) for t, n in itertools.product(lex.neutral, lex.nouns)]
    concepts += [Concept(c.template, n, c.adjective, c.intensifier, c.negated)
                 for c, n in itertools.product(lex.candidates(), lex.nouns)]
    rng = np.random.default_rng(0)
    concepts = [concepts[i] for i in sorted(rng.choice(len(concepts), min(limit, len(concepts)), replace=False))]
    fr = [lex.render(c, "fr") for c in concepts]
    es = [lex.render(c, "es") for c in concepts]
    t0 = time.perf_counter()
    hyp = apertium_translate(fr, "fr", "es")
    secs = time.perf_counter() - t0
    return {
        "sentences": len(fr),
        "chrF": sacrebleu.corpus_chrf(hyp, [es]).score,
        "BLEU": sacrebleu.corpus_bleu(hyp, [es]).score,
        "seconds": secs,
        "examples": list(zip(fr[:3], hyp[:3], es[:3])),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--limit", type=int, default=None, help="segments per shard")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sentences", type=int, default=2000)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {platform.python_version()}, {__import__('os').cpu_count()} cores")
    print("\n| aeneas settings | segments | words | median (ms) | p90 (ms) | start median | end median | s/segment |")
    print("|---|---|---|---|---|---|---|---|")
    for name, acfg in VARIANTS.items():
        r = align_errors(args.results, acfg, args.limit, args.threads)
        print(f"| {name} | {r['segments']} (+{r['qc']} QC) | {r['words']} | {r['median_ms']:.0f} | "
              f"{r['p90_ms']:.0f} | {r['start_median_ms']:.0f} | {r['end_median_ms']:.0f} | {r['s_per_segment']:.2f} |")
    t = translation_scores(args.sentences)
    print(f"\nApertium fr→es on {t['sentences']} demo sentences vs the demo's Spanish renderings: "
          f"chrF {t['chrF']:.1f}, BLEU {t['BLEU']:.1f} (sacrebleu), one process call, {t['seconds']:.1f} s")
    for f, h, e in t["examples"]:
        print(f"- `{f}` → `{h}` (demo: `{e}`)")


if __name__ == "__main__":
    main()
