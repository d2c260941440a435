"""Writing the output: one row per segment found (predicted or not, with the reason), the
out-of-distribution flags, and the metadata that records every setting the prediction used."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from polysent import io, ood
from polysent.bundle import Bundle
from polysent.predict.common import plural
from polysent.predict.segments import Prepared

log = logging.getLogger("polysent.predict")

NOT_IN_STORE = "not in the feature store"


def outputs(bundle: Bundle) -> list[str]:
    return ["prediction"] if bundle.task == "sentiment" else list(bundle.meta["labels"]["outputs"])


def ood_columns(bundle: Bundle) -> list[str]:
    return [f"ood_{m}" for m in ood.MODALITIES if m in bundle.modalities]


def qc_reasons(paths: list[Path]) -> dict[str, str]:
    """segment_id -> "stage: reason" from the QC files (first stage that recorded one)."""
    reasons: dict[str, str] = {}
    for p in paths:
        if not Path(p).exists():
            continue
        qc = pq.read_table(p).to_pandas()
        for sid, stage, reason in zip(qc["segment_id"], qc["stage"], qc["reason"]):
            reasons.setdefault(sid, f"{stage}: {reason}")
    return reasons


def skipped_rows(bundle: Bundle, skipped: list[dict]) -> pd.DataFrame:
    """One row per video without any segment and per sound span too short to be one (no prediction)."""
    columns = ["segment_id", "video_id", "start", "end", *outputs(bundle), *ood_columns(bundle), "reason"]
    rows = [
        {
            "segment_id": None,
            "video_id": v["video_id"],
            "start": np.nan if v.get("start") is None else v["start"],
            "end": np.nan if v.get("end") is None else v["end"],
            **{c: np.nan for c in outputs(bundle)},
            **{c: None for c in ood_columns(bundle)},
            "reason": v["reason"],
        }
        for v in skipped
    ]
    return pd.DataFrame(rows, columns=columns)


def segment_rows(
    bundle: Bundle,
    frame: pd.DataFrame,
    preds: pd.DataFrame,
    reasons: dict[str, str],
    visual_qc: dict[str, str],
    flags: dict[str, dict],
) -> pd.DataFrame:
    """One row per manifest segment; ``visual_qc`` (segment -> "visual: no face ...") marks faceless
    segments: for a visual-only model there is then nothing to predict from, for another model the
    prediction stands on its other modalities (the visual input is the training mean) and says so."""
    names = bundle.meta["labels"]["outputs"]
    rows = frame[["segment_id", "video_id", "start", "end"]].copy()
    merged = rows.merge(preds.drop(columns=["video_id", "lang"], errors="ignore"), on="segment_id", how="left")
    for col in names:
        if col not in merged.columns:
            merged[col] = np.nan
    faceless = {sid: r for sid, r in visual_qc.items() if "visual" in bundle.modalities}
    if bundle.modalities == ("visual",):
        merged.loc[merged["segment_id"].isin(set(faceless)), names] = np.nan
    found = merged["reason"] if "reason" in merged.columns else pd.Series([None] * len(merged))
    missing = merged[names[0]].isna()
    merged["reason"] = [
        (r if isinstance(r, str) else reasons.get(sid, NOT_IN_STORE))
        if miss
        else (f"{faceless[sid]} (predicted from the other modalities)" if sid in faceless else None)
        for sid, r, miss in zip(merged["segment_id"], found, missing)
    ]
    for col in ood_columns(bundle):
        m = col.removeprefix("ood_")
        merged[col] = [
            (flags.get(sid, {}).get(m) or {}).get("ood") if not miss else None
            for sid, miss in zip(merged["segment_id"], missing)
        ]
    if bundle.task == "sentiment":
        merged = merged.rename(columns={"y_pred": "prediction"})
    return merged[["segment_id", "video_id", "start", "end", *outputs(bundle), *ood_columns(bundle), "reason"]]


def predict_rows(
    bundle: Bundle,
    prepared: Prepared,
    stores: dict[str, Path],
    qc_paths: list[Path],
    allow_mismatch: bool,
) -> tuple[pd.DataFrame, list[dict], dict[str, dict]]:
    """The output rows from the finished stores (each checked against the bundle again) and the
    stages' QC files (reasons), plus one row per span found but not a segment; the feature
    differences; and the out-of-distribution details per segment."""
    differences = list(prepared.differences)
    skipped = skipped_rows(bundle, prepared.skipped)
    if prepared.frame is None:
        return skipped, differences, {}
    parts, flags = [], {}
    ranges = bundle.meta.get("training_range")
    for code, path in stores.items():
        table, store_diffs = bundle.predict_store(path, lang=code, allow_mismatch=allow_mismatch)
        differences += [
            d.as_dict() | {"lang": code} for d in store_diffs if d.as_dict() | {"lang": code} not in differences
        ]
        parts.append(table.to_pandas())
        flags.update(ood.segment_flags(pq.read_table(path), ranges, bundle.modalities))
    preds = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["segment_id"])
    visual_qc = qc_reasons([p for p in qc_paths if Path(p).parent.name == "visual"])
    rows = segment_rows(bundle, prepared.frame, preds, qc_reasons(qc_paths), visual_qc, flags)
    rows = pd.concat([rows, skipped], ignore_index=True) if len(skipped) else rows
    if ranges is None:
        log.warning("%s records no training range: no out-of-distribution check (re-bundle the run)", bundle.path)
    return rows, differences, flags


def metadata(
    bundle_path: str,
    bundle: Bundle,
    entry: dict,
    prepared: Prepared,
    rows: pd.DataFrame,
    differences: list[dict],
    flags: dict[str, dict],
) -> dict:
    """The output's metadata: inputs, every setting used (identical from the CLI and the
    workflow), how transcripts were obtained, what was not predicted and why, the OOD check."""
    from polysent import asr, segment

    how = dict(prepared.how)
    asr_used = prepared.asr
    meta = {
        "bundle": bundle_path,
        "model": bundle.meta["model"]["name"],
        "task": bundle.task,
        "manifest": entry.get("manifest"),
        "media": entry.get("media"),
        "feature_differences": differences,
        "allow_mismatch": entry["allow_feature_mismatch"],
        "transcripts": how | {"asr": asr.provenance(asr_used)},
        "settings": {
            **{k: v for k, v in entry.items() if k not in ("bundle", "manifest", "media")},
            "segment": segment.settings(entry["segment"]),
            "asr": asr_used,
            "text_seeds": prepared.text_seeds,
        },
        "stage_settings": prepared.cfgs_by_lang,
    }
    if entry.get("media") is not None:
        meta["segmentation"] = meta["settings"]["segment"]
    if how.get("pseudo_words"):
        meta["transcripts"]["pseudo_word_seconds"] = entry["pseudo_word"]
    first = outputs(bundle)[0]
    not_predicted = rows[rows[first].isna()]
    meta["not_predicted"] = [
        {
            "segment_id": r.segment_id if isinstance(r.segment_id, str) else None,
            "video_id": r.video_id,
            "start": None if pd.isna(r.start) else float(r.start),
            "end": None if pd.isna(r.end) else float(r.end),
            "reason": r.reason,
        }
        for r in not_predicted.itertuples()
    ]
    ranges = bundle.meta.get("training_range")
    meta["ood"] = {
        "rule": None
        if ranges is None
        else (
            f"a modality of a segment is flagged when more than {ranges['max_share']:.0%} of its word-level "
            f"values lie beyond {ranges['k_sd']:g} training SDs of the training mean of their feature"
        ),
        "segments": flags,
    }
    return meta


def write(bundle: Bundle, out: Path, rows: pd.DataFrame, meta: dict) -> pd.DataFrame:
    if out.suffix == ".parquet":
        io.write_parquet(out, pa.Table.from_pandas(rows, preserve_index=False), provenance=meta)
    else:
        io.write_csv(out, rows)
        io.write_json(out.with_name(out.name + ".json"), meta)
    predicted = int(rows[outputs(bundle)[0]].notna().sum())
    log.info(
        "%s predicted, %d not predicted (segments or spans; each with its reason) -> %s",
        plural(predicted, "segment"),
        len(rows) - predicted,
        out,
    )
    for col in ood_columns(bundle):
        n = int((rows[col] == True).sum())  # noqa: E712 (object column: True/False/None)
        if n:
            log.warning(
                "%s of %s: %s features outside the bundle's training range (%s)",
                plural(n, "segment"),
                predicted,
                col.removeprefix("ood_"),
                col,
            )
    return rows
