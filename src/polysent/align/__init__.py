"""Word alignment: transcript words → (start, end) in seconds from the segment start.

Two backends share one driver (:func:`align_shard`):

- ``aeneas`` (offline default, :mod:`polysent.align.aeneas_backend`): espeak-ng synthesis of the
  segment's words + MFCC DTW against the real audio (aeneas-ng), one word per fragment.
- ``mfa`` (:mod:`polysent.align.mfa`): Montreal Forced Aligner 3 in its conda env, the paper's
  aligner; corpus written as ``<speaker>/<utterance>.wav + .lab``, TextGrid ``words`` tier parsed.

Each segment's audio is cut from the shard's 16 kHz video WAV (``results/media/{shard}/``) at the
manifest's ``start``/``end`` (video time), so every word time is relative to the segment start.
A segment that cannot be aligned is recorded in QC with the reason and is absent from the output.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from polysent.align.base import AlignError, AlignerUnavailable, Segment
from polysent.config import complete
from polysent.contracts import WORDS, check
from polysent.errors import data_errors
from polysent.langcheck import screen_language
from polysent.media import ALIGN_RATE, wav_path as media_wav_path
from polysent.qc import QCLog, alignment_problems, screen_audio
from polysent.stage import Config, PathArg, Shard
from polysent.tokens import tokenize

# The package's API; the shared types live in polysent.align.base so the backends need not
# import this package.
__all__ = ["AlignError", "AlignerUnavailable", "Segment", "align_shard", "run_shard", "tokenize", "words_table"]

log = logging.getLogger(__name__)

BACKENDS = ("aeneas", "mfa")


def words_table(rows: list[dict]) -> pa.Table:
    """Rows ``segment_id, word_idx, word, start, end`` → a table honouring ``WORDS``."""
    schema = pa.schema([(n, t) for n, t in WORDS.required.items()])
    return check(pa.Table.from_pylist(rows, schema=schema), WORDS, "align output")


def cut_segments(manifest: pd.DataFrame, media_dir: Path, clip_dir: Path, qc: QCLog) -> list[Segment]:
    """Write one 16 kHz clip per segment (``clip_dir/<segment_id>.wav``) and return the segments.

    Videos are read once each; a missing WAV, an empty transcript or a segment outside the audio
    becomes a QC record.
    """
    import soundfile as sf

    clip_dir.mkdir(parents=True, exist_ok=True)
    segments: list[Segment] = []
    for video_id, rows in manifest.groupby("video_id", sort=True):
        wav_path = media_wav_path(media_dir, video_id, ALIGN_RATE)
        if not wav_path.exists():
            for sid in rows["segment_id"]:
                qc.add(f"no audio for video: {wav_path} missing", sid, video_id)
            continue
        try:
            audio, sr = sf.read(wav_path, dtype="float32", always_2d=True)
        except data_errors(sf.SoundFileError) as exc:  # unreadable media: a per-video QC record
            for sid in rows["segment_id"]:
                qc.add(f"unreadable audio {wav_path}: {exc}", sid, video_id)
            continue
        audio = audio.mean(axis=1)
        for row in rows.sort_values("segment_id").itertuples():
            words = tokenize(row.transcript)
            if not words:
                qc.add("empty transcript: nothing to align", row.segment_id, video_id)
                continue
            a, b = int(round(row.start * sr)), int(round(row.end * sr))
            clip = audio[max(a, 0) : min(b, len(audio))]
            if len(clip) < int(0.1 * sr):
                qc.add(
                    f"segment [{row.start:.2f}, {row.end:.2f}] s has <0.1 s of audio in {wav_path}"
                    f" ({len(audio) / sr:.2f} s long)",
                    row.segment_id,
                    video_id,
                )
                continue
            out = clip_dir / f"{row.segment_id}.wav"
            sf.write(out, clip, sr, subtype="PCM_16")
            segments.append(Segment(row.segment_id, video_id, row.lang, tuple(words), out, len(clip) / sr))
    return segments


def check_words(seg: Segment, words: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Clamp times into the clip and reject outputs no store could use (raises AlignError)."""
    if not words:
        raise AlignError("aligner returned no words")
    out = []
    for w, s, e in words:
        s, e = float(np.clip(s, 0.0, seg.duration)), float(np.clip(e, 0.0, seg.duration))
        if e < s:
            raise AlignError(f"word '{w}' ends before it starts ({s:.3f} > {e:.3f})")
        out.append((w, s, e))
    if all(e - s <= 0 for _, s, e in out):
        raise AlignError("every word has zero duration (text/audio mismatch?)")
    return out


def align_shard(
    manifest: pd.DataFrame,
    media_dir: str | Path,
    cfg: dict,
    workdir: str | Path,
    *,
    threads: int,
) -> tuple[pa.Table, QCLog]:
    """Align every segment of ``manifest`` (one shard) with ``cfg['backend']``.

    Returns the ``WORDS`` table (times from segment start, sorted by segment then word) and the
    QC log of segments that could not be aligned.
    """
    settings = complete(cfg, "align")
    backend = settings["backend"]
    qc = QCLog("align")
    workdir = Path(workdir)
    segments = cut_segments(manifest, Path(media_dir), workdir / "clips", qc)
    # Implausible segments go to QC instead of the store; the audio checks run first,
    # so a runaway transcript or a silent clip never reaches the aligner.
    plausibility = settings["plausibility"]
    segments = screen_audio(segments, plausibility, qc)
    segments = screen_language(segments, plausibility, qc)  # optional, off by default
    if backend == "aeneas":
        from polysent.align import aeneas_backend

        results = aeneas_backend.align_segments(segments, settings["aeneas"], threads=threads)
    elif backend == "mfa":
        from polysent.align import mfa

        results = mfa.align_segments(segments, settings["mfa"], workdir / "mfa", threads=threads)
    else:
        raise ValueError(f"align.backend must be one of {BACKENDS}, got {backend!r}")
    rows = []
    for seg in segments:
        res = results.get(seg.segment_id)
        try:
            if res is None:
                raise AlignError("backend returned nothing for this segment")
            if isinstance(res, Exception):
                raise res
            words = check_words(seg, res)
        except data_errors(AlignError) as exc:  # the backend's failure or unusable words
            qc.add(f"{backend}: {exc}", seg.segment_id, seg.video_id)
            continue
        implausible = alignment_problems(len(seg.words), words, plausibility)
        if implausible:
            qc.add(f"{backend}: " + "; ".join(implausible), seg.segment_id, seg.video_id)
            continue
        for i, (w, s, e) in enumerate(words):
            rows.append({"segment_id": seg.segment_id, "word_idx": i, "word": w, "start": s, "end": e})
    log.info("aligned %d/%d segments with %s", len({r["segment_id"] for r in rows}), len(manifest), backend)
    return words_table(rows), qc


def provenance(cfg: dict) -> dict:
    """What produced an align store: backend, its parameters and tool versions."""
    backend = complete(cfg, "align")["backend"]
    prov = {"stage": "align", "backend": backend, "params": cfg}
    if backend == "aeneas":
        from polysent.align import aeneas_backend

        prov["versions"] = aeneas_backend.versions()
    return prov


def run_shard(
    manifest: PathArg, shard: Shard, out: PathArg, qc_path: PathArg, cfg: Config, *, threads: int, media_dir: PathArg
) -> pa.Table:
    """Align stage for one shard: the WORDS store of its segments to ``out``, failures to ``qc_path``."""
    import tempfile

    from polysent.contracts import MANIFEST, read
    from polysent.io import write_parquet

    man = read(manifest, MANIFEST).to_pandas()
    man = man[man["shard"] == int(shard)]
    with tempfile.TemporaryDirectory(prefix=f"align_{shard}_") as tmp:
        table, qc = align_shard(man, media_dir, cfg, tmp, threads=threads)
    write_parquet(out, table, provenance=provenance(cfg))
    qc.write(qc_path)
    return table


def add_cli(sub) -> None:
    p = sub.add_parser("align", help="word alignment of one shard (aeneas or MFA)")
    p.add_argument("--manifest", default="results/corpus/manifest.parquet")
    p.add_argument("--media", required=True, help="results/media/{shard} (16 kHz WAVs)")
    p.add_argument("--shard", required=True)
    p.add_argument("--out", required=True, help="output WORDS Parquet")
    p.add_argument("--qc", required=True, help="output QC Parquet")
    p.add_argument("--backend", choices=BACKENDS, default="aeneas")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(
        func=lambda a: run_shard(
            a.manifest, a.shard, a.out, a.qc, {"backend": a.backend}, threads=a.threads, media_dir=a.media
        )
    )
