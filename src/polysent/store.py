"""The word-aligned feature store: one row per segment, every modality pooled per word.

For each aligned word ``[start, end]`` (seconds from the segment start) the visual and acoustic
frames with ``start ≤ time ≤ end`` are mean-pooled — the paper's rule (MFA words, OpenFace rows
averaged). Words shorter than ``store.min_word_duration`` (40 ms) are widened by that amount, as
the paper did, so a word never falls between two frames. Visual frames without a face
(``success = false``, NaN features) are excluded from the mean.

A word with no usable frame is handled by ``store.missing_frames``: ``zero`` imputes a zero vector
(CMU-SDK ``impute``) and counts it in the metadata; ``drop`` removes the segment and writes a QC
record. Segments without alignment or text vectors are QC records too, never silently lost.
A segment with a QC record from an earlier stage named in ``store.exclude_qc_from`` (default:
media, acoustic, visual: it ends after its audio, has no acoustic frames or no face at all) is
left out with a store QC row quoting that record, instead of training on zero vectors.

Translation columns (``tr_lang``, ``words_tr``, ``text_tr``, ``visual_tr``, ``acoustic_tr``): the
translated words are **re-timed proportionally** — each gets a share of the aligned speech span
(first word start → last word end) proportional to its character length + 1 — and the frames are
pooled over those intervals. This is an approximation (translation word order and durations are
not the speaker's), enough to make "video of language A + translated text in B" a full
word-aligned sample for translation augmentation.

Layout (kept exactly; ``polysent.data`` reads it): ``segment_id, video_id, lang, split,
sentiment`` + float32 label columns, ``words`` list<string>, ``text``/``visual``/``acoustic``
list<fixed_size_list<float32>[D]>, ``tr_lang``, ``words_tr``, ``text_tr``/``visual_tr``/
``acoustic_tr``. Metadata (provenance key ``polysent``): feature names, dims, input provenance.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from polysent.config import complete
from polysent.contracts import FEATURE_STORE, check, read
from polysent.io import PROVENANCE_KEY, read_provenance
from polysent.qc import QCLog, read_qc
from polysent.stage import Config, PathArg, PathArgs

log = logging.getLogger(__name__)

MODALITIES = ("text", "visual", "acoustic")
FRAME_META = ("segment_id", "time", "success", "confidence")


def feature_columns(frames: pd.DataFrame) -> list[str]:
    """Named float feature columns of a frame store (everything but ids/time/success/confidence)."""
    return [c for c in frames.columns if c not in FRAME_META]


def widen(starts: np.ndarray, ends: np.ndarray, min_dur: float) -> tuple[np.ndarray, np.ndarray]:
    """The paper's rule: a word shorter than ``min_dur`` gets ``min_dur`` added to its end."""
    ends = ends.copy()
    short = (ends - starts) < min_dur
    ends[short] += min_dur
    return starts, ends


def pool(times: np.ndarray, feats: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the rows of ``feats`` with ``start ≤ time ≤ end`` per interval, ignoring NaN rows.

    ``times`` must be sorted. Returns (pooled (W, D) float32, missing (W,) bool) — missing means
    no finite frame fell inside the interval (its row is zero).
    """
    w, d = len(starts), feats.shape[1]
    out = np.zeros((w, d), np.float32)
    missing = np.ones(w, bool)
    if len(times) == 0:
        return out, missing
    ok = np.all(np.isfinite(feats), axis=1)
    lo = np.searchsorted(times, starts, side="left")
    hi = np.searchsorted(times, ends, side="right")
    for i in range(w):
        rows = feats[lo[i] : hi[i]][ok[lo[i] : hi[i]]]
        if len(rows):
            out[i] = rows.mean(0)
            missing[i] = False
    return out, missing


def retime(words: list[str], span_start: float, span_end: float) -> tuple[np.ndarray, np.ndarray]:
    """Proportional re-timing of translated words over the aligned speech span (see module doc)."""
    weights = np.array([len(w) + 1 for w in words], float)
    edges = span_start + (span_end - span_start) * np.concatenate([[0], np.cumsum(weights)]) / weights.sum()
    return edges[:-1], edges[1:]


def _seq_array(seqs: list[np.ndarray], dim: int) -> pa.Array:
    """list<fixed_size_list<float32>[dim]> from per-row (L_i, dim) arrays."""
    lengths = np.array([len(s) for s in seqs], np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    flat = np.concatenate([s.reshape(-1) for s in seqs]) if seqs else np.zeros(0, np.float32)
    inner = pa.FixedSizeListArray.from_arrays(pa.array(flat.astype(np.float32), pa.float32()), dim)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), inner)


def store_schema(labels: list[str], dims: dict[str, int]) -> pa.Schema:
    """The store's Arrow schema in its column order; types from ``contracts.FEATURE_STORE``."""
    types = FEATURE_STORE.required

    def seq(d):
        return pa.list_(pa.list_(pa.float32(), d))

    fields = [
        *[(c, types[c]) for c in ("segment_id", "video_id", "lang", "split", "sentiment")],
        *[(c, pa.float32()) for c in labels],
        ("words", types["words"]),
        *[(m, seq(dims[m])) for m in MODALITIES],
        ("tr_lang", types["tr_lang"]),
        ("words_tr", types["words_tr"]),
        *[(f"{m}_tr", seq(dims[m])) for m in MODALITIES],
    ]
    return pa.schema(fields)


class _Frames:
    """Per-segment access to a frame store (sorted times, float features)."""

    def __init__(self, frames: pd.DataFrame, name: str):
        self.name = name
        self.columns = feature_columns(frames)
        if "success" in frames.columns:
            # No face → no features: make sure a failed frame cannot enter a mean.
            frames = frames.copy()
            frames.loc[~frames["success"].astype(bool), self.columns] = np.nan
        frames = frames.sort_values(["segment_id", "time"], kind="stable")
        self.groups = {
            sid: (g["time"].to_numpy(np.float64), g[self.columns].to_numpy(np.float32))
            for sid, g in frames.groupby("segment_id", sort=False)
        }

    def get(self, sid: str):
        empty = (np.zeros(0), np.zeros((0, len(self.columns)), np.float32))
        return self.groups.get(sid, empty)


def build_store(
    manifest: pd.DataFrame,
    lang: str,
    words: pd.DataFrame,
    acoustic: pd.DataFrame,
    visual: pd.DataFrame,
    text: pd.DataFrame,
    text_tr: pd.DataFrame | None,
    tr_lang: str | None,
    labels: list[str],
    cfg: dict,
    blocked: dict[str, str] | None = None,
    text_dim: int | None = None,
) -> tuple[pa.Table, QCLog, dict]:
    """Assemble the feature store of ``lang``; return (table, QC, stats for the metadata).

    ``blocked``: segment id -> why an earlier stage's QC keeps it out (:func:`blocking_records`);
    each such segment gets a store QC row saying so instead of a row with zeroed modalities.

    ``words``: WORDS rows; ``text``: text-stage rows of kind ``source`` for ``lang``; ``text_tr``:
    text-stage rows of kind ``translation`` in ``tr_lang`` (None when no pair has ``lang`` as
    source — the translation columns are then empty lists). ``text_dim``: the text vectors'
    width (the text store's Arrow type); when None, the width of the first text vector.
    """
    settings = complete(cfg, "store")
    min_dur = float(settings["min_word_duration"])
    policy = settings["missing_frames"]
    qc = QCLog("store")
    segs = manifest[manifest["lang"] == lang].sort_values("segment_id")
    frames = {"acoustic": _Frames(acoustic, "acoustic"), "visual": _Frames(visual, "visual")}
    dims = {"acoustic": len(frames["acoustic"].columns), "visual": len(frames["visual"].columns)}
    text_groups = {sid: g.sort_values("word_idx") for sid, g in text.groupby("segment_id")}
    tr_groups = (
        {sid: g.sort_values("word_idx") for sid, g in text_tr.groupby("segment_id")}
        if text_tr is not None and len(text_tr)
        else {}
    )
    dims["text"] = _vec_dim(text, text_dim)
    word_groups = {sid: g.sort_values("word_idx") for sid, g in words.groupby("segment_id")}
    cols: dict[str, list] = {
        k: [] for k in ("segment_id", "video_id", "lang", "split", "sentiment", *labels, "words", "tr_lang", "words_tr")
    }
    seqs: dict[str, list] = {m: [] for m in MODALITIES} | {f"{m}_tr": [] for m in MODALITIES}
    stats = {
        "segments": 0,
        "words": 0,
        "imputed_words": {"visual": 0, "acoustic": 0},
        "segments_without_frames": {"visual": 0, "acoustic": 0},
        "translated_segments": 0,
    }
    blocked = blocked or {}
    for rec in segs.to_dict("records"):
        sid, vid = rec["segment_id"], rec["video_id"]
        if sid in blocked:
            qc.add(f"excluded: {blocked[sid]}", sid, vid)
            continue
        wg = word_groups.get(sid)
        if wg is None or not len(wg):
            qc.add("no word alignment (see qc/align)", sid, vid)
            continue
        tg = text_groups.get(sid)
        if tg is None or len(tg) != len(wg) or list(tg["word"]) != list(wg["word"]):
            qc.add("text vectors missing or out of step with the aligned words", sid, vid)
            continue
        starts, ends = widen(wg["start"].to_numpy(float), wg["end"].to_numpy(float), min_dur)
        pooled, miss = {}, {}
        for m in ("visual", "acoustic"):
            t, f = frames[m].get(sid)
            pooled[m], miss[m] = pool(t, f, starts, ends)
        if policy == "drop" and any(miss[m].any() for m in miss):
            what = ", ".join(f"{m}: {int(miss[m].sum())}" for m in miss if miss[m].any())
            qc.add(f"words without frames ({what} of {len(wg)}); store.missing_frames=drop", sid, vid)
            continue
        for m in miss:
            stats["imputed_words"][m] += int(miss[m].sum())
            stats["segments_without_frames"][m] += int(miss[m].all())
        # translation
        trg = tr_groups.get(sid)
        if trg is not None and len(trg):
            wtr = trg["word"].tolist()
            s_tr, e_tr = retime(wtr, float(wg["start"].min()), float(wg["end"].max()))
            s_tr, e_tr = widen(s_tr, e_tr, min_dur)
            for m in ("visual", "acoustic"):
                t, f = frames[m].get(sid)
                seqs[f"{m}_tr"].append(pool(t, f, s_tr, e_tr)[0])
            seqs["text_tr"].append(np.stack(trg["vector"].to_numpy()).astype(np.float32))
            cols["tr_lang"].append(tr_lang)
            cols["words_tr"].append(wtr)
            stats["translated_segments"] += 1
        else:
            for m in MODALITIES:
                seqs[f"{m}_tr"].append(np.zeros((0, dims[m]), np.float32))
            cols["tr_lang"].append(None)
            cols["words_tr"].append([])
        seqs["text"].append(np.stack(tg["vector"].to_numpy()).astype(np.float32))
        seqs["visual"].append(pooled["visual"])
        seqs["acoustic"].append(pooled["acoustic"])
        for k in ("segment_id", "video_id", "lang", "split", "sentiment", *labels):
            cols[k].append(rec[k])
        cols["words"].append(wg["word"].tolist())
        stats["segments"] += 1
        stats["words"] += len(wg)
    schema = store_schema(labels, dims)
    arrays = []
    for f in schema:
        if f.name in seqs:
            base = f.name.removesuffix("_tr")
            arrays.append(_seq_array(seqs[f.name], dims[base]))
        else:
            arrays.append(pa.array(cols[f.name], f.type))
    table = pa.Table.from_arrays(arrays, schema=schema)
    meta = {
        "dims": dims,
        "feature_names": {
            "visual": frames["visual"].columns,
            "acoustic": frames["acoustic"].columns,
            "text": [f"text_{i}" for i in range(dims["text"])],
        },
        "labels": labels,
        "tr_lang": tr_lang,
        "stats": stats,
        "translation_timing": "approximation: translated words re-timed proportionally to "
        "character length over the aligned speech span",
    }
    return table, qc, meta


def blocking_records(qc: pd.DataFrame, manifest: pd.DataFrame, stages) -> dict[str, str]:
    """Segment id -> reason for every QC record of ``stages`` (``store.exclude_qc_from``).

    Such a segment lost a modality upstream (a segment past the end of its audio, no acoustic
    frames, no face at all): stored, it would train on zero vectors. A video-level record
    (no segment id) blocks every segment of its video.
    """
    qc = qc[qc["stage"].isin(list(stages))]
    per_video = manifest.groupby("video_id")["segment_id"].apply(list).to_dict()
    found: dict[str, list[str]] = {}
    for rec in qc.sort_values(["stage", "reason"], kind="stable").to_dict("records"):
        sids = [rec["segment_id"]] if isinstance(rec["segment_id"], str) else per_video.get(rec["video_id"], [])
        for sid in sids:
            found.setdefault(sid, []).append(f"{rec['stage']} QC: {rec['reason']}")
    return {sid: "; ".join(dict.fromkeys(why)) + " (store.exclude_qc_from)" for sid, why in found.items()}


def _vec_dim(text: pd.DataFrame, declared: int | None) -> int:
    if declared is not None:
        return int(declared)
    if len(text):
        return int(len(text["vector"].iloc[0]))
    raise ValueError("no text vectors and no text dimension given: the text width is unknown")


def text_encoder_meta(text_prov: dict, dim: int) -> dict:
    """The feature store's summary of how its text vectors were made (from the text store's provenance)."""
    out = {"encoder": text_prov.get("encoder"), "dim": dim}
    for key in ("model", "versions", "note"):
        if key in text_prov:
            out[key] = text_prov[key]
    return out


def read_store(path: str | os.PathLike) -> tuple[pa.Table, dict]:
    """Read a feature store: (Arrow table, metadata dict with dims/feature_names/provenance).

    Checks the contract (``contracts.FEATURE_STORE``: columns and types, one row per segment)
    and equal per-row lengths of words/text/visual/acoustic, so a consumer fails here with the
    file and segment named.
    """
    table = read(path, FEATURE_STORE)
    raw = (table.schema.metadata or {}).get(PROVENANCE_KEY)
    meta = json.loads(raw) if raw else {}
    n_words = pc.list_value_length(table.column("words"))
    n_tr = pc.list_value_length(table.column("words_tr"))
    for m in MODALITIES:
        for col, n in ((m, n_words), (f"{m}_tr", n_tr)):
            bad = pc.not_equal(pc.list_value_length(table.column(col)), n)
            if table.num_rows and pc.any(bad).as_py():
                sid = pc.filter(table.column("segment_id"), bad)[0].as_py()
                raise ValueError(f"{path}: column {col} does not have one vector per word ({sid})")
    return table, meta


def to_arrays(column: pa.ChunkedArray) -> list[np.ndarray]:
    """list<fixed_size_list<float32>[D]> column → one (L, D) float32 array per row."""
    col = column.combine_chunks()
    dim = col.type.value_type.list_size
    flat = col.values.values.to_numpy(zero_copy_only=False).reshape(-1, dim)
    offs = col.offsets.to_numpy()
    return [flat[offs[i] : offs[i + 1]] for i in range(len(col))]


def read_inputs_provenance(paths: dict[str, str | list[str]]) -> dict:
    """Provenance of every input stage file (for the store's metadata)."""
    from polysent.io import read_provenance

    out = {}
    for key, p in paths.items():
        plist = [p] if isinstance(p, (str, Path)) else list(p)
        out[key] = {str(x): read_provenance(x) for x in plist if str(x).endswith(".parquet")}
    return out


def run_language(
    manifest: PathArg,
    lang: str,
    out: PathArg,
    qc_path: PathArg,
    cfg: Config,
    *,
    align_paths: PathArgs,
    acoustic_paths: PathArgs,
    visual_paths: PathArgs,
    text_path: PathArg,
    text_tr_path: PathArg | None = None,
    tr_lang: str | None = None,
    translate_path: PathArg | None = None,
    prior_qc_paths: PathArgs = (),
) -> pa.Table:
    """Store stage for one language: read every input of the ``lang`` store (every shard's
    ``align``/``acoustic``/``visual`` files, the text vectors, optionally the vectors and
    translations of ``tr_lang`` into ``lang``), build it, write it to ``out`` and its QC.

    ``prior_qc_paths``: QC files of earlier stages; segments with a record of a stage in
    ``cfg['exclude_qc_from']`` are left out (:func:`blocking_records`).
    """
    from polysent.contracts import FRAMES, MANIFEST, TEXT_VECTORS, VISUAL_FRAMES, WORDS, label_columns
    from polysent.io import write_parquet

    man_t = read(manifest, MANIFEST)
    labels = label_columns(man_t.schema)
    man = man_t.to_pandas()
    ids = set(man.loc[man["lang"] == lang, "segment_id"])

    def cat(paths, contract):
        parts = []
        for p in paths:
            df = read(p, contract).to_pandas()
            parts.append(df[df["segment_id"].isin(ids)])
        return pd.concat(parts, ignore_index=True)

    words = cat(align_paths, WORDS)
    acoustic = cat(acoustic_paths, FRAMES)
    visual = cat(visual_paths, VISUAL_FRAMES)
    text_table = read(text_path, TEXT_VECTORS)
    text_dim = text_table.schema.field("vector").type.list_size
    text = text_table.to_pandas()
    text = text[(text["kind"] == "source") & text["segment_id"].isin(ids)]
    text_tr = None
    if text_tr_path:
        text_tr = read(text_tr_path, TEXT_VECTORS).to_pandas()
        text_tr = text_tr[(text_tr["kind"] == "translation") & text_tr["segment_id"].isin(ids)]
    blocked = (
        blocking_records(
            read_qc(prior_qc_paths), man[man["segment_id"].isin(ids)], complete(cfg, "store")["exclude_qc_from"]
        )
        if prior_qc_paths
        else {}
    )
    table, qc, meta = build_store(
        man,
        lang,
        words,
        acoustic,
        visual,
        text,
        text_tr,
        tr_lang if text_tr_path else None,
        labels,
        cfg,
        blocked,
        text_dim,
    )
    log.info("store %s: %s; %d segment(s) in QC", lang, meta["stats"], len(qc))
    meta["lang"] = lang
    meta["params"] = cfg
    meta["inputs"] = read_inputs_provenance(
        {
            "align": list(align_paths),
            "acoustic": list(acoustic_paths),
            "visual": list(visual_paths),
            "text": [text_path],
            "text_tr": [text_tr_path] if text_tr_path else [],
            "translate": [translate_path] if translate_path else [],
        }
    )
    meta["text_encoder"] = text_encoder_meta(read_provenance(text_path), text_dim)
    table = check(table, FEATURE_STORE, str(out))
    write_parquet(out, table, provenance=meta)
    qc.write(qc_path)
    return table
