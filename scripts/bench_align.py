"""Benchmark: aeneas word-boundary error against the demo's ground-truth timings, the aeneas
engines' throughput side by side, and Apertium translation quality against the demo's own
parallel renderings (chrF / BLEU, sacrebleu).

Usage (on a finished run, e.g. after `snakemake results/media/000 results/media/001 --configfile config/tiny.yaml`):

    .venv/bin/python scripts/bench_align.py --results results [--limit 40] [--repeat 3] \
        [--sections engines variants translation]

Prints Markdown blocks for docs/BENCHMARKS.md. Boundary error = |aligned - true| over every word
start and end (seconds from the segment start); ends include the pause the aligner gives a word
before the next one, so they are the harder half. ``engines`` aligns the same segments with
``align.aeneas.engine: cli`` (one aeneas command-line process per segment, the earlier path) and
``library`` (aeneas' API in a fork per segment) in alternating order, ``--repeat`` times each,
and reports medians, their ratio and whether the two word tables are identical.
"""

from __future__ import annotations

import argparse
import itertools
import os
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
    "10 ms shift, words only shrunk to their active frames": {"snap_to_speech": False},
    "polysent default (10 ms shift, words fitted to the speech above the clip's noise floor)": {},
}
ENGINES = ("cli", "library")


def run_aligner(results: Path, acfg: dict, limit: int | None, threads: int) -> tuple[pd.DataFrame, int, float]:
    """Align every shard of the run (first ``limit`` segments each): words, QC count, seconds."""
    man = pd.read_parquet(results / "corpus" / "manifest.parquet")
    rows, n_qc, secs = [], 0, 0.0
    for shard, part in man.groupby("shard"):
        if limit:
            part = part.head(limit)
        with tempfile.TemporaryDirectory() as tmp:
            cfg = {"backend": "aeneas", "aeneas": acfg}
            t0 = time.perf_counter()
            table, qc = align_shard(part, results / "media" / f"{int(shard):03d}", cfg, tmp, threads=threads)
            secs += time.perf_counter() - t0
        rows.append(table.to_pandas())
        n_qc += len(qc)
    return pd.concat(rows, ignore_index=True), n_qc, secs


def boundary_errors(got: pd.DataFrame, truth: pd.DataFrame) -> dict:
    j = got.merge(truth, on=["segment_id", "word_idx"], suffixes=("", "_true"))
    j = j[j["word"].str.lower() == j["word_true"].str.lower()]
    s = np.abs(j["start"] - j["start_true"]).to_numpy()
    e = np.abs(j["end"] - j["end_true"]).to_numpy()
    both = np.concatenate([s, e])
    return {
        "segments": got["segment_id"].nunique(),
        "words": len(j),
        "median_ms": 1000 * np.median(both),
        "p90_ms": 1000 * np.percentile(both, 90),
        "start_median_ms": 1000 * np.median(s),
        "end_median_ms": 1000 * np.median(e),
    }


def align_errors(results: Path, acfg: dict, limit: int | None, threads: int) -> dict:
    truth = pd.read_parquet(results / "corpus" / "word_truth.parquet")
    got, n_qc, secs = run_aligner(results, acfg, limit, threads)
    r = boundary_errors(got, truth)
    return {**r, "qc": n_qc, "s_per_segment": secs / max(r["segments"], 1)}


def compare_engines(results: Path, limit: int | None, threads: int, repeat: int) -> None:
    """Both engines on the same segments, alternating which goes first, ``repeat`` times."""
    truth = pd.read_parquet(results / "corpus" / "word_truth.parquet")
    secs = {e: [] for e in ENGINES}
    words: dict[str, list[pd.DataFrame]] = {e: [] for e in ENGINES}
    n_qc = {}
    for k in range(repeat):
        for engine in ENGINES if k % 2 == 0 else ENGINES[::-1]:
            got, n_qc[engine], t = run_aligner(results, {"engine": engine}, limit, threads)
            secs[engine].append(t)
            words[engine].append(got)
    n = words["cli"][0]["segment_id"].nunique()
    print(
        f"\n| aeneas engine | segments | words | median (ms) | p90 (ms) | start / end median | "
        f"align wall, median of {repeat} (s) | segments/s | runs (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    rate = {}
    for engine in ENGINES:
        r = boundary_errors(words[engine][0], truth)
        med = float(np.median(secs[engine]))
        rate[engine] = r["segments"] / med
        runs = ", ".join(f"{t:.1f}" for t in secs[engine])
        print(
            f"| {engine} | {r['segments']} (+{n_qc[engine]} QC) | {r['words']} | {r['median_ms']:.0f} | "
            f"{r['p90_ms']:.0f} | {r['start_median_ms']:.0f} / {r['end_median_ms']:.0f} | {med:.1f} | "
            f"{rate[engine]:.2f} | {runs} |"
        )
    same_repeats = all(w.equals(ws[0]) for ws in words.values() for w in ws)
    ratios = [c / lib for c, lib in zip(secs["cli"], secs["library"])]
    print(
        f"\nlibrary / cli throughput: **{rate['library'] / rate['cli']:.1f}x** (ratio of medians; "
        f"per repeat {', '.join(f'{x:.1f}' for x in ratios)}) on {n} segments, {threads} workers. "
        f"{engine_difference(words['cli'][0], words['library'][0])}; each engine's words identical "
        f"across repeats: {'yes' if same_repeats else 'NO'}."
    )


def engine_difference(cli: pd.DataFrame, lib: pd.DataFrame) -> str:
    """Where the two engines' word tables differ (segments, boundaries, largest shift)."""
    if cli.equals(lib):
        return "Word tables of the two engines identical"
    j = cli.merge(lib, on=["segment_id", "word_idx"], how="outer", suffixes=("_c", "_l"), indicator=True)
    d = np.abs(j[["start_c", "end_c"]].to_numpy() - j[["start_l", "end_l"]].to_numpy())
    moved = (d > 0) | np.isnan(d)
    segs = j.loc[moved.any(axis=1) | (j["_merge"] != "both"), "segment_id"].nunique()
    return (
        f"Word tables of the two engines differ in {segs} of {cli['segment_id'].nunique()} segments: "
        f"{int(moved.sum())} of {d.size} boundaries, by at most {1000 * np.nanmax(d):.0f} ms"
    )


def translation_scores(limit: int) -> dict:
    """Apertium fr→es of demo sentences vs the demo's Spanish rendering of the same concepts."""
    import sacrebleu

    from polysent.corpus.demo.text import Concept, load_lexicon
    from polysent.translate import apertium_translate

    res = str(Path(__file__).resolve().parents[1] / "resources" / "demo")
    lex = load_lexicon(res, ("fr", "es"))
    concepts = [Concept(t, n) for t, n in itertools.product(lex.neutral, lex.nouns)]
    concepts += [
        Concept(c.template, n, c.adjective, c.intensifier, c.negated)
        for c, n in itertools.product(lex.candidates(), lex.nouns)
    ]
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
    ap.add_argument("--repeat", type=int, default=3, help="runs of each engine (engines section)")
    ap.add_argument("--sentences", type=int, default=2000)
    ap.add_argument(
        "--sections",
        nargs="+",
        default=["engines", "variants", "translation"],
        choices=["engines", "variants", "translation"],
    )
    args = ap.parse_args()
    load = os.getloadavg()[0]
    print(
        f"machine: {platform.machine()}, {platform.python_version()}, {os.cpu_count()} cores, "
        f"load average {load:.1f} at start"
    )
    if "engines" in args.sections:
        compare_engines(args.results, args.limit, args.threads, args.repeat)
    if "variants" in args.sections:
        print(
            "\n| aeneas settings | segments | words | median (ms) | p90 (ms) | start median | end median | s/segment |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for name, acfg in VARIANTS.items():
            r = align_errors(args.results, acfg, args.limit, args.threads)
            print(
                f"| {name} | {r['segments']} (+{r['qc']} QC) | {r['words']} | {r['median_ms']:.0f} | "
                f"{r['p90_ms']:.0f} | {r['start_median_ms']:.0f} | {r['end_median_ms']:.0f} | "
                f"{r['s_per_segment']:.2f} |"
            )
    if "translation" in args.sections:
        t = translation_scores(args.sentences)
        print(
            f"\nApertium fr→es on {t['sentences']} demo sentences vs the demo's Spanish renderings: "
            f"chrF {t['chrF']:.1f}, BLEU {t['BLEU']:.1f} (sacrebleu), one process call, {t['seconds']:.1f} s"
        )
        for f, h, e in t["examples"]:
            print(f"- `{f}` → `{h}` (demo: `{e}`)")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
