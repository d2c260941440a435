"""One prediction, start to end, for one schema-completed predict entry: the function both
``polysent predict`` and the workflow's rule ``predict`` call."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from polysent.bundle import Bundle, load_bundle
from polysent.predict.common import PredictError
from polysent.predict.output import metadata, predict_rows, write
from polysent.predict.segments import complete_manifest, prepare
from polysent.predict.settings import entry_settings
from polysent.predict.stages import run_features


def run_entry(
    bundle: Bundle | str | os.PathLike,
    entry: dict,
    out: str | os.PathLike,
    work: str | os.PathLike | None = None,
    overrides: dict | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Predict the segments of ``entry["manifest"]``, or of the videos of ``entry["media"]``, with
    ``bundle``; write ``out`` (.csv with ``<out>.json``, or .parquet) and return its rows.

    ``entry`` is a ``predict.<name>`` config entry (completed from the schema here); ``work``
    holds the stages' files (default: ``.<out stem>.work`` next to ``out``). ``overrides``
    (stage -> settings) deviates from the bundle's feature settings on purpose, for tests of
    the feature check.
    """
    entry = entry_settings({k: v for k, v in entry.items() if k != "bundle"})
    bundle_path = str(bundle.path if isinstance(bundle, Bundle) else bundle)
    bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    out = Path(out)
    if out.suffix not in (".csv", ".parquet"):
        raise PredictError(f"output {out}: use a .csv or .parquet name")
    work = Path(work) if work is not None else out.parent / f".{out.stem}.work"
    prepared = prepare(bundle, work, entry, overrides, progress)
    stores, qc_paths = {}, []
    if prepared.frame is not None:
        man_path, _ = complete_manifest(prepared.frame, work / "manifest.parquet", prepared.where)
        stores, qc_paths = run_features(
            man_path,
            prepared.frame,
            prepared.cfgs_by_lang,
            work,
            threads=entry["threads"],
            pseudo=(prepared.pseudo, entry["pseudo_word"]),
            text_seeds={lang: s["seed"] for lang, s in prepared.text_seeds.items()},
            progress=progress,
        )
    rows, differences, flags = predict_rows(bundle, prepared, stores, qc_paths, entry["allow_feature_mismatch"])
    meta = metadata(bundle_path, bundle, {"bundle": bundle_path, **entry}, prepared, rows, differences, flags)
    return write(bundle, out, rows, meta)


def predict(
    bundle: Bundle | str | os.PathLike,
    out: str | os.PathLike,
    manifest: str | os.PathLike | None = None,
    media: str | os.PathLike | None = None,
    lang: str | None = None,
    work: str | os.PathLike | None = None,
    allow_mismatch: bool = False,
    overrides: dict | None = None,
    segment_cfg: dict | None = None,
    asr_cfg: dict | None = None,
    pseudo_word: float | None = None,
    threads: int | None = None,
    text_seed: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """:func:`run_entry` with the entry's settings as arguments (None: the schema's default)."""
    given = {
        "manifest": None if manifest is None else str(manifest),
        "media": None if media is None else str(media),
        "lang": lang,
        "allow_feature_mismatch": allow_mismatch,
        "segment": segment_cfg or {},
        "asr": asr_cfg or {},
        "pseudo_word": pseudo_word,
        "threads": threads,
        "text_seed": text_seed,
    }
    entry = {k: v for k, v in given.items() if v is not None or k in ("manifest", "media", "lang")}
    return run_entry(bundle, entry, out, work, overrides, progress)


def predict_manifest(
    bundle: Bundle | str | os.PathLike, manifest: str | os.PathLike, out: str | os.PathLike, **kwargs
) -> pd.DataFrame:
    """:func:`predict` on a manifest."""
    return predict(bundle, out, manifest=manifest, **kwargs)
