"""``polysent predict``: a bundle's predictions for new videos, through the workflow's own stages.

This first version covers videos **with a manifest and transcripts** (segment times and words
given): media → acoustic / visual → align → text → store run with the stage functions the
workflow's rules call, configured from the **bundle's** feature settings
(:func:`stage_configs`), into a work folder; then the bundle's model predicts the store. Not
here yet: segments found from silence (see :mod:`polysent.segment`), ASR for videos without a
transcript, and a ``predict`` target in the workflow.

Order of work:

1. the manifest is read and completed (labels, split and shard are optional for new videos);
2. **before any compute** the settings each stage will record (its ``provenance()``) are
   compared with the bundle's (:func:`polysent.bundle.check_features`): a difference stops
   here, naming each key and both values, unless ``allow_mismatch``;
3. the stages run; the finished store is checked again (dimensions, feature names, tools);
4. one output row per manifest segment: ``segment_id, video_id, start, end``, the prediction
   (``prediction`` = ``y_pred`` for sentiment, ``prob_<label>`` per emotion) and ``reason``
   (why a segment has no prediction: the QC record of the stage that dropped it).

The output is CSV or Parquet (by suffix), written atomically; its metadata (Parquet key
``polysent``, or ``<out>.json`` next to a CSV) names the bundle and records the allowed
feature differences.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from polysent import io
from polysent.bundle import Bundle, Difference, check_features, load_bundle

log = logging.getLogger("polysent.predict")

ALIGN_RATE = 16000  # the aligners' sample rate (polysent.align reads the 16 kHz WAV)
# Manifest columns a new video may leave out, and what they become (labels are never used).
OPTIONAL_COLUMNS = {"sentiment": 0.0, "split": "test", "shard": 0, "audio_path": ""}


class PredictError(ValueError):
    """Prediction cannot run; the message names the file, segment or setting."""


def _reference(bundle: Bundle, lang: str) -> dict:
    prov = bundle.provenance
    return prov.get(lang) or prov[bundle.meta["training"]["entry"]["eval"]]


def stage_configs(bundle: Bundle, lang: str, overrides: dict | None = None) -> dict[str, dict]:
    """Config slices for media/acoustic/visual/align/text/store that reproduce the bundle's features.

    Taken from the provenance of the bundle's store of ``lang`` (else its evaluation language).
    ``overrides`` (stage -> dict, merged on top) exists to deviate on purpose; the deviation is
    then caught by the feature check.
    """
    from polysent.config import deep_merge
    from polysent.media import DEFAULTS as MEDIA_DEFAULTS

    ref = _reference(bundle, lang)
    missing = [s for s in ("align", "acoustic", "visual", "text", "store") if not ref.get(s)]
    if missing:
        raise PredictError(f"{bundle.path}: no recorded settings for stage(s) {missing} "
                           "(its training stores had no provenance); cannot rebuild their features")
    acoustic, visual = ref["acoustic"], ref["visual"]
    cfgs = {
        "acoustic": {"backend": acoustic["backend"], acoustic["backend"]: acoustic["params"]},
        "visual": {"backend": visual["backend"], visual["backend"]: visual["params"]},
        "align": ref["align"]["params"],
        "text": ref["text"]["params"],
        "store": ref["store"]["params"] or {},
    }
    if "mode" in acoustic:  # where frames are computed (whole WAV or per segment), when recorded
        cfgs["acoustic"]["mode"] = acoustic["mode"]
    rates = sorted({ALIGN_RATE, int(acoustic.get("sample_rate") or ALIGN_RATE)})
    cfgs["media"] = {**MEDIA_DEFAULTS, "sample_rates": rates}
    for stage, extra in (overrides or {}).items():
        cfgs[stage] = deep_merge(cfgs[stage], extra)
    return cfgs


def planned_settings(cfgs: dict[str, dict], lang: str) -> dict:
    """What each feature stage will record for ``cfgs``, computed without running it."""
    from polysent import align, text
    from polysent.bundle import PER_FILE_KEYS
    from polysent.features import acoustic, visual

    provs = {
        "align": align.provenance(cfgs["align"]),
        "acoustic": acoustic.provenance(acoustic.make_extractor(cfgs["acoustic"]), cfgs["acoustic"]),
        "visual": visual.provenance(cfgs["visual"]),
        "text": text.provenance(cfgs["text"], lang),
    }
    out = {s: {k: v for k, v in p.items() if k not in PER_FILE_KEYS} for s, p in provs.items()}
    return json.loads(json.dumps(out, sort_keys=True, default=str))


def precheck(bundle: Bundle, cfgs: dict, lang: str, allow_mismatch: bool) -> list[Difference]:
    """The feature check on the planned stage settings (the store's own keys come after the run)."""
    planned = planned_settings(cfgs, lang)
    ref = {s: v for s, v in _reference(bundle, lang).items() if s in planned}
    shadow = Bundle(bundle.path, {**bundle.meta, "provenance": {lang: ref}}, bundle.model, bundle.normalizer)
    return check_features(shadow, planned, lang=lang, allow_mismatch=allow_mismatch)


def complete_manifest(path: str | os.PathLike, dest: Path) -> tuple[Path, pd.DataFrame]:
    """The manifest with optional columns filled in, written to ``dest`` as a MANIFEST store."""
    from polysent.contracts import MANIFEST, check, manifest_schema

    path = Path(path)
    if not path.exists():
        raise PredictError(f"manifest {path} does not exist")
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, keep_default_na=False)
    need = [c for c in MANIFEST.required if c not in OPTIONAL_COLUMNS and c not in frame.columns]
    if need:
        raise PredictError(f"{path}: missing column(s) {need} (segments and transcripts must be given)")
    for col, value in OPTIONAL_COLUMNS.items():
        if col not in frame.columns:
            frame[col] = value
    empty = frame.loc[frame["transcript"].fillna("").astype(str).str.strip() == "", "segment_id"].tolist()
    if empty:
        raise PredictError(f"{path}: segment(s) without a transcript {empty[:5]}; this version of "
                           "polysent predict needs the transcripts in the manifest")
    labels = [c for c in frame.columns if c not in MANIFEST.required and pd.api.types.is_float_dtype(frame[c])]
    schema = manifest_schema(labels)
    frame = frame[[f.name for f in schema]]
    table = check(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), MANIFEST, str(path))
    io.write_parquet(dest, table, provenance={"source": "predict", "manifest": str(path)})
    return dest, frame


def _qc_reasons(paths: list[Path]) -> dict[str, str]:
    """segment_id -> "stage: reason" from the QC files (first stage that recorded one)."""
    reasons: dict[str, str] = {}
    for p in paths:
        if not p.exists():
            continue
        qc = pq.read_table(p).to_pandas()
        for sid, stage, reason in zip(qc["segment_id"], qc["stage"], qc["reason"]):
            reasons.setdefault(sid, f"{stage}: {reason}")
    return reasons


def run_features(manifest: Path, frame: pd.DataFrame, cfgs_by_lang: dict[str, dict], work: Path,
                 threads: int = 1, progress: bool = True) -> tuple[dict[str, Path], list[Path]]:
    """Media → acoustic / visual → align per shard, then text → store per language, into ``work``."""
    from polysent import align, media, store, text
    from polysent.features import acoustic, visual

    first = next(iter(cfgs_by_lang.values()))
    for lang, cfgs in cfgs_by_lang.items():  # shard stages run once for every language
        for stage in ("media", "acoustic", "visual", "align"):
            if cfgs[stage] != first[stage]:
                raise PredictError(f"the bundle's {stage} settings differ between {lang} and the other "
                                   "languages of the manifest; predict one language at a time")
    shards = sorted(int(s) for s in frame["shard"].unique())
    steps = [("media", s) for s in shards] + [(st, s) for s in shards for st in ("acoustic", "visual", "align")]
    steps += [(st, lang) for lang in sorted(cfgs_by_lang) for st in ("text", "store")]
    qc_paths = []
    bar = tqdm(steps, desc="predict", disable=not progress)
    for stage, key in bar:
        bar.set_postfix_str(f"{stage} {key}")
        qc = work / "qc" / stage / f"{key}.parquet"
        qc_paths.append(qc)
        if stage == "media":
            media.build_shard(manifest, key, work / "media" / str(key), qc, first["media"], threads, progress=False)
        elif stage == "acoustic":
            acoustic.extract_shard(manifest, work / "media" / str(key), key, work / "acoustic" / f"{key}.parquet",
                                   qc, first["acoustic"], threads, progress=False)
        elif stage == "visual":
            visual.extract_shard(manifest, key, work / "visual" / f"{key}.parquet", qc, first["visual"], threads,
                                 progress=False)
        elif stage == "align":
            align.run_align(manifest, work / "media" / str(key), key, work / "align" / f"{key}.parquet", qc,
                            first["align"], threads)
        elif stage == "text":
            text.run_text(manifest=manifest, align_paths=[work / "align" / f"{s}.parquet" for s in shards],
                          translate_paths=[], lang=key, out=work / "text" / f"{key}.parquet", qc_path=qc,
                          cfg=cfgs_by_lang[key]["text"])
        else:  # no translation columns: they only serve training-time augmentation
            store.run_store(manifest=manifest, lang=key,
                            align_paths=[work / "align" / f"{s}.parquet" for s in shards],
                            acoustic_paths=[work / "acoustic" / f"{s}.parquet" for s in shards],
                            visual_paths=[work / "visual" / f"{s}.parquet" for s in shards],
                            text_path=work / "text" / f"{key}.parquet", text_tr_path=None, tr_lang=None,
                            translate_path=None, out=work / "store" / f"{key}.parquet", qc_path=qc,
                            cfg=cfgs_by_lang[key]["store"])
    return {lang: work / "store" / f"{lang}.parquet" for lang in cfgs_by_lang}, qc_paths


def predict_manifest(bundle: Bundle | str | os.PathLike, manifest: str | os.PathLike, out: str | os.PathLike,
                     work: str | os.PathLike | None = None, allow_mismatch: bool = False,
                     overrides: dict | None = None, threads: int = 1, progress: bool = True) -> pd.DataFrame:
    """Predict every segment of ``manifest`` with ``bundle``; write ``out``; return the rows."""
    bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    out = Path(out)
    if out.suffix not in (".csv", ".parquet"):
        raise PredictError(f"output {out}: use a .csv or .parquet name")
    work = Path(work) if work is not None else out.parent / f".{out.stem}.work"
    work.mkdir(parents=True, exist_ok=True)
    man_path, frame = complete_manifest(manifest, work / "manifest.parquet")
    langs = sorted(frame["lang"].unique())
    cfgs_by_lang = {lang: stage_configs(bundle, lang, overrides) for lang in langs}
    differences = []
    for lang in langs:
        differences += [d.as_dict() | {"lang": lang} for d in
                        precheck(bundle, cfgs_by_lang[lang], lang, allow_mismatch)]
    stores, qc_paths = run_features(man_path, frame, cfgs_by_lang, work, threads, progress)
    parts = []
    for lang, path in stores.items():
        table, store_diffs = bundle.predict_store(path, lang=lang, allow_mismatch=allow_mismatch)
        differences += [d.as_dict() | {"lang": lang} for d in store_diffs
                        if d.as_dict() | {"lang": lang} not in differences]
        parts.append(table.to_pandas())
    preds = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["segment_id"])
    rows = _output_rows(bundle, frame, preds, _qc_reasons(qc_paths))
    meta = {"bundle": str(bundle.path), "model": bundle.meta["model"]["name"], "task": bundle.task,
            "manifest": str(manifest), "feature_differences": differences, "allow_mismatch": allow_mismatch}
    if out.suffix == ".parquet":
        io.write_parquet(out, pa.Table.from_pandas(rows, preserve_index=False), provenance=meta)
    else:
        io.write_csv(out, rows)
        io.write_json(out.with_name(out.name + ".json"), meta)
    log.info("%d segment(s) predicted, %d without a prediction -> %s", int(rows["reason"].isna().sum()),
             int(rows["reason"].notna().sum()), out)
    return rows


def _output_rows(bundle: Bundle, frame: pd.DataFrame, preds: pd.DataFrame, reasons: dict[str, str]) -> pd.DataFrame:
    outputs = bundle.meta["labels"]["outputs"]
    rows = frame[["segment_id", "video_id", "start", "end"]].copy()
    merged = rows.merge(preds.drop(columns=["video_id", "lang"], errors="ignore"), on="segment_id", how="left")
    for col in outputs:
        if col not in merged.columns:
            merged[col] = np.nan
    found = merged["reason"] if "reason" in merged.columns else pd.Series([None] * len(merged))
    missing = merged[outputs[0]].isna()
    merged["reason"] = [
        (r if isinstance(r, str) else reasons.get(sid, "not in the feature store")) if miss else None
        for sid, r, miss in zip(merged["segment_id"], found, missing)
    ]
    if bundle.task == "sentiment":
        merged = merged.rename(columns={"y_pred": "prediction"})
        outputs = ["prediction"]
    return merged[["segment_id", "video_id", "start", "end", *outputs, "reason"]]


# ---------------------------------------------------------------------------------------- CLI


def add_cli(sub) -> None:
    p = sub.add_parser("predict", help="predict new videos (manifest with segments and transcripts) with a bundle")
    p.add_argument("--bundle", required=True, help="bundle folder (polysent bundle)")
    p.add_argument("--manifest", required=True,
                   help="Parquet/CSV manifest with segment_id, video_id, lang, start, end, transcript, video_path")
    p.add_argument("--out", required=True, help="predictions (.csv or .parquet)")
    p.add_argument("--work", default=None, help="folder for the intermediate stage files (default: next to --out)")
    p.add_argument("--allow-feature-mismatch", action="store_true",
                   help="predict although the features differ from the bundle's (recorded in the metadata)")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    rows = predict_manifest(args.bundle, args.manifest, args.out, args.work, args.allow_feature_mismatch,
                            threads=args.threads)
    print(f"{len(rows)} segment(s), {int(rows['reason'].isna().sum())} predicted -> {args.out}")
    return 0
