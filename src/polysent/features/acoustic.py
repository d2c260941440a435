"""Acoustic stage: frame-level features per segment from the media stage's WAVs.

Backends (config ``acoustic.backend``):

``librosa`` (default) — the paper's 25-d set: ``chroma_stft`` (12) + ``spectral_contrast`` (7) +
``tonnetz`` (6). The paper's code (``feature_extraction/extract_audio_features.py``) loaded audio
at 22 050 Hz, computed ``S = |stft(y)|`` once and passed the magnitude to ``chroma_stft`` and
``spectral_contrast``, and called ``tonnetz(y=harmonic(y))`` — which makes librosa compute a
constant-Q chroma of the harmonic component internally. Every one of those choices is a config
key (``acoustic.librosa``): ``tonnetz_harmonic`` (HPSS first, the paper's choice and by far the
slowest step) and ``tonnetz_chroma`` (``cqt`` = librosa's and the paper's default; ``stft`` reuses
the shared STFT chroma). The STFT is computed once per call and shared (also by the HPSS). The
constant-Q transform under ``tonnetz`` is :class:`ConstantQ`: librosa's algorithm with the filter
bank built once per parameter set (librosa rebuilds it on every call), allclose to
``librosa.feature.tonnetz(y=...)``.

``opensmile`` — eGeMAPSv02 low-level descriptors (25 columns, 10 ms hop), openSMILE's own names.

Where frames are computed (``acoustic.mode``):

``whole_wav`` (default) — each video's WAV is analysed once and every segment keeps the analysis
frames that lie **fully inside** ``start``..``end`` (manifest, video time): a frame's window
(``n_fft`` samples around its centre for librosa; openSMILE's frame start + frame length) must
start at or after ``start`` and end at or before ``end`` (or the audio's end, if earlier). So the
first and last ``n_fft / 2`` samples of a segment (46 ms at the defaults) carry no frame centre,
a segment at the file start loses the frames whose window reaches into the padding before 0 s,
and a segment shorter than one analysis frame gets a QC record instead of frames. Frames see the
audio around the segment instead of zero padding: the constant-Q filters at C1 are ~1.6 s long and
the HPSS median filter spans 31 frames, so near a segment's edges the values differ from
``per_segment`` (well inside they agree to float32 precision at a fixed ``tuning``; tested). With
``tuning: null`` librosa's tuning estimate is made once per video instead of per segment, and
``spectral_contrast`` (dB, librosa's ``top_db=80``) clips near-silent frames at 80 dB below the
loudest frame of the whole WAV rather than of the segment.

``per_segment`` — the previous behaviour, kept for comparison: each segment's samples are
analysed on their own (librosa pads ``n_fft / 2`` with zeros at both ends) and every frame is kept.

``time`` is the centre of each analysis frame in seconds from the segment start.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from polysent.config import complete, schema_defaults
from polysent.errors import data_errors
from polysent.features import (
    Segment,
    SegmentFrames,
    add_file_args,
    add_segment_args,
    add_shard_args,
    frames_table,
    group_by_video,
    shard_mode,
    shard_segments,
    stage_config,
    versions,
)
from polysent.features.cqt import ConstantQError, constant_q, estimate_tuning
from polysent.io import read_provenance, write_parquet
from polysent.pool import map_in_order
from polysent.qc import QCLog
from polysent.stage import Config, PathArg, Shard

log = logging.getLogger(__name__)

STAGE = "acoustic"


class AcousticError(RuntimeError):
    pass


class LibrosaExtractor:
    """chroma_stft + spectral_contrast + tonnetz on one shared STFT (see module docstring)."""

    backend = "librosa"

    def __init__(self, cfg: dict | None = None):
        self.cfg = complete(cfg, "acoustic", "librosa")
        c = self.cfg
        if c["tonnetz_chroma"] not in ("cqt", "stft"):
            raise AcousticError(f"acoustic.librosa.tonnetz_chroma must be cqt or stft, not {c['tonnetz_chroma']!r}")
        self.sr = int(c["sr"])
        self.hop = int(c["hop_length"])
        self.n_fft = int(c["n_fft"])
        self.names = (
            [f"chroma_{i:02d}" for i in range(int(c["n_chroma"]))]
            + [f"contrast_{i}" for i in range(int(c["contrast_n_bands"]) + 1)]
            + [f"tonnetz_{i}" for i in range(6)]
        )

    def frame_times(self, n: int) -> np.ndarray:
        t = np.arange(n) * self.hop / self.sr
        if not self.cfg["center"]:  # frame k spans [k*hop, k*hop + n_fft), window centred in it
            t = t + self.n_fft / 2 / self.sr
        return t

    def spans(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(window start s, window end s, features) of every frame of ``y``."""
        t, f = self(y)
        half = self.n_fft / 2 / self.sr
        return t - half, t + half, f

    def _stft_kw(self) -> dict:
        c = self.cfg
        return dict(
            n_fft=self.n_fft,
            hop_length=self.hop,
            win_length=c["win_length"],
            window=c["window"],
            center=bool(c["center"]),
            pad_mode=c["pad_mode"],
        )

    def _power(self, S: np.ndarray) -> np.ndarray:
        p = float(self.cfg["chroma_power"])
        return S if p == 1 else S**p

    def __call__(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import librosa

        c = self.cfg
        D = librosa.stft(y, **self._stft_kw())
        S = np.abs(D)
        chroma_S = self._power(S)
        chroma = self._chroma_stft(chroma_S, int(c["n_chroma"]))
        contrast = librosa.feature.spectral_contrast(
            S=S,
            sr=self.sr,
            n_fft=self.n_fft,
            hop_length=self.hop,
            fmin=float(c["contrast_fmin"]),
            n_bands=int(c["contrast_n_bands"]),
            quantile=float(c["contrast_quantile"]),
            linear=bool(c["contrast_linear"]),
        )
        if c["tonnetz_chroma"] == "cqt":
            tonnetz = self._tonnetz_cqt(y, D, S)
        else:
            if c["tonnetz_harmonic"]:
                H, _ = librosa.decompose.hpss(D, margin=float(c["harmonic_margin"]))
                tchroma = self._chroma_stft(self._power(np.abs(H)), 12)
            else:
                tchroma = chroma if int(c["n_chroma"]) == 12 else self._chroma_stft(chroma_S, 12)
            tonnetz = librosa.feature.tonnetz(chroma=tchroma, sr=self.sr)
        n = min(chroma.shape[1], contrast.shape[1], tonnetz.shape[1])
        feats = np.concatenate([chroma[:, :n], contrast[:, :n], tonnetz[:, :n]]).T
        return self.frame_times(n), feats.astype(np.float32)

    def _chroma_stft(self, S: np.ndarray, n_chroma: int) -> np.ndarray:
        """``librosa.feature.chroma_stft(S=S, tuning=...)``; a null tuning is estimated from S."""
        import librosa

        tuning = self.cfg["tuning"]
        if tuning is None:  # what chroma_stft would estimate, by the faster equivalent
            tuning = estimate_tuning(S, self.sr, n_chroma)
        return librosa.feature.chroma_stft(S=S, sr=self.sr, tuning=tuning, n_chroma=n_chroma)

    def _harmonic(self, y: np.ndarray, D: np.ndarray) -> np.ndarray:
        """``librosa.effects.harmonic(y)``, reusing the shared STFT when it is the one harmonic takes."""
        import librosa

        c, kw = self.cfg, self._stft_kw()
        margin = float(c["harmonic_margin"])
        if c["window"] != "hann":  # effects.harmonic always analyses with a hann window
            kw.pop("window")
            return librosa.effects.harmonic(y, margin=margin, **kw)
        H = librosa.decompose.hpss(D, margin=margin)[0]
        kw.pop("pad_mode")
        return librosa.istft(H, dtype=y.dtype, length=len(y), **kw)

    def _tonnetz_cqt(self, y: np.ndarray, D: np.ndarray, S: np.ndarray) -> np.ndarray:
        """``librosa.feature.tonnetz(y=yt)`` with yt = y or its harmonic part, via :func:`constant_q`."""
        import librosa

        c = self.cfg
        bpo = int(c["cqt_bins_per_octave"])
        yt = self._harmonic(y, D) if c["tonnetz_harmonic"] else y
        tuning = c["tuning"]
        if tuning is None:
            # cqt(tuning=None) estimates from |stft(yt)| at librosa's piptrack defaults; reuse S
            # when it is exactly that spectrogram.
            default = dict(n_fft=2048, hop_length=512, win_length=None, window="hann",
                           center=True, pad_mode="constant")  # fmt: skip
            St = S if yt is y and self._stft_kw() == default else np.abs(librosa.stft(yt, **default))
            tuning = estimate_tuning(St, self.sr, bpo)
        cq = constant_q(
            float(self.sr),
            self.hop,
            7 * bpo,
            bpo,
            float(tuning),
            float(librosa.note_to_hz("C1")),
            str(librosa.util.dtype_r2c(yt.dtype)),
        )
        C = np.abs(cq(yt))
        chroma = librosa.feature.chroma_cqt(C=C, sr=self.sr, bins_per_octave=bpo)
        return librosa.feature.tonnetz(chroma=chroma, sr=self.sr)


class OpenSmileExtractor:
    """openSMILE low-level descriptors (eGeMAPSv02 by default), names as openSMILE gives them."""

    backend = "opensmile"

    def __init__(self, cfg: dict | None = None):
        import opensmile

        self.cfg = complete(cfg, "acoustic", "opensmile")
        self.sr = int(self.cfg["sr"])
        try:
            feature_set = getattr(opensmile.FeatureSet, self.cfg["feature_set"])
            level = getattr(opensmile.FeatureLevel, self.cfg["feature_level"])
        except AttributeError as err:
            raise AcousticError(f"unknown openSMILE feature set or level in acoustic.opensmile: {err}") from err
        self.smile = opensmile.Smile(feature_set=feature_set, feature_level=level)
        self.names = list(self.smile.feature_names)

    def spans(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(frame start s, frame start + nominal frame length s, features) of every frame of ``y``."""
        df = self.smile.process_signal(y, self.sr)
        start = df.index.get_level_values("start").total_seconds().to_numpy()
        end = df.index.get_level_values("end").total_seconds().to_numpy()
        feats = df[self.names].to_numpy(np.float32)
        # openSMILE clips the last frame's end to the signal end; use the nominal frame length.
        width = float(np.median(end - start)) if len(start) else 0.0
        return start, start + width, feats

    def __call__(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo, hi, feats = self.spans(y)
        return (lo + hi) / 2.0, feats


def make_extractor(cfg: dict):
    cfg = complete(cfg, "acoustic")
    backend = cfg["backend"]
    if backend == "librosa":
        return LibrosaExtractor(cfg["librosa"])
    if backend == "opensmile":
        return OpenSmileExtractor(cfg["opensmile"])
    raise AcousticError(f"unknown acoustic.backend {backend!r}; choose librosa or opensmile")


def provenance(extractor, cfg: dict, extra: dict | None = None) -> dict:
    pkgs = ("librosa", "numpy", "soundfile") if extractor.backend == "librosa" else ("opensmile",)
    return {
        "stage": STAGE,
        "backend": extractor.backend,
        "params": extractor.cfg,
        "feature_names": extractor.names,
        "sample_rate": extractor.sr,
        "mode": complete(cfg, "acoustic")["mode"],
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


def _read_audio(path: str, native_sr: int, start: float, end: float | None, sr: int) -> np.ndarray:
    """Mono float32 samples of ``start``..``end`` s (``end`` None: to the file's end) at ``sr``."""
    i0 = max(int(round(start * native_sr)), 0)
    i1 = None if end is None else max(int(round(end * native_sr)), 0)
    y, file_sr = sf.read(path, start=i0, stop=i1, dtype="float32", always_2d=False)
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
    """Frames for one video's segments; returns (frames, failures).

    Data errors (:mod:`polysent.errors`) become failures; anything else is a bug and raises.

    A segment may end up to ``tolerance`` s (the media stage's ``duration_tolerance``, or one hop
    if larger) after the audio; it is then analysed up to the audio's end. Beyond that it is QC'd.
    ``acoustic.mode`` (module docstring) decides whether the WAV is analysed once or per segment.
    """
    import json

    extractor = _cached_extractor(cfg_key)
    if wav is None:
        reason = "no WAV for this video (media stage failed, see results/qc/media)"
        return [], [(s.segment_id, reason) for s in segs]
    tolerance = max(float(tolerance), getattr(extractor, "hop", 160) / extractor.sr)
    failures, inside = [], []
    for s in segs:
        if s.end > duration + tolerance:
            failures.append((s.segment_id, f"segment ends at {s.end:.3f} s, after the audio ({duration:.3f} s)"))
        else:
            inside.append(s)
    if json.loads(cfg_key)["mode"] == "per_segment":
        frames, more = _per_segment(extractor, wav, wav_sr, duration, inside)
    else:
        frames, more = _whole_wav(extractor, wav, wav_sr, inside)
    return frames, failures + more


def _checked(seg_id: str, t: np.ndarray, f: np.ndarray, frames: list, failures: list) -> None:
    """Append the segment's frames, or a QC reason when it has none or non-finite values."""
    if len(t) == 0:
        failures.append((seg_id, "segment too short for one analysis frame"))
    elif not np.isfinite(f).all():
        failures.append((seg_id, f"{int((~np.isfinite(f)).sum())} non-finite feature values"))
    else:
        frames.append(SegmentFrames(seg_id, t, f))


@lru_cache(maxsize=1)
def _data_errors() -> tuple[type[BaseException], ...]:
    """What a bad WAV raises: decoder and librosa parameter errors besides the base data errors."""
    from librosa.util.exceptions import LibrosaError

    return data_errors(sf.SoundFileError, LibrosaError, AcousticError, ConstantQError)


def _per_segment(extractor, wav: str, wav_sr: int, duration: float, segs: list[Segment]):
    """``acoustic.mode: per_segment``: each segment's samples analysed on their own."""
    frames, failures = [], []
    for s in segs:
        try:
            y = _read_audio(wav, wav_sr, s.start, min(s.end, duration), extractor.sr)
            if len(y) == 0:
                failures.append((s.segment_id, "segment has no audio samples"))
                continue
            t, f = extractor(y)
            _checked(s.segment_id, t, f, frames, failures)
        except _data_errors() as err:  # one bad segment must not fail the shard
            failures.append((s.segment_id, f"{type(err).__name__}: {err}"))
    return frames, failures


def _whole_wav(extractor, wav: str, wav_sr: int, segs: list[Segment]):
    """``acoustic.mode: whole_wav``: the WAV analysed once, each segment's fully-inside frames."""
    if not segs:
        return [], []
    try:
        y = _read_audio(wav, wav_sr, 0.0, None, extractor.sr)
        if len(y) == 0:
            return [], [(s.segment_id, "the video's WAV has no audio samples") for s in segs]
        lo, hi, feats = extractor.spans(y)
    except _data_errors() as err:  # a bad WAV fails its segments, not the shard
        return [], [(s.segment_id, f"{type(err).__name__}: {err}") for s in segs]
    frames, failures = [], []
    audio_end = len(y) / extractor.sr
    width = float(np.median(hi - lo)) if len(lo) else 0.0
    for s in segs:
        t, f = slice_frames(lo, hi, feats, s.start, min(s.end, audio_end), extractor.sr)
        if len(t) == 0:
            length = 1000 * (min(s.end, audio_end) - s.start)
            why = "is shorter than one" if length < 1000 * width else "holds no whole"
            reason = (
                f"segment ({length:.0f} ms of audio) {why} analysis frame "
                f"({1000 * width:.0f} ms; acoustic.mode whole_wav keeps frames fully inside)"
            )
            failures.append((s.segment_id, reason))
            continue
        _checked(s.segment_id, t, f, frames, failures)
    return frames, failures


def slice_frames(
    lo: np.ndarray, hi: np.ndarray, feats: np.ndarray, start: float, end: float, sr: int
) -> tuple[np.ndarray, np.ndarray]:
    """The frames whose window ``lo..hi`` lies fully inside ``start..end`` (seconds, half a sample
    of slack for rounding); times are window centres relative to ``start``."""
    eps = 0.5 / sr
    keep = (lo >= start - eps) & (hi <= end + eps)
    return (lo[keep] + hi[keep]) / 2.0 - start, feats[keep]


def _pick_wav(rows: list[dict], sr: int) -> dict | None:
    """The WAV at exactly ``sr`` if the media stage made one, else the highest rate (resampled)."""
    if not rows:
        return None
    exact = [r for r in rows if int(r["sample_rate"]) == sr]
    return exact[0] if exact else max(rows, key=lambda r: int(r["sample_rate"]))


def run_shard(
    manifest: PathArg,
    shard: Shard,
    out: PathArg,
    qc_path: PathArg,
    cfg: Config,
    *,
    threads: int,
    media_dir: PathArg,
    progress: bool = True,
):
    """Acoustic stage for one shard: frames to ``out`` (contract FRAMES), failures to ``qc_path``."""
    import json

    from polysent.media import index_path, read_index

    cfg = complete(cfg, "acoustic")
    cfg_key = json.dumps(cfg, sort_keys=True)
    extractor = _cached_extractor(cfg_key)
    videos = group_by_video(shard_segments(manifest, shard))
    index = read_index(media_dir).to_pylist()
    media_params = {**schema_defaults("media"), **read_provenance(index_path(media_dir)).get("params", {})}
    tolerance = media_params["duration_tolerance"]
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
    for (vid, _segs), (frames, failures) in tqdm(
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
    return map_in_order(_process_video, tasks, threads)


def extract_file(path: str | os.PathLike, cfg: dict, start: float = 0.0, end: float | None = None):
    """Frames of one audio/video file (or its ``start``..``end`` part); decodes with ffmpeg if needed."""
    import json
    import tempfile

    from polysent.media import extract_wav

    extractor = _cached_extractor(json.dumps(cfg, sort_keys=True))
    media = complete(None, "media")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "audio.wav"
        duration = extract_wav(path, wav, extractor.sr, ffmpeg=media["ffmpeg"], timeout=media["timeout"])
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
    add_file_args(p, "audio or video file (single-file mode)", "frames Parquet to write")
    add_segment_args(p)
    add_shard_args(p, {"--media-dir": "the media stage's folder for this shard", "--out": "frames Parquet"})
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    cfg = stage_config("acoustic", args.config, args.set)
    if shard_mode(args, "media_dir", "out"):
        table = run_shard(
            args.manifest, args.shard, args.out, args.qc, cfg, threads=args.threads, media_dir=args.media_dir
        )
        print(f"{table.num_rows} frames -> {args.out}")
        return 0
    t, f, extractor = extract_file(args.input, cfg, args.start, args.end)
    seg_id = args.segment_id or Path(args.input).stem
    table = frames_table([SegmentFrames(seg_id, t, f)], extractor.names)
    write_parquet(args.output, table, provenance=provenance(extractor, cfg, {"input": str(args.input)}))
    print(f"{args.output}: {table.num_rows} frames x {len(extractor.names)} features")
    return 0
