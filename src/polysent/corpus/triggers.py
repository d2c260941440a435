"""What each job of the workflow re-runs on, so that a label edit re-runs no feature stage and a
setting nothing reads re-runs nothing.

The manifest (``results/corpus/manifest.parquet``) holds what the feature stages read (segment
times, transcripts, media paths, shards: :data:`FEATURE_COLUMNS`) and what only the store,
training and the report read (``split`` and the labels). Snakemake re-runs a job when a file it
takes is rewritten with other bytes, so a job that takes the manifest re-runs on every label edit.
The feature stages therefore take it as ``ancient`` (its time and bytes are no trigger) and carry
instead, as params, :func:`segments_digest`: a digest of the feature columns of the rows the job
reads (one shard or one language), read when the job is planned. A label or split edited in the
manifest re-runs the store, training and the report; a transcript or a segment time edited in it
re-runs the feature jobs of that shard or language. The workflow also gives the feature stages
the corpus job's QC file as a plain input, so that a re-run corpus job (its settings, sources or
code changed) re-runs them as before. A ``folder`` corpus's job takes its manifest file as ``ancient`` with
:func:`folder_digest` (the file without its label columns) as a param, and a cheap step
(``folder.relabel``) copies the file's labels into the manifest: a label edited in the folder
manifest re-runs that step, the store, training and the report.

:func:`corpus_params` is the corpus rule's params without settings that the source does not
read (``splits`` and ``seed`` when a folder manifest gives its own split column; the probe's
knobs when it is off); :func:`selected` drops the settings of backends that are not selected
(``acoustic.opensmile`` when ``acoustic.backend`` is ``librosa``).
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import pandas as pd

# The manifest columns that the media, acoustic, visual, align, translate and text stages read.
FEATURE_COLUMNS = ("segment_id", "video_id", "lang", "start", "end", "transcript", "video_path", "audio_path", "shard")
# corpus.folder settings read only to draw splits or to probe media.
_SPLIT_SETTINGS = ("splits",)
_PROBE_SETTINGS = ("probe_tolerance", "probe_jobs")


def _digest(frame: pd.DataFrame) -> str:
    frame = frame.reindex(sorted(frame.columns), axis=1).sort_values(list(frame.columns)).reset_index(drop=True)
    hashed = pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes() + "|".join(frame.columns).encode()).hexdigest()[:32]


@functools.lru_cache(maxsize=4)
def _feature_columns(path: str, mtime_ns: int, size: int) -> pd.DataFrame:
    """The manifest's :data:`FEATURE_COLUMNS`, read once per file version (every feature job of a
    DAG asks for its rows' digest; the key changes when the corpus job rewrites the file)."""
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=list(FEATURE_COLUMNS)).to_pandas()


def segments_digest(manifest: str | os.PathLike, shard: int | str | None = None, lang: str | None = None) -> str | None:
    """Digest of the :data:`FEATURE_COLUMNS` of the manifest rows of ``shard`` (or ``lang``, or all).

    None when the manifest does not exist yet (a fresh run: the corpus job makes it first, and
    Snakemake evaluates the params of a job that runs after it only when it runs).
    """
    path = Path(manifest)
    if not path.is_file():
        return None
    stat = path.stat()
    frame = _feature_columns(str(path), stat.st_mtime_ns, stat.st_size)
    if shard is not None:
        frame = frame[frame["shard"] == int(shard)]
    if lang is not None:
        frame = frame[frame["lang"] == lang]
    return _digest(frame)


def folder_digest(cfg: dict, read=None) -> str | None:
    """Digest of a folder manifest file without its label columns (``sentiment`` and
    ``corpus.folder.labels``): the corpus job's params, with the file itself an ``ancient`` input,
    so that a label edit re-runs only the step that copies labels in (``folder.relabel``). None
    when the file cannot be read (the corpus job then names the problem). ``read``: the file as
    ``read_manifest_file`` returned it, when the caller has it already."""
    from polysent.corpus.folder import label_columns_of, read_manifest_file

    frame, problems = read or read_manifest_file(cfg["manifest"], cfg["columns"])
    if frame.empty and problems:
        return None
    drop = {*label_columns_of(cfg), "_file", "_line"}
    return _digest(frame.drop(columns=[c for c in frame.columns if c in drop]))


def folder_label_settings(cfg: dict) -> dict:
    """The corpus.folder settings that ``folder.relabel`` reads (its rule's params)."""
    return {k: cfg[k] for k in ("manifest", "columns", "labels", "label_range", "on_invalid")}


def _has_split_column(frame: pd.DataFrame) -> bool:
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
        from polysent.corpus.folder import read_manifest_file

        read = read_manifest_file(cfg["manifest"], cfg["columns"])
        if not cfg["probe"]:
            for key in _PROBE_SETTINGS:
                cfg.pop(key, None)
        if _has_split_column(read[0]):
            for key in _SPLIT_SETTINGS:
                cfg.pop(key, None)
            params["seed"] = None  # a folder corpus draws nothing else with it
        params["manifest_digest"] = folder_digest(cfg, read)
    return params


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
