"""Synthetic feature stores with the exact layout of ``results/store/{lang}.parquet``.

For unit tests and benchmarks only, never a stand-in for real features: the vectors are noise plus a
label signal, so the training code can be exercised and timed without building a corpus. Kept
apart from :mod:`polysent.data` so the training data path holds no test fixture.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .data import MODALITIES, TR_SUFFIX


def synthetic_store_table(
    lang: str,
    n_videos: int = 12,
    segments_per_video: int = 5,
    dims: dict[str, int] | None = None,
    max_words: int = 12,
    seed: int = 0,
    emotions: tuple[str, ...] = ("happiness", "sadness"),
    signal: dict[str, float] | None = None,
    tr_lang: str | None = "xx",
) -> pa.Table:
    """A *synthetic* feature store with the exact layout of ``results/store/{lang}.parquet``.

    For unit tests and benchmarks only (never a stand-in for real features): every word vector
    is Gaussian noise plus ``signal[m] * y`` along a fixed random direction per modality, so a
    model can learn the label, text most, audio least. Videos are split 60/20/20 into
    train/valid/test. The translation has its own length and the same label signal.
    """
    dims = dims or {"text": 300, "visual": 14, "acoustic": 25}
    signal = signal or {"text": 1.0, "visual": 0.5, "acoustic": 0.25}
    rng = np.random.default_rng([seed, zlib.crc32(lang.encode())])
    direction = {m: np.random.default_rng([seed, i]).normal(size=d) for i, (m, d) in enumerate(dims.items())}
    direction = {m: v / np.linalg.norm(v) * np.sqrt(len(v)) for m, v in direction.items()}
    rows: dict[str, list] = {
        k: []
        for k in ("segment_id", "video_id", "lang", "split", "sentiment", "words", "words_tr", "tr_lang", *emotions)
    }
    seqs = {f"{m}{sfx}": [] for m in MODALITIES for sfx in ("", TR_SUFFIX)}

    def words(y: float, n: int, m: str) -> np.ndarray:
        noise = rng.normal(size=(n, dims[m]))
        return (noise + signal[m] * y / 3.0 * direction[m]).astype(np.float32)

    for v in range(n_videos):
        split = "train" if v % 5 < 3 else ("valid" if v % 5 == 3 else "test")
        for k in range(segments_per_video):
            y = float(np.clip(np.round(rng.normal(0.3, 1.3) * 3) / 3, -3, 3))
            n = int(rng.integers(2, max_words + 1))
            n_tr = int(rng.integers(2, max_words + 1))
            rows["segment_id"].append(f"{lang}_v{v:03d}_{k:02d}")
            rows["video_id"].append(f"{lang}_v{v:03d}")
            rows["lang"].append(lang)
            rows["split"].append(split)
            rows["sentiment"].append(y)
            rows["words"].append([f"w{i}" for i in range(n)])
            rows["words_tr"].append([f"t{i}" for i in range(n_tr)] if tr_lang else [])
            rows["tr_lang"].append(tr_lang)
            for i, e in enumerate(emotions):
                rows[e].append(float((y > 0.5) if i % 2 == 0 else (y < -0.5)))
            for m in MODALITIES:
                seqs[m].append(words(y, n, m))
                seqs[f"{m}{TR_SUFFIX}"].append(words(y, n_tr, m) if tr_lang else np.zeros((0, dims[m]), np.float32))
    fields = {
        "segment_id": pa.array(rows["segment_id"], pa.string()),
        "video_id": pa.array(rows["video_id"], pa.string()),
        "lang": pa.array(rows["lang"], pa.string()),
        "split": pa.array(rows["split"], pa.string()),
        "sentiment": pa.array(rows["sentiment"], pa.float32()),
        **{e: pa.array(rows[e], pa.float32()) for e in emotions},
        "words": pa.array(rows["words"], pa.list_(pa.string())),
        "tr_lang": pa.array(rows["tr_lang"], pa.string()),
        "words_tr": pa.array(rows["words_tr"], pa.list_(pa.string())),
    }
    for name, values in seqs.items():
        d = dims[name.removesuffix(TR_SUFFIX)]
        flat = np.concatenate([x.reshape(-1) for x in values]).astype(np.float32)
        offsets = np.cumsum([0] + [len(x) for x in values]).astype(np.int32)
        inner = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), d)
        fields[name] = pa.ListArray.from_arrays(pa.array(offsets), inner)
    return pa.table(fields)


def write_benchmark_stores(
    workdir, emotions: tuple[str, ...] = ("happiness", "sadness"), paths_as_str: bool = False
) -> dict:
    """fr and es synthetic stores of a small demo's size (38 videos x 5 segments, up to 16 words,
    the paper's feature dimensions), each carrying the other language as its translation; for the
    model and training benchmarks. Returns ``{lang: path}``."""
    stores = {}
    for lang, other in (("fr", "es"), ("es", "fr")):
        path = Path(workdir) / f"{lang}.parquet"
        table = synthetic_store_table(
            lang,
            n_videos=38,
            segments_per_video=5,
            max_words=16,
            tr_lang=other,
            dims={"text": 300, "visual": 14, "acoustic": 25},
            emotions=emotions,
        )
        pq.write_table(table, path)
        stores[lang] = str(path) if paths_as_str else path
    return stores
