"""What each job of the workflow re-runs on, so that a label edit re-runs no feature stage and a
setting nothing reads re-runs nothing.

The manifest (``results/corpus/manifest.parquet``) holds what the feature stages read (segment
times, transcripts, media paths, shards: :data:`FEATURE_COLUMNS`) and what only the store,
training and the report read (``split`` and the labels). Snakemake re-runs a job when a file it
takes is rewritten with other bytes, so a job that takes the manifest re-runs on every label edit.
The feature stages therefore take it as ``ancient`` (its time and bytes are not a trigger) and
carry instead, as params, what decides their rows:

- :func:`segments_digest`: a digest of the feature columns of the rows the job reads (one shard or
  one language), read when the job is planned: a hand edit of a transcript or a segment time in
  the manifest re-runs the jobs of that shard or language, a label or split edit none;
- :func:`corpus_settings`: the settings the corpus stage builds those rows from, and for a
  ``folder`` corpus :func:`source_digest` of its manifest file without the label and split
  columns. When the corpus job re-runs in the same invocation (the manifest's digest above is
  then the old one), a change of these is what re-runs the feature jobs, so an edit of a label
  in the folder manifest re-runs the corpus job (cheap) and, downstream, the store, training and
  the report, not the feature stages.

:func:`corpus_params` is the corpus rule's own params without settings that the source does not
read (``splits`` and ``seed`` when a folder manifest gives its own split column; the probe's
knobs when it is off); :func:`selected` drops the settings of backends that are not selected
(``acoustic.opensmile`` when ``acoustic.backend`` is ``librosa``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd

# The manifest columns that the media, acoustic, visual, align, translate and text stages read.
FEATURE_COLUMNS = ("segment_id", "video_id", "lang", "start", "end", "transcript", "video_path", "audio_path", "shard")
# Columns of a folder manifest that only decide labels, splits (speakers draw splits together).
_LABEL_SIDE = ("sentiment", "split", "speaker")
# corpus.folder settings read only to draw splits or to probe media.
_SPLIT_SETTINGS = ("splits",)
_PROBE_SETTINGS = ("probe_tolerance", "probe_jobs")


def _digest(frame: pd.DataFrame) -> str:
    frame = frame.reindex(sorted(frame.columns), axis=1).sort_values(list(frame.columns)).reset_index(drop=True)
    hashed = pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes() + "|".join(frame.columns).encode()).hexdigest()[:32]


def segments_digest(manifest: str | os.PathLike, shard: int | str | None = None, lang: str | None = None) -> str | None:
    """Digest of the :data:`FEATURE_COLUMNS` of the manifest rows of ``shard`` (or ``lang``, or all).

    None when the manifest does not exist yet (a fresh run: the corpus job makes it first, and
    Snakemake evaluates the params of a job that runs after it only when it runs).
    """
    import pyarrow.parquet as pq

    path = Path(manifest)
    if not path.is_file():
        return None
    frame = pq.read_table(path, columns=list(FEATURE_COLUMNS)).to_pandas()
    if shard is not None:
        frame = frame[frame["shard"] == int(shard)]
    if lang is not None:
        frame = frame[frame["lang"] == lang]
    return _digest(frame)


def files_digest(paths) -> str:
    """Digest of the content of ``paths`` (by path; a missing file counts as absent): the corpus
    job's source files and library code, carried by the feature jobs' params, so that an edit
    that re-runs the corpus job re-runs them too while touching a file re-runs nothing."""
    h = hashlib.sha256()
    for path in sorted(str(p) for p in paths):
        h.update(path.encode() + b"\0")
        p = Path(path)
        h.update(hashlib.sha256(p.read_bytes()).digest() if p.is_file() else b"absent")
    return h.hexdigest()[:32]


def source_digest(config: dict) -> str | None:
    """For a ``folder`` corpus, a digest of its manifest file without the label, split and speaker
    columns (None for the other sources, or when the file cannot be read: the corpus job then
    names the problem)."""
    if config["corpus"]["source"] != "folder":
        return None
    from polysent.corpus.folder import read_manifest_file

    cfg = config["corpus"]["folder"]
    frame, problems = read_manifest_file(cfg["manifest"], cfg.get("columns") or {})
    if frame.empty and problems:
        return None
    drop = {*_LABEL_SIDE, *(cfg.get("labels") or []), "_file", "_line"}
    return _digest(frame.drop(columns=[c for c in frame.columns if c in drop]))


def _folder_has_split_column(cfg: dict) -> bool:
    from polysent.corpus.folder import read_manifest_file

    frame, _ = read_manifest_file(cfg["manifest"], cfg.get("columns") or {})
    if "split" not in frame.columns:
        return False
    split = frame["split"]
    return not (split.isna().all() or (split.astype(str).str.strip() == "").all())  # as finish_manifest


def corpus_params(config: dict) -> dict:
    """The corpus rule's params: the source's settings, languages, seed and shard count, without
    the settings this source does not read."""
    source = config["corpus"]["source"]
    cfg = dict(config["corpus"][source])
    params = {"cfg": cfg, "languages": config["languages"], "seed": config["seed"], "shards": config["shards"]}
    if source == "folder":
        if not cfg.get("probe", False):
            for key in _PROBE_SETTINGS:
                cfg.pop(key, None)
        if _folder_has_split_column(cfg):
            for key in _SPLIT_SETTINGS:
                cfg.pop(key, None)
            params["seed"] = None  # a folder corpus draws nothing else with it
    return params


def corpus_settings(config: dict) -> dict:
    """What the feature stages' rows depend on besides the manifest itself: the corpus rule's
    params without the settings that only split, and the folder manifest's label-free digest."""
    params = corpus_params(config)
    cfg = {k: v for k, v in params["cfg"].items() if k not in _SPLIT_SETTINGS}
    if config["corpus"]["source"] == "folder":
        params.pop("seed", None)
    return {**params, "cfg": cfg, "source": config["corpus"]["source"], "source_digest": source_digest(config)}


def selected(slice_: dict, schema: dict) -> dict:
    """``slice_`` without the sub-sections of alternatives that are not selected: a key whose
    schema is an enum (``backend: librosa``) selects the sibling section of the same name, and
    the sibling sections named by its other values (``opensmile``) are dropped, recursively."""
    props = schema.get("properties", {})
    drop = set()
    for key, sub in props.items():
        enum = sub.get("enum") or []
        if key in slice_ and enum:
            drop |= {v for v in enum if isinstance(v, str) and v != slice_[key] and isinstance(slice_.get(v), dict)}
    return {
        k: (selected(v, props.get(k, {})) if isinstance(v, dict) else v) for k, v in slice_.items() if k not in drop
    }
