"""``polysent predict``: a bundle's predictions for new videos, through the workflow's own stages.

Input is a manifest (segments, optionally transcripts) or media alone (one video or a folder of
videos). media → acoustic / visual → align → text → store run with the stage functions the
workflow's rules call, configured from the **bundle's** feature settings (:func:`stage_configs`),
into a work folder; then the bundle's model predicts the store.

Two paths share these functions: :func:`predict` (``polysent predict``) runs every stage in
one process; the workflow's ``results/predict/{name}.csv`` runs them as cached Snakemake jobs
of the stage rules themselves (:func:`write_corpus` → the stage rules → :func:`write_words`
→ :func:`write_predictions`; workflow/rules/predict.smk). Both write the same rows and metadata.

Order of work:

1. segments: the manifest's (labels, split and shard are optional for new videos), or, for
   media without a manifest, found from the audio by :mod:`polysent.segment` (pauses);
2. **before any compute** the settings each stage will record (its ``provenance()``) are
   compared with the bundle's (:func:`polysent.bundle.check_features`): a difference stops
   here, naming each key and both values, unless ``allow_mismatch``; and a text model with
   segments lacking a transcript and no ASR configured stops here too, naming both ways out;
3. transcripts missing from the manifest come from the ASR backend (:mod:`polysent.asr`) when
   one is configured; a text-free bundle (audio/visual only) needs none: its segments are
   pooled over **pseudo-words**, consecutive windows of about ``pseudo_word`` seconds
   (the training words' typical length) in place of aligned words;
4. the stages run; the finished store is checked again (dimensions, feature names, tools);
5. one output row per segment: ``segment_id, video_id, start, end``, the prediction
   (``prediction`` = ``y_pred`` for sentiment, ``prob_<label>`` per emotion) and ``reason``
   (why a segment has no prediction: the QC record of the stage that dropped it; a video where
   no speech was found gets one row with ``segment_id`` empty; a segment without any face gets
   the visual QC record as ``reason``, with a prediction when the model reads other modalities).

The output is CSV or Parquet (by suffix), written atomically; its metadata (Parquet key
``polysent``, or ``<out>.json`` next to a CSV) names the bundle, the inputs, how segments and
transcripts were obtained, and the allowed feature differences.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from polysent import io
from polysent.bundle import Bundle, Difference, check_features, load_bundle
from polysent.cliargs import key_values
from polysent.config import complete

log = logging.getLogger("polysent.predict")

ALIGN_RATE = 16000  # the aligners' sample rate (polysent.align reads the 16 kHz WAV)
# Manifest columns a new video may leave out, and what they become (labels are never used).
OPTIONAL_COLUMNS = {"sentiment": 0.0, "split": "test", "shard": 0, "audio_path": "", "transcript": ""}
MEDIA_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".wav", ".flac", ".mp3", ".m4a", ".ogg")
SHARD_STAGES = ("media", "acoustic", "visual", "align")  # run per shard, for every language
PSEUDO_WORD = "_"  # the token of a pseudo-word (text-free bundles: the text vector is never read)


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

    media_defaults = complete({}, "media")

    ref = _reference(bundle, lang)
    missing = [s for s in ("align", "acoustic", "visual", "text", "store") if not ref.get(s)]
    if missing:
        raise PredictError(
            f"{bundle.path}: no recorded settings for stage(s) {missing} "
            "(its training stores had no provenance); cannot rebuild their features"
        )
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
    cfgs["media"] = {**media_defaults, "sample_rates": rates}
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


def _complete(frame: pd.DataFrame, where: str) -> tuple[pd.DataFrame, pa.Table]:
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
    frame, table = _complete(frame, where)
    io.write_parquet(dest, table, provenance={"source": "predict", "manifest": where})
    return dest, frame


def untranscribed(frame: pd.DataFrame) -> list[str]:
    return frame.loc[frame["transcript"].fillna("").astype(str).str.strip() == "", "segment_id"].tolist()


def refuse_text_without_transcripts(bundle: Bundle, missing: list[str], asr_cfg: dict, where: str) -> None:
    """A text model cannot predict a segment without words: say both ways out."""
    from polysent import asr

    if missing and bundle.uses_text and asr.settings(asr_cfg)["backend"] == "none":
        raise PredictError(
            f"{where}: {len(missing)} segment(s) have no transcript (e.g. {missing[:3]}), and the bundle's "
            f"model reads text (modalities {list(bundle.modalities)}, {bundle.path}); either give the "
            "transcripts in a manifest (--manifest with a transcript column) or configure an ASR model "
            "(--asr-model DIR: a local Whisper directory; predict.<name>.asr in the workflow)"
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
    extract_wav(video, target, ALIGN_RATE, media_cfg["ffmpeg"], media_cfg["timeout"])
    return target


def segment_media(
    videos: list[Path], lang: str, work: Path, seg_cfg: dict, media_cfg: dict, progress: bool = True
) -> tuple[pd.DataFrame, list[dict]]:
    """Manifest rows (no transcripts) from silence segmentation, and one row per video without any."""
    from polysent import segment
    from polysent.media import MediaError

    rows, empty = [], []
    for video in tqdm(videos, desc="segment", disable=not progress):
        vid = video.stem
        try:
            spans = segment.segment_file(speech_wav(video, work, media_cfg), seg_cfg)
        except (MediaError, segment.SegmentError) as err:
            empty.append({"video_id": vid, "reason": f"media: {err}"})
            continue
        if not spans:
            empty.append(
                {
                    "video_id": vid,
                    "reason": "segment: no speech found (no sound above the silence thresholds of polysent.segment)",
                }
            )
            continue
        rows += [r | {"lang": lang, "video_path": str(video.resolve())} for r in segment.segment_rows(vid, spans)]
    columns = ["segment_id", "video_id", "start", "end", "lang", "video_path"]
    return pd.DataFrame(rows, columns=columns), empty


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


def add_pseudo_words(
    align_path: Path, frame: pd.DataFrame, segment_ids: list[str], window: float, out: Path | None = None
) -> None:
    """Append pseudo-words for ``segment_ids`` (no transcript) to an align store, keeping its
    provenance; written to ``out`` (default: in place)."""
    from polysent.align import words_table

    table = pq.read_table(align_path)
    done = set(table.column("segment_id").to_pylist())
    extra = words_table(pseudo_words(frame, [s for s in segment_ids if s not in done], window))
    io.write_parquet(
        out or align_path,
        pa.concat_tables([table, extra.cast(table.schema)]),
        provenance=io.read_provenance(align_path),
    )


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


def run_features(
    manifest: Path,
    frame: pd.DataFrame,
    cfgs_by_lang: dict[str, dict],
    work: Path,
    threads: int = 1,
    progress: bool = True,
    pseudo: tuple[list[str], float] | None = None,
) -> tuple[dict[str, Path], list[Path]]:
    """Media → acoustic / visual → align per shard, then text → store per language, into ``work``.

    ``pseudo`` = (segment ids, window): segments without a transcript (text-free bundle) get
    pseudo-words instead of aligned words.
    """
    from polysent import align, media, store, text
    from polysent.features import acoustic, visual

    first = shard_stage_configs(cfgs_by_lang)  # shard stages run once for every language
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
            acoustic.extract_shard(
                manifest,
                work / "media" / str(key),
                key,
                work / "acoustic" / f"{key}.parquet",
                qc,
                first["acoustic"],
                threads,
                progress=False,
            )
        elif stage == "visual":
            visual.extract_shard(
                manifest, key, work / "visual" / f"{key}.parquet", qc, first["visual"], threads, progress=False
            )
        elif stage == "align":
            align.run_align(
                manifest, work / "media" / str(key), key, work / "align" / f"{key}.parquet", qc, first["align"], threads
            )
            if pseudo and pseudo[0]:
                shard_ids = set(frame.loc[frame["shard"] == key, "segment_id"])
                add_pseudo_words(
                    work / "align" / f"{key}.parquet", frame, [s for s in pseudo[0] if s in shard_ids], pseudo[1]
                )
        elif stage == "text":
            text.run_text(
                manifest=manifest,
                align_paths=[work / "align" / f"{s}.parquet" for s in shards],
                translate_paths=[],
                lang=key,
                out=work / "text" / f"{key}.parquet",
                qc_path=qc,
                cfg=cfgs_by_lang[key]["text"],
            )
        else:  # no translation columns: they only serve training-time augmentation
            store.run_store(
                manifest=manifest,
                lang=key,
                align_paths=[work / "align" / f"{s}.parquet" for s in shards],
                acoustic_paths=[work / "acoustic" / f"{s}.parquet" for s in shards],
                visual_paths=[work / "visual" / f"{s}.parquet" for s in shards],
                text_path=work / "text" / f"{key}.parquet",
                text_tr_path=None,
                tr_lang=None,
                translate_path=None,
                out=work / "store" / f"{key}.parquet",
                qc_path=qc,
                cfg=cfgs_by_lang[key]["store"],
            )
    return {lang: work / "store" / f"{lang}.parquet" for lang in cfgs_by_lang}, qc_paths


@dataclass
class Prepared:
    """What :func:`prepare` settled before any feature stage: the segments and how to featurise them."""

    frame: pd.DataFrame | None  # the completed manifest (None: no segment at all)
    cfgs_by_lang: dict[str, dict]  # stage -> config slice, per language (:func:`stage_configs`)
    differences: list[dict]  # feature differences allowed or noted (as_dict + lang)
    no_speech: list[dict]  # videos without any segment: video_id, reason
    how: dict  # transcripts: counts transcribed / pseudo-word segments
    pseudo: list[str]  # segments pooled over pseudo-words (text-free bundle, no transcript)
    segment_cfg: dict
    asr_cfg: dict
    pseudo_word: float
    where: str


def shard_stage_configs(cfgs_by_lang: dict[str, dict]) -> dict[str, dict]:
    """The media/acoustic/visual/align configs, which must be one for all languages (they run per shard)."""
    first = next(iter(cfgs_by_lang.values()))
    for lang, cfgs in cfgs_by_lang.items():
        for stage in SHARD_STAGES:
            if cfgs[stage] != first[stage]:
                raise PredictError(
                    f"the bundle's {stage} settings differ between {lang} and the other "
                    "languages of the manifest; predict one language at a time"
                )
    return {stage: first[stage] for stage in SHARD_STAGES}


def prepare(
    bundle: Bundle,
    work: Path,
    manifest: str | os.PathLike | None = None,
    media: str | os.PathLike | None = None,
    lang: str | None = None,
    allow_mismatch: bool = False,
    overrides: dict | None = None,
    segment_cfg: dict | None = None,
    asr_cfg: dict | None = None,
    pseudo_word: float | None = None,
    progress: bool = True,
) -> Prepared:
    """Everything before the feature stages: inputs read, the feature check (before any compute),
    segmentation and ASR where needed. Shared by :func:`predict` (the CLI's one-process path)
    and rule ``predict_corpus`` (:func:`write_corpus`, the workflow's cached path)."""
    from polysent import asr, segment

    media_defaults = complete({}, "media")
    if (manifest is None) == (media is None):
        raise PredictError("give either a manifest (segments, transcripts optional) or media (a video or a folder)")
    pseudo_word = entry_settings()["pseudo_word"] if pseudo_word is None else float(pseudo_word)
    if not pseudo_word > 0:
        raise PredictError(f"pseudo_word must be > 0 seconds, got {pseudo_word}")
    segment_cfg, asr_cfg = segment.settings(segment_cfg), asr.settings(asr_cfg)
    work.mkdir(parents=True, exist_ok=True)
    lang = lang or bundle.meta["training"]["entry"]["eval"]
    if manifest is not None:
        where, raw, no_speech = str(manifest), read_manifest(manifest), []
        check_columns(raw, where)
        refuse_text_without_transcripts(
            bundle, untranscribed(raw) if "transcript" in raw else list(raw.get("segment_id", [])), asr_cfg, where
        )
    else:
        videos = find_media(media)
        where = str(media)
        refuse_text_without_transcripts(bundle, [v.stem for v in videos], asr_cfg, where)
    cfgs_by_lang, differences = {}, []

    def check(langs):
        diffs = []
        for code in langs:
            cfgs_by_lang[code] = stage_configs(bundle, code, overrides)
            diffs += [d.as_dict() | {"lang": code} for d in precheck(bundle, cfgs_by_lang[code], code, allow_mismatch)]
        if cfgs_by_lang:
            shard_stage_configs(cfgs_by_lang)
        return diffs

    if manifest is None:  # the feature check comes before segmentation, the first compute
        differences = check([lang])
        raw, no_speech = segment_media(videos, lang, work, segment_cfg, media_defaults, progress)
    frame = _complete(raw, where)[0] if len(raw) else None
    how = {"transcribed": 0, "pseudo_words": 0}
    prepared = Prepared(frame, cfgs_by_lang, differences, no_speech, how, [], segment_cfg, asr_cfg, pseudo_word, where)
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
    prepared.frame, prepared.pseudo = _complete(frame, where)[0], missing
    return prepared


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
    threads: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Predict every segment of ``manifest``, or of the videos in ``media``, with ``bundle``; write ``out``.

    The one-process path (``polysent predict``): every stage runs here, into ``work``. The
    workflow's ``results/predict/{name}.csv`` runs the same functions as cached stage jobs.
    ``media`` without ``manifest``: one video or a folder; segments from :mod:`polysent.segment`
    (``segment_cfg``), language ``lang`` (default: the bundle's evaluation language).
    Segments without a transcript get one from ``asr_cfg`` (:mod:`polysent.asr`), or, for a
    text-free bundle without ASR, pseudo-words of about ``pseudo_word`` seconds.
    """
    bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    out = Path(out)
    if out.suffix not in (".csv", ".parquet"):
        raise PredictError(f"output {out}: use a .csv or .parquet name")
    work = Path(work) if work is not None else out.parent / f".{out.stem}.work"
    prepared = prepare(
        bundle, work, manifest, media, lang, allow_mismatch, overrides, segment_cfg, asr_cfg, pseudo_word, progress
    )
    stores, qc_paths = {}, []
    if prepared.frame is not None:
        man_path, _ = complete_manifest(prepared.frame, work / "manifest.parquet", prepared.where)
        stores, qc_paths = run_features(
            man_path,
            prepared.frame,
            prepared.cfgs_by_lang,
            work,
            threads,
            progress,
            pseudo=(prepared.pseudo, prepared.pseudo_word),
        )
    rows, differences = predict_rows(
        bundle, prepared.frame, stores, qc_paths, prepared.no_speech, prepared.differences, allow_mismatch
    )
    return _write(bundle, out, rows, _meta(bundle, manifest, media, differences, allow_mismatch, prepared))


def predict_rows(
    bundle: Bundle,
    frame: pd.DataFrame | None,
    stores: dict[str, Path],
    qc_paths: list[Path],
    no_speech: list[dict],
    differences: list[dict],
    allow_mismatch: bool,
) -> tuple[pd.DataFrame, list[dict]]:
    """The output rows from the finished stores (each checked against the bundle again) and the
    stages' QC files (reasons), plus one row per video without speech; and the differences."""
    differences = list(differences)
    if frame is None:
        return _no_speech_rows(bundle, no_speech), differences
    parts = []
    for code, path in stores.items():
        table, store_diffs = bundle.predict_store(path, lang=code, allow_mismatch=allow_mismatch)
        differences += [
            d.as_dict() | {"lang": code} for d in store_diffs if d.as_dict() | {"lang": code} not in differences
        ]
        parts.append(table.to_pandas())
    preds = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["segment_id"])
    visual_qc = _qc_reasons([p for p in qc_paths if Path(p).parent.name == "visual"])
    rows = _output_rows(bundle, frame, preds, _qc_reasons(qc_paths), visual_qc)
    rows = pd.concat([rows, _no_speech_rows(bundle, no_speech)], ignore_index=True) if no_speech else rows
    return rows, differences


def predict_manifest(
    bundle: Bundle | str | os.PathLike,
    manifest: str | os.PathLike,
    out: str | os.PathLike,
    work: str | os.PathLike | None = None,
    allow_mismatch: bool = False,
    overrides: dict | None = None,
    threads: int = 1,
    progress: bool = True,
    **kwargs,
) -> pd.DataFrame:
    """:func:`predict` on a manifest."""
    return predict(
        bundle,
        out,
        manifest=manifest,
        work=work,
        allow_mismatch=allow_mismatch,
        overrides=overrides,
        threads=threads,
        progress=progress,
        **kwargs,
    )


def _meta(bundle: Bundle, manifest, media, differences, allow_mismatch, prepared: Prepared) -> dict:
    return _meta_of(
        str(bundle.path),
        bundle,
        manifest,
        media,
        differences,
        allow_mismatch,
        prepared.segment_cfg,
        prepared.asr_cfg,
        prepared.how,
        prepared.pseudo_word,
    )


def _meta_of(
    bundle_path: str,
    bundle: Bundle,
    manifest,
    media,
    differences,
    allow_mismatch,
    segment_cfg,
    asr_cfg,
    how,
    pseudo_word,
) -> dict:
    from polysent import asr

    meta = {
        "bundle": bundle_path,
        "model": bundle.meta["model"]["name"],
        "task": bundle.task,
        "manifest": None if manifest is None else str(manifest),
        "media": None if media is None else str(media),
        "feature_differences": differences,
        "allow_mismatch": allow_mismatch,
        "transcripts": how | {"asr": asr.provenance(asr_cfg)},
    }
    if media is not None:
        meta["segmentation"] = segment_cfg
    if how.get("pseudo_words"):
        meta["transcripts"]["pseudo_word_seconds"] = pseudo_word
    return meta


def _write(bundle: Bundle, out: Path, rows: pd.DataFrame, meta: dict) -> pd.DataFrame:
    if out.suffix == ".parquet":
        io.write_parquet(out, pa.Table.from_pandas(rows, preserve_index=False), provenance=meta)
    else:
        io.write_csv(out, rows)
        io.write_json(out.with_name(out.name + ".json"), meta)
    log.info(
        "%d segment(s) predicted, %d row(s) with a reason -> %s",
        int(rows[_outputs(bundle)[0]].notna().sum()),
        int(rows["reason"].notna().sum()),
        out,
    )
    return rows


def _outputs(bundle: Bundle) -> list[str]:
    return ["prediction"] if bundle.task == "sentiment" else list(bundle.meta["labels"]["outputs"])


def _no_speech_rows(bundle: Bundle, videos: list[dict]) -> pd.DataFrame:
    """One row per video in which no segment was found (no prediction, the reason)."""
    columns = ["segment_id", "video_id", "start", "end", *_outputs(bundle), "reason"]
    rows = [
        {
            "segment_id": None,
            "video_id": v["video_id"],
            "start": np.nan,
            "end": np.nan,
            **{c: np.nan for c in _outputs(bundle)},
            "reason": v["reason"],
        }
        for v in videos
    ]
    return pd.DataFrame(rows, columns=columns)


def _output_rows(
    bundle: Bundle,
    frame: pd.DataFrame,
    preds: pd.DataFrame,
    reasons: dict[str, str],
    visual_qc: dict[str, str] | None = None,
) -> pd.DataFrame:
    """One row per manifest segment; ``visual_qc`` (segment -> "visual: no face ...") marks faceless
    segments: for a visual-only model there is then nothing to predict from, for another model the
    prediction stands on its other modalities (the visual input is the training mean) and says so."""
    outputs = bundle.meta["labels"]["outputs"]
    rows = frame[["segment_id", "video_id", "start", "end"]].copy()
    merged = rows.merge(preds.drop(columns=["video_id", "lang"], errors="ignore"), on="segment_id", how="left")
    for col in outputs:
        if col not in merged.columns:
            merged[col] = np.nan
    faceless = {sid: r for sid, r in (visual_qc or {}).items() if "visual" in bundle.modalities}
    if bundle.modalities == ("visual",):
        merged.loc[merged["segment_id"].isin(set(faceless)), outputs] = np.nan
    found = merged["reason"] if "reason" in merged.columns else pd.Series([None] * len(merged))
    missing = merged[outputs[0]].isna()
    merged["reason"] = [
        (r if isinstance(r, str) else reasons.get(sid, "not in the feature store"))
        if miss
        else (f"{faceless[sid]} (predicted from the other modalities)" if sid in faceless else None)
        for sid, r, miss in zip(merged["segment_id"], found, missing)
    ]
    if bundle.task == "sentiment":
        merged = merged.rename(columns={"y_pred": "prediction"})
        outputs = ["prediction"]
    return merged[["segment_id", "video_id", "start", "end", *outputs, "reason"]]


# ------------------------------------------------------ the workflow's cached path (predict.smk)
# results/predict/{name}/: rule predict_corpus (write_corpus) settles the segments and writes the
# bundle's stage settings; the stage rules themselves (`use rule ... as predict_<stage>`) build
# media → acoustic / visual → align per shard, rule predict_words adds pseudo-words, text and
# store per language; rule predict (write_predictions) applies the model. Each job is cached
# by Snakemake like the main DAG's.


def predict_dir(name: str) -> str:
    return f"results/predict/{name}"


def stage_setting(settings: str | os.PathLike, stage: str, lang: str | None = None) -> dict | str:
    """A predict stage job's config slice, from the ``settings.json`` that rule predict_corpus
    writes from the bundle (the bundle's settings, never the workflow's feature config).

    Snakemake evaluates params at DAG build, when the file may not be written yet (or is about
    to be rewritten), and again just before the job runs; until then this is a placeholder.
    """
    path = Path(settings)
    data = json.loads(path.read_text()) if path.exists() else {}
    found = (
        (data.get("shard_stages") or {}).get(stage)
        if stage in SHARD_STAGES
        else ((data.get("languages") or {}).get(lang) or {}).get(stage)
    )
    return found if found is not None else f"<{stage} settings for {lang or 'all'} from {settings} (not written yet)>"


def _bundle_eval_language(config: dict, entry: dict) -> str:
    m = RUN_NAME.match(entry["bundle"])
    experiments = config.get("experiments") or {}
    if m and m["exp"] in experiments:
        return experiments[m["exp"]]["eval"]
    desc = Path(entry["bundle"]) / "bundle.json"
    if not desc.exists():
        raise PredictError(
            f"predict bundle {entry['bundle']}: neither a configured experiment's run "
            f"({{exp}}/seed{{n}}) nor a bundle folder (no {desc})"
        )
    return json.loads(desc.read_text())["training"]["entry"]["eval"]


def workflow_languages(config: dict, name: str) -> list[str]:
    """The languages of the stores a predict entry needs, known at DAG build: those of its
    manifest, or the ``lang`` of its media (default: the bundle's evaluation language)."""
    entry = workflow_entry(config, name)
    if entry.get("manifest"):
        frame = read_manifest(entry["manifest"])
        check_columns(frame, entry["manifest"])
        return sorted(frame["lang"].astype(str).unique())
    return [entry.get("lang") or _bundle_eval_language(config, entry)]


def workflow_paths(name: str, shards: list[str], langs: list[str]) -> dict:
    """The files of one predict entry's stages: the stores (by language) and the QC files in the
    order the one-process path reads them (the first stage's reason of a segment wins)."""
    root = predict_dir(name)
    qc = [f"{root}/qc/media/{s}.parquet" for s in shards]
    qc += [f"{root}/qc/{st}/{s}.parquet" for s in shards for st in ("acoustic", "visual", "align")]
    qc += [f"{root}/qc/{st}/{lang}.parquet" for lang in langs for st in ("text", "store")]
    return {"stores": {f"store_{lang}": f"{root}/store/{lang}.parquet" for lang in langs}, "qc": qc}


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "segment_id": pd.Series(dtype=str),
            "video_id": pd.Series(dtype=str),
            "lang": pd.Series(dtype=str),
            "start": pd.Series(dtype=float),
            "end": pd.Series(dtype=float),
            "video_path": pd.Series(dtype=str),
        }
    )


def write_corpus(
    bundle_path: str | os.PathLike,
    entry: dict,
    n_shards: int,
    languages: list[str],
    out_manifest: str | os.PathLike,
    out_settings: str | os.PathLike,
    out_corpus: str | os.PathLike,
    manifest: str | os.PathLike | None = None,
    media: str | os.PathLike | None = None,
    progress: bool = False,
) -> Prepared:
    """Rule predict_corpus: :func:`prepare` (feature check first, then segmentation / ASR), then

    * ``out_manifest``: the segments as a corpus manifest (the ``folder`` source's format),
      sharded by video id like the corpus stage (:func:`polysent.corpus.sharding.shard_of`);
    * ``out_settings``: the bundle's config slice of every stage (:func:`stage_setting`); only
      these are inputs of the stage jobs, so they re-run when the settings do, not otherwise;
    * ``out_corpus``: what the output's metadata needs (differences, transcripts, videos
      without speech, pseudo-word segments).

    ``languages`` are the ones the DAG planned stores for (:func:`workflow_languages`).
    """
    from polysent.corpus.sharding import shard_of

    bundle = load_bundle(bundle_path)
    out_manifest = Path(out_manifest)
    out_manifest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".speech.", dir=out_manifest.parent) as tmp:  # WAVs for segment/ASR
        prepared = prepare(
            bundle,
            Path(tmp),
            manifest,
            media,
            entry.get("lang"),
            entry["allow_feature_mismatch"],
            None,
            entry["segment"],
            entry["asr"],
            entry["pseudo_word"],
            progress,
        )
    found = sorted(prepared.frame["lang"].unique()) if prepared.frame is not None else []
    if any(code not in languages for code in found):
        raise PredictError(
            f"{prepared.where}: languages {found}, but the workflow planned stores for {sorted(languages)}"
        )
    frame = prepared.frame if prepared.frame is not None else _complete(_empty_frame(), prepared.where)[0]
    frame = frame.assign(shard=np.array([shard_of(v, n_shards) for v in frame["video_id"]], dtype="int32"))
    complete_manifest(frame, out_manifest, prepared.where)
    cfgs = {code: prepared.cfgs_by_lang.get(code) or stage_configs(bundle, code) for code in languages}
    eval_lang = bundle.meta["training"]["entry"]["eval"]
    io.write_json(
        out_settings,
        {  # settings only: another bundle with the same ones reuses the features
            "shard_stages": shard_stage_configs(cfgs or {eval_lang: stage_configs(bundle, eval_lang)}),
            "languages": {code: {"text": c["text"], "store": c["store"]} for code, c in cfgs.items()},
        },
    )
    io.write_json(
        out_corpus,
        {
            "bundle": str(bundle_path),
            "manifest": None if manifest is None else str(manifest),
            "media": None if media is None else str(media),
            "allow_mismatch": entry["allow_feature_mismatch"],
            "differences": prepared.differences,
            "no_speech": prepared.no_speech,
            "transcripts": prepared.how,
            "pseudo_words": {"segments": prepared.pseudo, "window": prepared.pseudo_word},
            "segmentation": prepared.segment_cfg,
            "asr": prepared.asr_cfg,
        },
    )
    return prepared


def write_words(
    align_path: str | os.PathLike,
    manifest: str | os.PathLike,
    corpus: str | os.PathLike,
    shard: str | int,
    out: str | os.PathLike,
) -> None:
    """Rule predict_words: one shard's aligned words, plus pseudo-words for its segments without a
    transcript (text-free bundle; :func:`pseudo_words`); a plain copy when there are none."""
    info = json.loads(Path(corpus).read_text())["pseudo_words"]
    frame = pd.read_parquet(manifest)
    in_shard = set(frame.loc[frame["shard"] == int(shard), "segment_id"])
    add_pseudo_words(
        Path(align_path), frame, [s for s in info["segments"] if s in in_shard], info["window"], out=Path(out)
    )


def write_predictions(
    bundle_path: str | os.PathLike,
    manifest: str | os.PathLike,
    corpus: str | os.PathLike,
    stores: dict[str, str],
    qc_paths: list[str],
    out: str | os.PathLike,
) -> pd.DataFrame:
    """Rule predict: the finished stores checked against the bundle again and predicted, one row
    per segment as :func:`predict` writes them (same rows, reasons and metadata)."""
    bundle = load_bundle(bundle_path)
    info = json.loads(Path(corpus).read_text())
    frame = pd.read_parquet(manifest)
    rows, differences = predict_rows(
        bundle,
        frame if len(frame) else None,
        {k: Path(v) for k, v in stores.items()},
        [Path(p) for p in qc_paths],
        info["no_speech"],
        info["differences"],
        info["allow_mismatch"],
    )
    meta = _meta_of(
        info["bundle"],
        bundle,
        info["manifest"],
        info["media"],
        differences,
        info["allow_mismatch"],
        info["segmentation"],
        info["asr"],
        info["transcripts"],
        info["pseudo_words"]["window"],
    )
    return _write(bundle, Path(out), rows, meta)


# ---------------------------------------------------------------------------------------- CLI


RUN_NAME = re.compile(r"^(?P<exp>[A-Za-z0-9][A-Za-z0-9_.+-]*)/seed(?P<seed>\d+)$")


def bundle_source(bundle: str, experiments: dict | None) -> str:
    """The bundle folder a ``predict.<name>.bundle`` names: a run of the workflow ("{exp}/seed{n}",
    bundled by rule bundle) or a folder path as given."""
    m = RUN_NAME.match(bundle)
    if m and m["exp"] in (experiments or {}):
        return f"results/runs/{m['exp']}/seed{m['seed']}/bundle"
    return bundle


def workflow_entry(config: dict, name: str) -> dict:
    """The (schema-completed) ``predict.<name>`` entry of a workflow config; a missing one is named."""
    entries = config.get("predict") or {}
    if name not in entries:
        raise PredictError(
            f"results/predict/{name}.csv: no predict.{name} entry in the config (configured: {sorted(entries)})"
        )
    return entries[name]


def workflow_inputs(config: dict, name: str) -> dict[str, str]:
    """Rule predict_corpus's inputs: ``bundle`` (a run's bundle folder or the given one), ``manifest``/``media``."""
    entry = workflow_entry(config, name)
    found = {"bundle": bundle_source(entry["bundle"], config.get("experiments"))}
    found.update({k: entry[k] for k in ("manifest", "media") if entry.get(k)})
    return found


def entry_settings(entry: dict | None = None) -> dict:
    """A ``predict.<name>`` config entry with the schema's defaults filled in (validated)."""
    from polysent.config import complete

    return complete({"bundle": "-", **(entry or {})}, "predict", "entry")


def add_cli(sub) -> None:
    d = entry_settings()
    p = sub.add_parser("predict", help="predict new videos (a manifest, one video or a folder) with a bundle")
    p.add_argument("--bundle", required=True, help="bundle folder (polysent bundle)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--manifest",
        help="Parquet/CSV manifest with segment_id, video_id, lang, start, end, video_path (transcript optional)",
    )
    src.add_argument("--media", help="one video/audio file or a folder of them (segments found from pauses)")
    p.add_argument("--lang", default=None, help="language of --media (default: the bundle's evaluation language)")
    p.add_argument("--out", required=True, help="predictions (.csv or .parquet)")
    p.add_argument("--work", default=None, help="folder for the intermediate stage files (default: next to --out)")
    p.add_argument(
        "--asr-model", default=None, help="local Whisper model directory: transcribes segments without a transcript"
    )
    p.add_argument(
        "--segment",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"segmentation setting (repeat; defaults {d['segment']}, see polysent.segment)",
    )
    p.add_argument(
        "--pseudo-word",
        type=float,
        default=d["pseudo_word"],
        help=f"text-free bundle without transcripts: pseudo-word length in seconds (default {d['pseudo_word']})",
    )
    p.add_argument(
        "--allow-feature-mismatch",
        action="store_true",
        help="predict although the features differ from the bundle's (recorded in the metadata)",
    )
    p.add_argument("--threads", type=int, default=d["threads"])
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    segment_cfg = {k: float(v) for k, v in key_values(args.segment, "--segment").items()}
    asr_cfg = {"backend": "whisper", "model": args.asr_model} if args.asr_model else {}
    rows = predict(
        args.bundle,
        args.out,
        manifest=args.manifest,
        media=args.media,
        lang=args.lang,
        work=args.work,
        allow_mismatch=args.allow_feature_mismatch,
        segment_cfg=segment_cfg,
        asr_cfg=asr_cfg,
        pseudo_word=args.pseudo_word,
        threads=args.threads,
    )
    print(f"{len(rows)} row(s), {int(rows['reason'].isna().sum())} predicted without a note -> {args.out}")
    return 0
