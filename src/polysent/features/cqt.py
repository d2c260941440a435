"""Tuning estimate and constant-Q transform: librosa's results, without its repeated work.

:class:`ConstantQ` is ``librosa.cqt`` and :func:`estimate_tuning` is ``librosa.estimate_tuning``,
computed from librosa's own pieces (its filters, wavelet lengths, resampler) with the filter bank
built once per parameter set and the per-frame work restricted to what librosa keeps; both are
allclose to librosa (tests/test_cqt.py; speed in docs/BENCHMARKS.md). They follow librosa's
internal algorithm of the release in :data:`LIBROSA_MIRRORED`, so another librosa release is
refused (:func:`check_librosa`) until the tests have been rerun against it and the constant
updated.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


class ConstantQError(RuntimeError):
    """Constant-Q parameters that make no filter bank, or a signal too short for it."""


# The librosa release (major.minor) whose cqt / estimate_tuning / sparsify_rows this module mirrors.
LIBROSA_MIRRORED = "0.11"


def check_librosa(version: str | None = None) -> None:
    """Raise unless the installed librosa (or ``version``) is the release this module mirrors."""
    if version is None:
        import librosa

        version = librosa.__version__
    if ".".join(version.split(".")[:2]) != LIBROSA_MIRRORED:
        raise RuntimeError(
            f"polysent.features.cqt mirrors librosa {LIBROSA_MIRRORED}'s constant-Q and tuning code, "
            f"librosa {version} is installed: rerun tests/test_cqt.py against it and update "
            "LIBROSA_MIRRORED (or install the pinned librosa from constraints.txt)"
        )


def estimate_tuning(S: np.ndarray, sr: float, bins_per_octave: int) -> float:
    """``librosa.estimate_tuning(S=S, sr=sr, bins_per_octave=...)`` computed on the pitch band only.

    librosa's ``piptrack`` interpolates every bin of every frame and then keeps only local maxima
    between 150 and 4000 Hz; that was about half of the stage's time. The same arithmetic on
    those rows (plus one neighbour each side) gives the same tuning (tested against librosa).
    """
    return tuning_from_candidates(*tuning_candidates(S, sr), bins_per_octave)


def tuning_candidates(S: np.ndarray, sr: float) -> tuple[np.ndarray, np.ndarray]:
    """The (pitch Hz, magnitude) of every spectral peak that :func:`estimate_tuning` weighs.

    Each frame's peaks depend on that frame alone, so the candidates of consecutive blocks of
    frames, concatenated, are those of the whole spectrogram (block-wise analysis of a long WAV).
    """
    import librosa

    check_librosa(librosa.__version__)

    n_fft = 2 * (S.shape[-2] - 1)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    band = np.flatnonzero((150.0 <= freqs) & (freqs < min(4000.0, float(sr) / 2)))
    if len(band) == 0:
        return np.zeros(0, S.dtype), np.zeros(0, S.dtype)
    lo, hi = band[0], band[-1]  # lo >= 1 and hi < the Nyquist row: both neighbours exist
    x = S[lo - 1 : hi + 2]
    below, mid, above = x[:-2], x[1:-1], x[2:]
    ref = 0.1 * S.max(axis=-2)
    gated = x * (x > ref)
    peak = (gated[1:-1] > gated[:-2]) & (gated[1:-1] >= gated[2:])
    rows, cols = np.nonzero(peak)
    lo_v, mid_v, hi_v = below[rows, cols], mid[rows, cols], above[rows, cols]
    # librosa's parabolic-interpolation stencil (numba: float32 sums, float64 scalar arithmetic)
    a = (hi_v + lo_v).astype(np.float64) - 2 * mid_v.astype(np.float64)
    b = (hi_v - lo_v).astype(np.float64) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(b) >= np.abs(a), 0.0, -b / a).astype(S.dtype)
    avg = (hi_v - lo_v) / 2.0
    mags = mid_v + 0.5 * avg * shift
    pitch = ((rows + lo + shift) * float(sr) / n_fft).astype(S.dtype)
    keep = pitch > 0
    return pitch[keep], mags[keep]


def tuning_from_candidates(pitch: np.ndarray, mags: np.ndarray, bins_per_octave: int) -> float:
    """The tuning :func:`estimate_tuning` gives for these candidates (pitches of at least the
    median magnitude, librosa's ``pitch_tuning`` histogram)."""
    import librosa

    if len(pitch) == 0:
        return float(librosa.pitch_tuning(np.zeros(0), bins_per_octave=bins_per_octave))
    threshold = np.median(mags)
    return float(librosa.pitch_tuning(pitch[mags >= threshold], bins_per_octave=bins_per_octave))


def _relative_bandwidth(freqs: np.ndarray) -> np.ndarray:
    """librosa's relative bandwidth of each CQT bin (local octave resolution, reflected at the ends)."""
    logf = np.log2(freqs)
    bpo = np.empty_like(freqs)
    bpo[0] = 1 / (logf[1] - logf[0])
    bpo[-1] = 1 / (logf[-1] - logf[-2])
    bpo[1:-1] = 2 / (logf[2:] - logf[:-2])
    return (2.0 ** (2 / bpo) - 1) / (2.0 ** (2 / bpo) + 1)


def _sparsify_rows(x: np.ndarray, quantile: float, dtype):
    """``librosa.util.sparsify_rows`` without its row-by-row ``lil_matrix`` assignment: per row,
    drop the smallest magnitudes that sum to less than ``quantile`` of the row's total."""
    import scipy.sparse

    mags = np.abs(x)
    mag_sort = np.sort(mags, axis=1)
    cumulative = np.cumsum(mag_sort / np.sum(mags, axis=1, keepdims=True), axis=1)
    threshold = mag_sort[np.arange(len(x)), np.argmin(cumulative < quantile, axis=1)]
    rows, cols = np.nonzero(mags >= threshold[:, None])
    values = x[rows, cols].astype(dtype)
    return scipy.sparse.csr_matrix((values, (rows, cols)), shape=x.shape, dtype=dtype)


def _two_factors(x: int) -> int:
    n = 0
    while x > 0 and x % 2 == 0:
        x //= 2
        n += 1
    return n


class ConstantQ:
    """``librosa.cqt`` (librosa 0.11, gamma 0, hann, norm 1, sparsity 0.01, soxr_hq) whose filter
    bank is built once.

    librosa rebuilds the per-octave filter FFTs on every call (its joblib cache is off unless
    ``LIBROSA_CACHE_DIR`` is set before import); that is ~80 % of ``chroma_cqt`` on a 5 s
    segment. This class runs the same recursive-downsampling algorithm from librosa's own pieces
    (``filters.wavelet``, ``util.sparsify_rows``, ``stft``, ``resample``), keeps the bank, and is
    itself cached per parameter set by :func:`constant_q`. Results are allclose to
    ``librosa.cqt(y, sr=, hop_length=, n_bins=, bins_per_octave=, tuning=)`` (tested).
    """

    def __init__(
        self,
        sr: float,
        hop_length: int,
        n_bins: int,
        bins_per_octave: int,
        tuning: float,
        fmin: float,
        dtype,
    ):
        import librosa

        check_librosa(librosa.__version__)

        if n_bins < 2:
            raise ConstantQError("the constant-Q filter bank needs at least 2 bins")
        self.n_bins, self.dtype = n_bins, np.dtype(dtype)
        n_octaves = int(np.ceil(n_bins / bins_per_octave))
        n_filters = min(bins_per_octave, n_bins)
        freqs = librosa.interval_frequencies(
            n_bins=n_bins,
            fmin=fmin * 2.0 ** (tuning / bins_per_octave),
            intervals="equal",
            bins_per_octave=bins_per_octave,
            sort=True,
        )
        alpha = _relative_bandwidth(freqs)
        _, cutoff = librosa.filters.wavelet_lengths(freqs=freqs, sr=sr, window="hann", alpha=alpha)
        nyquist = sr / 2.0
        if cutoff > nyquist:
            raise ConstantQError(
                f"constant-Q top filter ({cutoff:.0f} Hz) exceeds the Nyquist frequency "
                f"({nyquist:.0f} Hz); lower cqt_bins_per_octave's octaves or raise sr"
            )
        # Early downsampling: as many halvings as the top filter and the hop allow.
        count = min(
            max(0, int(np.ceil(np.log2(nyquist / cutoff)) - 1) - 1),
            max(0, _two_factors(hop_length) - n_octaves + 1),
        )
        self.early = 2**count
        sr, hop = sr / self.early, hop_length // self.early
        lengths, _ = librosa.filters.wavelet_lengths(freqs=freqs, sr=sr, window="hann", alpha=alpha)
        self.scale = np.sqrt(lengths)[:, None]
        self.octaves = []  # (fft basis, n_fft, hop, halve the signal afterwards)
        my_sr, my_hop = sr, hop
        for i in range(n_octaves):
            sl = slice(-n_filters, None) if i == 0 else slice(-n_filters * (i + 1), -n_filters * i)
            basis = self._filter_fft(my_sr, freqs[sl], alpha[sl])
            basis[0] = basis[0] * np.sqrt(sr / my_sr)  # compensate the downsampling
            halve = my_hop % 2 == 0
            self.octaves.append((basis[0], basis[1], my_hop, halve))
            if halve:
                my_hop //= 2
                my_sr /= 2.0

    def _filter_fft(self, sr: float, freqs: np.ndarray, alpha: np.ndarray):
        import librosa

        basis, lengths = librosa.filters.wavelet(
            freqs=freqs, sr=sr, filter_scale=1, norm=1, pad_fft=True, window="hann", alpha=alpha
        )
        n_fft = basis.shape[1]
        basis *= lengths[:, None] / float(n_fft)
        fft_basis = np.fft.fft(basis, n=n_fft, axis=1)[:, : n_fft // 2 + 1]
        return [_sparsify_rows(fft_basis, 0.01, self.dtype), n_fft]

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """Complex CQT of ``y`` (shape ``n_bins x frames``), as ``librosa.cqt`` returns it."""
        import librosa

        if self.early > 1:
            if len(y) < self.early:
                raise ConstantQError(f"signal of {len(y)} samples too short for the constant-Q transform")
            y = librosa.resample(y, orig_sr=self.early, target_sr=1, res_type="soxr_hq", scale=True)
        responses = []
        for basis, n_fft, hop, halve in self.octaves:
            responses.append(basis.dot(_rect_stft(y, n_fft, hop, self.dtype)))
            if halve:
                y = librosa.resample(y, orig_sr=2, target_sr=1, res_type="soxr_hq", scale=True)
        n_cols = min(r.shape[-1] for r in responses)
        out = np.empty((self.n_bins, n_cols), dtype=self.dtype, order="F")
        end = self.n_bins
        for r in responses:  # top octave first, each filling the bins below the previous one
            n = r.shape[0]
            if end < n:
                out[:end] = r[-end:, :n_cols]
            else:
                out[end - n : end] = r[:, :n_cols]
            end -= n
        out /= self.scale
        return out


def _rect_stft(y: np.ndarray, n_fft: int, hop: int, dtype) -> np.ndarray:
    """``librosa.stft(y, n_fft, hop, window="ones", center=True, pad_mode="constant")`` as one
    FFT over a strided view of the zero-padded signal (librosa frames and FFTs it in blocks and
    multiplies by the all-ones window; half of the constant-Q time on a whole WAV)."""
    import scipy.fft

    padded = np.pad(y, n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    return scipy.fft.rfft(frames, axis=-1).astype(dtype, copy=False).T


# The ConstantQ of one parameter set (ConstantQ's arguments, dtype as a string), built once per
# process. ``tuning`` is part of the key: an estimated tuning (``acoustic.librosa.tuning: null``)
# is on a 0.01-bin grid, so videos (or segments) with the same estimate share one bank.
constant_q = lru_cache(maxsize=64)(ConstantQ)
