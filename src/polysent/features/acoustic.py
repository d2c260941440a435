"""Acoustic stage: frame-level features per segment from the media stage's WAVs.

Backends (config ``acoustic.backend``):

``librosa`` (default) — the paper's 25-d set: ``chroma_stft`` (12) + ``spectral_contrast`` (7) +
``tonnetz`` (6). The paper's code (``feature_extraction/extract_audio_features.py``) loaded audio
at 22 050 Hz, computed ``S = |stft(y)|`` once and passed the magnitude to ``chroma_stft`` and
``spectral_contrast``, and called ``tonnetz(y=harmonic(y))`` — which makes librosa compute a
constant-Q chroma of the harmonic component internally. Every one of those choices is a config
key (``acoustic.librosa``): ``tonnetz_harmonic`` (HPSS first, the paper's choice and by far the
slowest step) and ``tonnetz_chroma`` (``cqt`` = librosa's and the paper's default; ``stft`` reuses
the shared STFT chroma, ~4x faster). The STFT is computed once per segment and shared.

``opensmile`` — eGeMAPSv02 low-level descriptors (25 columns, 10 ms hop), openSMILE's own names.

Frames are cut per segment (``start``..``end`` of the manifest, video time) and ``time`` is the
centre of each analysis frame in seconds from the segment start.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf
from tqdm import tqdm

from polysent.features import (
    Segment,
    SegmentFrames,
    add_segment_args,
    add_shard_args,
    frames_table,
    group_by_video,
    require_shard_args,
    shard_segments,
    stage_config,
    versions,
)
from polysent.io import read_provenance, write_parquet
from polysent.qc import QCLog

log = logging.getLogger(__name__)

STAGE = "acoustic"

LIBROSA_DEFAULTS = {
    "sr": 22050,
    "n_fft": 2048,
    "hop_length": 512,
    "win_length": None,
    "window": "hann",
    "center": True,
    "pad_mode": "constant",
    "chroma_power": 1.0,
    "tuning": None,
    "n_chroma": 12,
    "contrast_fmin": 200.0,
    "contrast_n_bands": 6,
    "contrast_quantile": 0.02,
    "contrast_linear": False,
    "tonnetz_harmonic": True,
    "tonnetz_chroma": "cqt",
    "cqt_bins_per_octave": 36,
    "harmonic_margin": 1.0,
}

OPENSMILE_DEFAULTS = {
    "sr": 16000,
    "feature_set": "eGeMAPSv02",
    "feature_level": "LowLevelDescriptors",
}


class AcousticError(RuntimeError):
    pass


class LibrosaExtractor:
    """chroma_stft + spectral_contrast + tonnetz on one shared STFT (see module docstring)."""

    backend = "librosa"

    def __init__(self, cfg: dict | None = None):
        self.cfg = {**LIBROSA_DEFAULTS, **(cfg or {})}
        c = self.cfg
        if c["tonnetz_chroma"] not in ("cqt", "stft"):
            raise AcousticError(
                f"acoustic.librosa.tonnetz_chroma must be cqt or stft, not {c['tonnetz_chroma']!r}"
            )
        self.sr = int(c["sr"])
        self.hop = int(c["hop_length"])
        self.names = (
            [f"chroma_{i:02d}" for i in range(int(c["n_chroma"]))]
            + [f"contrast_{i}" for i in range(int(c["contrast_n_bands"]) + 1)]
            + [f"tonnetz_{i}" for i in range(6)]
        )

    def frame_times(self, n: int) -> np.ndarray:
        t = np.arange(n) * self.hop / self.sr
        if not self.cfg["center"]:  # frame k spans [k*hop, k*hop + n_fft)
            t = t + (self.cfg["win_length"] or self.cfg["n_fft"]) / 2 / self.sr
        return t

    def __call__(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import librosa

        c = self.cfg
        stft_kw = dict(
            n_fft=int(c["n_fft"]),
            hop_length=self.hop,
            win_length=c["win_length"],
            window=c["window"],
            center=bool(c["center"]),
            pad_mode=c["pad_mode"],
        )
        D = librosa.stft(y, **stft_kw)
        S = np.abs(D)
        chroma_S = S if c["chroma_power"] == 1 else S ** float(c["chroma_power"])
        chroma = librosa.feature.chroma_stft(
            S=chroma_S, sr=self.sr, tuning=c["tuning"], n_chroma=int(c["n_chroma"])
        )
        contrast = librosa.feature.spectral_contrast(
            S=S,
            sr=self.sr,
            n_fft=int(c["n_fft"]),
            hop_length=self.hop,
            fmin=float(c["contrast_fmin"]),
            n_bands=int(c["contrast_n_bands"]),
            quantile=float(c["contrast_quantile"]),
            linear=bool(c["contrast_linear"]),
        )
        if c["tonnetz_chroma"] == "cqt":
            yt = (
                librosa.effects.harmonic(y, margin=float(c["harmonic_margin"]), **stft_kw)
                if c["tonnetz_harmonic"]
                else y
            )
            # librosa's default: tonnetz computes chroma_cqt of the signal itself.
            tonnetz = librosa.feature.tonnetz(
                y=yt,
                sr=self.sr,
                hop_length=self.hop,
                tuning=c["tuning"],
                bins_per_octave=int(c["cqt_bins_per_octave"]),
            )
        else:
            if c["tonnetz_harmonic"]:
                H, _ = librosa.decompose.hpss(D, margin=float(c["harmonic_margin"]))
                Ht = np.abs(H) if c["chroma_power"] == 1 else np.abs(H) ** float(c["chroma_power"])
                tchroma = librosa.feature.chroma_stft(S=Ht, sr=self.sr, tuning=c["tuning"])
            else:
                tchroma = (
                    chroma
                    if int(c["n_chroma"]) == 12
                    else librosa.feature.chroma_stft(S=chroma_S, sr=self.sr, tuning=c["tuning"])
                )
            tonnetz = librosa.feature.tonnetz(chroma=tchroma, sr=self.sr)
        n = min(chroma.shape[1], contrast.shape[1], tonnetz.shape[1])
        feats = np.concatenate([chroma[:, :n], contrast[:, :n], tonnetz[:, :n]]).T
        return self.frame_times(n), feats.astype(np.float32)


class OpenSmileExtractor:
    """openSMILE low-level descriptors (eGeMAPSv02 by default), names as openSMILE gives them."""

    backend = "opensmile"

    def __init__(self, cfg: dict | None = None):
        import opensmile

        self.cfg = {**OPENSMILE_DEFAULTS, **(cfg or {})}
        self.sr = int(self.cfg["sr"])
        try:
            feature_set = getattr(opensmile.FeatureSet, self.cfg["feature_set"])
            level = getattr(opensmile.FeatureLevel, self.cfg["feature_level"])
        except AttributeError as err:
            raise AcousticError(
                f"unknown openSMILE feature set or level in acoustic.opensmile: {err}"
            ) from err
        self.smile = opensmile.Smile(feature_set=feature_set, feature_level=level)
        self.names = list(self.smile.feature_names)

    def __call__(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        df = self.smile.process_signal(y, self.sr)
        start = df.index.get_level_values("start").total_seconds().to_numpy()
        end = df.index.get_level_values("end").total_seconds().to_numpy()
        feats = df[self.names].to_numpy(np.float32)
        # openSMILE clips the last frame's end to the signal end; use the nominal frame length.
        width = float(np.median(end - start)) if len(start) else 0.0
        return start + width / 2.0, feats


def make_extractor(cfg: dict):
    backend = cfg.get("backend", "librosa")
    if backend == "librosa":
        return LibrosaExtractor(cfg.get("librosa"))
    if backend == "opensmile":
        return OpenSmileExtractor(cfg.get("opensmile"))
    raise AcousticError(f"unknown acoustic.backend {backend!r}; choose librosa or opensmile")


def provenance(extractor, cfg: dict, extra: dict | None = None) -> dict:
    pkgs = ("librosa", "numpy", "soundfile") if extractor.backend == "librosa" else ("opensmile",)
    return {
        "stage": STAGE,
        "backend": extractor.backend,
        "params": extractor.cfg,
        "feature_names": extractor.names,
        "sample_rate": extractor.sr,
        "time": "centre of each analysis frame, seconds from the segment start",
        "versions": versions(*pkgs),
        **(extra or {}),
    }


# ---------------------------------------------------------------------------------------------
# Shard processing


@lru_cache(maxsize=4)
def _cached_extractor(key: str):
    import json

    return make_extractor(json.loads(key))


def _read_audio(path: str, native_sr: int, start: float, end: float, sr: int) -> np.ndarray:
    i0, i1 = int(round(start * native_sr)), int(round(end * native_sr))
    y, file_sr = sf.read(path, start=max(i0, 0), stop=max(i1, 0), dtype="float32", always_2d=False)
    if y.ndim > 1:
        y = y.mean(axis=1)
    if file_sr != sr:
        import librosa

        y = librosa.resample(y, orig_sr=file_sr, target_sr=sr, res_type="soxr_hq")
    return y


def _process_video(
    cfg_key: str,
    wav: str | None,
    wav_sr: int,
    duration: float,
    segs: list[Segment],
    tolerance: float = 0.1,
):
    """Frames for one video's segments; returns (frames, failures). Never raises.

    A segment may end up to ``tolerance`` s (the media stage's ``duration_tolerance``, or one hop
    if larger) after the audio; it is then analysed up to the audio's end. Beyond that it is QC'd.
    """
    extractor = _cached_extractor(cfg_key)
    frames, failures = [], []
    if wav is None:
        reason = "no WAV for this video (media stage failed, see results/qc/media)"
        return frames, [(s.segment_id, reason) for s in segs]
    tolerance = max(float(tolerance), getattr(extractor, "hop", 160) / extractor.sr)
    for s in segs:
        try:
            if s.end > duration + tolerance:
                failures.append(
                    (
                        s.segment_id,
                        f"segment ends at {s.end:.3f} s, after the audio ({duration:.3f} s)",
                    )
                )
                continue
            y = _read_audio(wav, wav_sr, s.start, min(s.end, duration), extractor.sr)
            if len(y) == 0:
                failures.append((s.segment_id, "segment has no audio samples"))
                continue
            t, f = extractor(y)
            if len(t) == 0:
                failures.append((s.segment_id, "segment too short for one analysis frame"))
                continue
            if not np.isfinite(f).all():
                failures.append(
                    (s.segment_id, f"{int((~np.isfinite(f)).sum())} non-finite feature values")
                )
                continue
            frames.append(SegmentFrames(s.segment_id, t, f))
        except Exception as err:  # one bad segment must not fail the shard
            failures.append((s.segment_id, f"{type(err).__name__}: {err}"))
    return frames, failures


def _pick_wav(rows: list[dict], sr: int) -> dict | None:
    """The WAV at exactly ``sr`` if the media stage made one, else the highest rate (resampled)."""
    if not rows:
        return None
    exact = [r for r in rows if int(r["sample_rate"]) == sr]
    return exact[0] if exact else max(rows, key=lambda r: int(r["sample_rate"]))


def extract_shard(
    manifest: str | os.PathLike,
    media_dir: str | os.PathLike,
    shard: str | int,
    out: str | os.PathLike,
    qc_path: str | os.PathLike,
    cfg: dict | None = None,
    threads: int = 1,
    progress: bool = True,
):
    """Acoustic stage for one shard: frames to ``out`` (contract FRAMES), failures to ``qc_path``."""
    import json

    cfg = cfg or {"backend": "librosa"}
    cfg_key = json.dumps(cfg, sort_keys=True)
    extractor = _cached_extractor(cfg_key)
    videos = group_by_video(shard_segments(manifest, shard))
    index_path = Path(media_dir) / "index.parquet"
    index = pq.read_table(index_path).to_pylist()
    tolerance = read_provenance(index_path).get("params", {}).get("duration_tolerance", 0.1)
    by_video: dict[str, list[dict]] = {}
    for r in index:
        by_video.setdefault(r["video_id"], []).append(r)

    tasks, resampled = [], set()
    for vid, segs in videos.items():
        row = _pick_wav(by_video.get(vid, []), extractor.sr)
        if row is not None and int(row["sample_rate"]) != extractor.sr:
            resampled.add(int(row["sample_rate"]))
        tasks.append(
            (
                cfg_key,
                row and row["wav"],
                row and int(row["sample_rate"]),
                row and row["duration"],
                segs,
                tolerance,
            )
        )
    if resampled:
        log.warning(
            "no %d Hz WAV from the media stage; resampling from %s Hz (add %d to media.sample_rates)",
            extractor.sr,
            sorted(resampled),
            extractor.sr,
        )
    qc = QCLog(STAGE)
    parts: list[SegmentFrames] = []
    results = _run(tasks, threads)
    for (vid, segs), (frames, failures) in tqdm(
        zip(videos.items(), results),
        total=len(tasks),
        desc=f"acoustic {shard}",
        disable=not progress,
    ):
        parts += frames
        for seg_id, reason in failures:
            qc.add(reason, segment_id=seg_id, video_id=vid)
            log.warning("%s/%s: %s", vid, seg_id, reason)
    table = frames_table(parts, extractor.names)
    prov = provenance(extractor, cfg, {"shard": str(shard), "resampled_from": sorted(resampled)})
    write_parquet(out, table, provenance=prov)
    qc.write(qc_path)
    log.info(
        "acoustic %s: %d segments, %d frames, %d QC records",
        shard,
        len(parts),
        table.num_rows,
        len(qc),
    )
    return table


def _run(tasks: list[tuple], threads: int):
    """Process videos in a pool of ``threads`` processes (inline for one), results in task order."""
    if threads <= 1 or len(tasks) <= 1:
        return (_process_video(*t) for t in tasks)
    pool = ProcessPoolExecutor(min(threads, len(tasks)), initializer=_single_thread_blas)
    futures = [pool.submit(_process_video, *t) for t in tasks]

    def gen():
        try:
            for f in futures:
                yield f.result()
        finally:
            pool.shutdown()

    return gen()


def _single_thread_blas() -> None:
    # One process per core: nested BLAS/OpenMP threads would only oversubscribe.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


def extract_file(path: str | os.PathLike, cfg: dict, start: float = 0.0, end: float | None = None):
    """Frames of one audio/video file (or its ``start``..``end`` part); decodes with ffmpeg if needed."""
    import json
    import tempfile

    from polysent.media import extract_wav

    extractor = _cached_extractor(json.dumps(cfg, sort_keys=True))
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "audio.wav"
        duration = extract_wav(path, wav, extractor.sr)
        y = _read_audio(str(wav), extractor.sr, start, min(end or duration, duration), extractor.sr)
    t, f = extractor(y)
    return t, f, extractor


# ---------------------------------------------------------------------------------------------
# CLI


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "acoustic",
        help="frame-level acoustic features (librosa 25-d or openSMILE eGeMAPS) of a file or shard",
        description="Single file: polysent acoustic IN.wav OUT.parquet [--start S --end E] "
        "[--set backend=opensmile]. Shard: polysent acoustic --manifest M --media-dir "
        "results/media/000 --shard 000 --out results/acoustic/000.parquet --qc Q.",
    )
    p.add_argument("input", nargs="?", help="audio or video file (single-file mode)")
    p.add_argument("output", nargs="?", help="frames Parquet to write")
    add_segment_args(p)
    add_shard_args(
        p, {"--media-dir": "the media stage's folder for this shard", "--out": "frames Parquet"}
    )
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    cfg = stage_config("acoustic", args.config, args.set)
    if args.manifest:
        require_shard_args(args, "media_dir", "out")
        table = extract_shard(
            args.manifest, args.media_dir, args.shard, args.out, args.qc, cfg, args.threads
        )
        print(f"{table.num_rows} frames -> {args.out}")
        return 0
    if not (args.input and args.output):
        raise SystemExit("give INPUT and OUTPUT (single file) or --manifest ... (shard mode)")
    t, f, extractor = extract_file(args.input, cfg, args.start, args.end)
    seg_id = args.segment_id or Path(args.input).stem
    table = frames_table([SegmentFrames(seg_id, t, f)], extractor.names)
    write_parquet(
        args.output, table, provenance=provenance(extractor, cfg, {"input": str(args.input)})
    )
    print(f"{args.output}: {table.num_rows} frames x {len(extractor.names)} features")
    return 0
