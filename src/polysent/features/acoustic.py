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
import tempfile
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
from polysent.features.cqt import (
    ConstantQError,
    constant_q,
    estimate_tuning,
    tuning_candidates,
    tuning_from_candidates,
)
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
            tonnetz = self._tonnetz_stft(D, chroma_S, chroma)
        n = min(chroma.shape[1], contrast.shape[1], tonnetz.shape[1])
        feats = np.concatenate([chroma[:, :n], contrast[:, :n], tonnetz[:, :n]]).T
        return self.frame_times(n), feats.astype(np.float32)

    def _tonnetz_stft(
        self, D: np.ndarray, chroma_S: np.ndarray, chroma: np.ndarray, tuning: float | None = None
    ) -> np.ndarray:
        """``tonnetz`` of the STFT chroma (of the harmonic part with ``tonnetz_harmonic``)."""
        import librosa

        c = self.cfg
        if c["tonnetz_harmonic"]:
            H, _ = librosa.decompose.hpss(D, margin=float(c["harmonic_margin"]))
            tchroma = self._chroma_stft(self._power(np.abs(H)), 12, tuning)
        elif int(c["n_chroma"]) == 12:
            tchroma = chroma
        else:
            tchroma = self._chroma_stft(chroma_S, 12, tuning)
        return librosa.feature.tonnetz(chroma=tchroma, sr=self.sr)

    def _chroma_stft(self, S: np.ndarray, n_chroma: int, tuning: float | None = None) -> np.ndarray:
        """``librosa.feature.chroma_stft(S=S, tuning=...)`` at ``tuning``, else the configured one;
        a null tuning is estimated from S."""
        import librosa

        if tuning is None:
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

    def _tonnetz_cqt(
        self,
        y: np.ndarray,
        D: np.ndarray,
        S: np.ndarray,
        tuning: float | None = None,
        harmonic: np.ndarray | None = None,
    ) -> np.ndarray:
        """``librosa.feature.tonnetz(y=yt)`` with yt = y or its harmonic part (``harmonic`` if
        given), via :func:`constant_q` (at ``tuning``, else the configured one, else estimated)."""
        import librosa

        c = self.cfg
        bpo = int(c["cqt_bins_per_octave"])
        if not c["tonnetz_harmonic"]:
            yt = y
        else:
            yt = self._harmonic(y, D) if harmonic is None else harmonic
        if tuning is None:
            tuning = c["tuning"]
        if tuning is None:
            tuning = estimate_tuning(self._tuning_spectrogram(y, yt, S), self.sr, bpo)
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

    def _tuning_spectrogram(self, y: np.ndarray, yt: np.ndarray, S: np.ndarray) -> np.ndarray:
        """The spectrogram ``cqt(tuning=None)`` estimates from: |stft(yt)| at librosa's piptrack
        defaults (hop :data:`TUNING_HOP`); S itself when it is exactly that spectrogram."""
        import librosa

        if yt is y and self._stft_kw() == TUNING_STFT:
            return S
        return np.abs(librosa.stft(yt, **TUNING_STFT))

    # -----------------------------------------------------------------------------------------
    # Block-wise analysis of a long WAV (acoustic.block_seconds)

    def context_samples(self) -> int:
        """Samples either side of a frame's anchor that its values depend on, with a margin: the
        STFT window, the HPSS median filter (31 frames) and the istft of its harmonic part, the
        tuning STFT, and for the CQT tonnetz half the longest constant-Q filter (C1 at half a bin
        below the tuning grid) plus the resampler's reach."""
        c = self.cfg
        n = 3 * max(self.n_fft, TUNING_STFT["n_fft"]) + 16 * max(self.hop, TUNING_STFT["hop_length"])
        if c["tonnetz_chroma"] == "cqt":
            import librosa

            bpo = int(c["cqt_bins_per_octave"])
            q = 1.0 / (2.0 ** (1.0 / bpo) - 1.0)
            fmin = float(librosa.note_to_hz("C1")) * 2.0 ** (-0.5 / bpo)
            n += int(np.ceil(q * self.sr / fmin / 2)) + self.sr // 4
        return n

    def block_spans(self, read, n_samples: int, block_samples: int, grid: int = 1):
        """:meth:`spans` of ``n_samples`` samples, analysed in blocks of about ``block_samples``.

        ``read(i0, i1)`` returns samples ``i0..i1`` at ``self.sr``; a block starts on a multiple of
        ``grid`` (the resampler's) and of every hop. Each block is read with
        :meth:`context_samples` of audio either side and keeps the frames anchored in its core,
        so a frame sees the same samples as in one analysis of the whole signal. What depends on
        all frames is gathered across blocks first: the tuning estimates (a first pass collects
        their spectral-peak candidates) and the spectral-contrast dB floor (librosa's top_db,
        applied once to all frames). Peak memory: one block's analysis plus the per-frame
        results, not the whole signal's spectrograms.
        """
        import math

        unit = math.lcm(self.hop, TUNING_STFT["hop_length"], int(grid))
        step = max(unit, block_samples // unit * unit)
        ctx = self.context_samples()
        cores = [(c0, min(c0 + step, n_samples)) for c0 in range(0, n_samples, step)]

        def blocks():
            for c0, c1 in cores:
                s0 = max(0, (c0 - ctx) // unit * unit)
                s1 = min(n_samples, c1 + ctx)
                yield read(s0, s1), s0, c0, (None if c1 == n_samples else c1)

        parts: dict[str, list] = {"chroma": [], "peak": [], "valley": [], "tonnetz": []}
        with tempfile.TemporaryDirectory(prefix="polysent-acoustic-") as tmp:
            # The harmonic signal of the first pass (the tuning's), kept on disk for the second.
            keep_harmonic = self.cfg["tuning"] is None and self.cfg["tonnetz_chroma"] == "cqt"
            keep_harmonic = keep_harmonic and self.cfg["tonnetz_harmonic"]
            harmonic = _SampleFile(Path(tmp) / "harmonic.f32") if keep_harmonic else None
            tunings = self._block_tunings(blocks(), harmonic)
            for y, s0, c0, c1 in blocks():
                h = None if harmonic is None else harmonic.read(s0, s0 + len(y))
                for name, value in self._block_features(y, tunings, h).items():
                    parts[name].append(value[:, _core(value.shape[1], s0, c0, c1, self.hop)])
            if harmonic is not None:
                harmonic.close()
        chroma, peak, valley, tonnetz = (np.concatenate(parts[k], axis=1) for k in parts)
        if self.cfg["contrast_linear"]:
            contrast = peak - valley
        else:
            import librosa

            contrast = librosa.power_to_db(peak) - librosa.power_to_db(valley)
        n = min(chroma.shape[1], contrast.shape[1], tonnetz.shape[1])
        feats = np.concatenate([chroma[:, :n], contrast[:, :n], tonnetz[:, :n]]).T.astype(np.float32)
        t = self.frame_times(n)
        half = self.n_fft / 2 / self.sr
        return t - half, t + half, feats

    def _block_tunings(self, blocks, harmonic: _SampleFile | None = None) -> dict[str, float | None]:
        """The tunings one analysis of the whole signal would estimate (``tuning: null``), from the
        spectral-peak candidates of every block's core frames; the configured tuning otherwise.
        Each block's core samples of the harmonic signal go to ``harmonic`` (if given)."""
        import librosa

        c = self.cfg
        if c["tuning"] is not None:
            return {"chroma": None, "tonnetz": None}
        cqt = c["tonnetz_chroma"] == "cqt"
        found: dict[str, list] = {"chroma": [], "tonnetz": []}
        for y, s0, c0, c1 in blocks:
            D = librosa.stft(y, **self._stft_kw())
            S = np.abs(D)
            chroma_S = self._power(S)
            keep = _core(S.shape[1], s0, c0, c1, self.hop)
            found["chroma"].append(tuning_candidates(chroma_S[:, keep], self.sr))
            if cqt:
                yt = self._harmonic(y, D) if c["tonnetz_harmonic"] else y
                if harmonic is not None:
                    harmonic.write(c0, yt[c0 - s0 : None if c1 is None else c1 - s0])
                St = self._tuning_spectrogram(y, yt, S)
                hop = self.hop if St is S else TUNING_STFT["hop_length"]
                found["tonnetz"].append(tuning_candidates(St[:, _core(St.shape[1], s0, c0, c1, hop)], self.sr))
            elif c["tonnetz_harmonic"]:
                H, _ = librosa.decompose.hpss(D, margin=float(c["harmonic_margin"]))
                found["tonnetz"].append(tuning_candidates(self._power(np.abs(H))[:, keep], self.sr))
        bpo = int(c["cqt_bins_per_octave"]) if cqt else 12
        tunings = {}
        for name, bins in (("chroma", int(c["n_chroma"])), ("tonnetz", bpo)):
            pairs = found[name] or found["chroma"]  # no harmonic STFT chroma: the shared one's
            tunings[name] = tuning_from_candidates(
                np.concatenate([p for p, _ in pairs]), np.concatenate([m for _, m in pairs]), bins
            )
        return tunings

    def _block_features(
        self, y: np.ndarray, tunings: dict, harmonic: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Chroma, spectral-contrast peak and valley (linear) and tonnetz of one block, at the
        whole signal's tunings (``harmonic``: the block's harmonic signal, if already known)."""
        import librosa

        c = self.cfg
        D = librosa.stft(y, **self._stft_kw())
        S = np.abs(D)
        chroma_S = self._power(S)
        chroma = self._chroma_stft(chroma_S, int(c["n_chroma"]), tunings["chroma"])
        peak, valley = contrast_peak_valley(
            S, self.sr, self.n_fft, float(c["contrast_fmin"]), int(c["contrast_n_bands"]), float(c["contrast_quantile"])
        )
        if c["tonnetz_chroma"] == "cqt":
            tonnetz = self._tonnetz_cqt(y, D, S, tunings["tonnetz"], harmonic)
        else:
            tonnetz = self._tonnetz_stft(D, chroma_S, chroma, tunings["tonnetz"])
        return {"chroma": chroma, "peak": peak, "valley": valley, "tonnetz": tonnetz}


# librosa's piptrack STFT, which ``estimate_tuning`` (and so ``cqt(tuning=None)``) analyses.
TUNING_STFT = dict(n_fft=2048, hop_length=512, win_length=None, window="hann", center=True, pad_mode="constant")


class _SampleFile:
    """float32 samples in a scratch file, written and read by position (a file, not a memory map:
    pages read back are not held in the process's memory)."""

    def __init__(self, path: Path):
        self.file = open(path, "w+b")  # noqa: SIM115 (closed by close(), inside a TemporaryDirectory)

    def write(self, i0: int, samples: np.ndarray) -> None:
        self.file.seek(4 * i0)
        self.file.write(np.ascontiguousarray(samples, dtype=np.float32).tobytes())

    def read(self, i0: int, i1: int) -> np.ndarray:
        self.file.seek(4 * i0)
        return np.frombuffer(self.file.read(4 * (i1 - i0)), dtype=np.float32).copy()

    def close(self) -> None:
        self.file.close()


def _core(n_cols: int, s0: int, c0: int, c1: int | None, hop: int) -> slice:
    """The columns of a block read from sample ``s0`` whose anchors (``s0 + j * hop``) lie in its
    core ``c0..c1`` (``c1`` None: to the signal's end)."""
    j0 = -(-(c0 - s0) // hop)
    j1 = n_cols if c1 is None else min(n_cols, -(-(c1 - s0) // hop))
    return slice(j0, j1)


def contrast_peak_valley(
    S: np.ndarray, sr: int, n_fft: int, fmin: float, n_bands: int, quantile: float
) -> tuple[np.ndarray, np.ndarray]:
    """The per-frame peak and valley energies of ``librosa.feature.spectral_contrast(S=S, ...)``
    (librosa 0.11's band loop), before its dB conversion: that conversion clips at 80 dB below the
    loudest value of all frames, so block-wise analysis applies it once to the gathered frames."""
    import librosa

    freq = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    octa = np.zeros(n_bands + 2)
    octa[1:] = fmin * (2.0 ** np.arange(0, n_bands + 1))
    if np.any(octa[:-1] >= 0.5 * sr):
        raise librosa.util.exceptions.ParameterError("Frequency band exceeds Nyquist. Reduce either fmin or n_bands.")
    valley = np.zeros((n_bands + 1, S.shape[-1]))
    peak = np.zeros_like(valley)
    for k, (f_low, f_high) in enumerate(zip(octa[:-1], octa[1:])):
        band = np.logical_and(freq >= f_low, freq <= f_high)
        idx = np.flatnonzero(band)
        if k > 0:
            band[idx[0] - 1] = True
        if k == n_bands:
            band[idx[-1] + 1 :] = True
        sub = S[band, :]
        if k < n_bands:
            sub = sub[:-1, :]
        m = int(np.maximum(np.rint(quantile * np.sum(band)), 1))
        ordered = np.sort(sub, axis=0)
        valley[k] = np.mean(ordered[:m], axis=0)
        peak[k] = np.mean(ordered[-m:], axis=0)
    return peak, valley


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
    cfg = json.loads(cfg_key)
    if cfg["mode"] == "per_segment":
        frames, more = _per_segment(extractor, wav, wav_sr, duration, inside)
    else:
        frames, more = _whole_wav(extractor, wav, wav_sr, inside, cfg.get("block_seconds"))
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


class _BlockReader:
    """Samples ``i0..i1`` of a WAV at ``sr`` without decoding the rest of it (resampled from the
    file's rate when it differs, with a margin for the resampler). Its ``grid``: block starts
    that are multiples of it fall on a native sample, so a block's resampled samples line up
    with those of the whole file."""

    def __init__(self, path: str, sr: int):
        import math

        info = sf.info(path)
        self.path, self.sr, self.native = path, int(sr), int(info.samplerate)
        self.n_native = int(info.frames)
        self.grid = self.sr // math.gcd(self.sr, self.native)
        self.n_samples = self.n_native if self.native == self.sr else -(-self.n_native * self.sr // self.native)

    def read(self, i0: int, i1: int) -> np.ndarray:
        if self.native == self.sr:
            return _mono(sf.read(self.path, start=i0, stop=i1, dtype="float32", always_2d=False)[0])
        import librosa

        n0 = i0 * self.native // self.sr  # exact: i0 is on the grid
        n1 = min(self.n_native, -(-i1 * self.native // self.sr) + self.native // 4)
        y = _mono(sf.read(self.path, start=n0, stop=n1, dtype="float32", always_2d=False)[0])
        return librosa.resample(y, orig_sr=self.native, target_sr=self.sr, res_type="soxr_hq")[: i1 - i0]


def _mono(y: np.ndarray) -> np.ndarray:
    return y.mean(axis=1) if y.ndim > 1 else y


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


def _whole_wav(extractor, wav: str, wav_sr: int, segs: list[Segment], block_seconds: float | None = None):
    """``acoustic.mode: whole_wav``: the WAV analysed once, each segment's fully-inside frames.

    A WAV longer than ``block_seconds`` (``acoustic.block_seconds``) is analysed in blocks
    (:meth:`LibrosaExtractor.block_spans`: the same frames, bounded memory); openSMILE always
    analyses the whole WAV at once.
    """
    if not segs:
        return [], []
    try:
        reader = _BlockReader(wav, extractor.sr)
        if reader.n_samples == 0:
            return [], [(s.segment_id, "the video's WAV has no audio samples") for s in segs]
        block = None if block_seconds is None else int(float(block_seconds) * extractor.sr)
        if block is not None and reader.n_samples > block and hasattr(extractor, "block_spans"):
            lo, hi, feats = extractor.block_spans(reader.read, reader.n_samples, block, reader.grid)
        else:
            lo, hi, feats = extractor.spans(_read_audio(wav, wav_sr, 0.0, None, extractor.sr))
    except _data_errors() as err:  # a bad WAV fails its segments, not the shard
        return [], [(s.segment_id, f"{type(err).__name__}: {err}") for s in segs]
    frames, failures = [], []
    audio_end = reader.n_samples / extractor.sr
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


# Peak memory of one analysis per MB of WAV analysed at once (16-bit at the analysis rate, the
# paper's settings), and per MB of WAV beyond one block (the per-frame results and tuning
# candidates that block-wise analysis keeps): docs/BENCHMARKS.md "Acoustic memory".
MB_PER_WAV_MB = 64
MB_PER_WAV_MB_BEYOND_BLOCK = 4
BASE_MB = 2000


def job_mem_mb(media_dir: str | os.PathLike, threads: int, cfg: dict) -> int:
    """The acoustic job's ``mem_mb``: :data:`BASE_MB` plus, for each of the ``threads`` largest
    WAVs of the shard (analysed at once by the pool), :data:`MB_PER_WAV_MB` per MB of it up to one
    block (``acoustic.block_seconds``, librosa whole-WAV mode) and
    :data:`MB_PER_WAV_MB_BEYOND_BLOCK` per MB beyond (one analysis of the whole WAV otherwise)."""
    cfg = complete(cfg, "acoustic")
    sizes = sorted((p.stat().st_size / 1e6 for p in (Path(media_dir) / "wav").glob("*/*.wav")), reverse=True)
    block_mb = float("inf")
    if cfg["backend"] == "librosa" and cfg["mode"] == "whole_wav":
        block_mb = float(cfg["block_seconds"]) * int(cfg["librosa"]["sr"]) * 2 / 1e6
    total = 0.0
    for size in sizes[: max(1, int(threads))]:
        total += MB_PER_WAV_MB * min(size, block_mb) + MB_PER_WAV_MB_BEYOND_BLOCK * max(0.0, size - block_mb)
    return int(BASE_MB + total)


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
