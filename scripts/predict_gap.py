"""Benchmark: a text-free bundle's predictions over pseudo-words against over aligned words.

The same segments are predicted twice with the same bundle: from a manifest with their
transcripts (words aligned, as in training) and from the same manifest without them (each
segment cut into pseudo-words of ``--pseudo-word`` seconds). The gap is what pooling over fixed
windows instead of words costs on those segments; it says nothing about segmentation.

    python scripts/predict_gap.py --bundle B --manifest M.csv --work DIR [--split test] [--lang fr]

Prints mean, median and max |difference|, the sign flips and the count, as a Markdown row.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from polysent.predict import predict


def gap(bundle: str, manifest: str, work: Path, pseudo_word: float, threads: int) -> dict:
    man = pd.read_parquet(manifest) if manifest.endswith(".parquet") else pd.read_csv(manifest, keep_default_na=False)
    work.mkdir(parents=True, exist_ok=True)
    man.to_csv(work / "aligned.csv", index=False)
    man.assign(transcript="").to_csv(work / "pseudo.csv", index=False)
    runs = {}
    for name in ("aligned", "pseudo"):
        rows = predict(
            bundle,
            work / f"{name}.out.csv",
            manifest=work / f"{name}.csv",
            work=work / name,
            pseudo_word=pseudo_word,
            threads=threads,
            progress=False,
        )
        runs[name] = rows.dropna(subset=["segment_id"]).set_index("segment_id")["prediction"]
    both = pd.concat(runs, axis=1).dropna()
    diff = (both["pseudo"] - both["aligned"]).abs()
    return {
        "segments": int(len(both)),
        "mean_abs": float(diff.mean()),
        "median_abs": float(diff.median()),
        "max_abs": float(diff.max()),
        "sign_flips": int((np.sign(both["pseudo"]) != np.sign(both["aligned"])).sum()),
        "aligned_sd": float(both["aligned"].std()),
        "pseudo_word": pseudo_word,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--manifest", required=True, help="segments with transcripts (the corpus manifest)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--split", nargs="*", default=["test"], help="manifest splits to predict")
    ap.add_argument("--lang", nargs="*", default=None, help="languages (default: all)")
    ap.add_argument("--pseudo-word", type=float, default=0.4)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    man = pd.read_parquet(args.manifest) if args.manifest.endswith(".parquet") else pd.read_csv(args.manifest)
    man = man[man["split"].isin(args.split) & (man["lang"].isin(args.lang) if args.lang else True)]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    man.to_parquet(work / "segments.parquet")
    out = gap(args.bundle, str(work / "segments.parquet"), work, args.pseudo_word, args.threads)
    print(json.dumps(out, indent=1))
    print(
        f"| {args.bundle} | {'/'.join(args.split)} {'/'.join(args.lang or ['all'])} | {out['segments']} | "
        f"{out['mean_abs']:.3f} | {out['median_abs']:.3f} | {out['max_abs']:.3f} | {out['sign_flips']} | "
        f"{out['aligned_sd']:.3f} |"
    )


if __name__ == "__main__":
    main()
