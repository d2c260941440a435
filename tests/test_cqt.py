"""polysent.features.cqt equals librosa (the release it mirrors) and refuses another release."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from polysent.features import cqt

SR = 22050


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    """2 s of a gliding harmonic tone (80-400 Hz, slightly detuned) with noise: every octave has energy."""
    t = np.arange(2 * SR) / SR
    f0 = 80.0 * (5.0 ** (t / t[-1])) * 2 ** (0.17 / 12)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    y = sum(np.sin(k * phase) / k for k in range(1, 6)) + 0.01 * np.random.default_rng(0).standard_normal(len(t))
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


@pytest.mark.parametrize("hop,bpo,tuning", [(512, 36, 0.0), (512, 36, 0.13), (256, 12, -0.2)])
def test_constant_q_is_librosas(signal, hop, bpo, tuning):
    c1 = float(librosa.note_to_hz("C1"))
    ref = librosa.cqt(signal, sr=SR, hop_length=hop, n_bins=7 * bpo, bins_per_octave=bpo, tuning=tuning)
    got = cqt.ConstantQ(float(SR), hop, 7 * bpo, bpo, tuning, c1, "complex64")(signal)
    assert got.shape == ref.shape
    np.testing.assert_allclose(np.abs(got), np.abs(ref), rtol=1e-4, atol=1e-5)


def test_tuning_estimate_is_librosas(signal):
    for i0 in range(0, len(signal) - SR // 2, SR // 2):
        S = np.abs(librosa.stft(signal[i0 : i0 + SR // 2]))
        for spec, bpo in ((S, 36), (S**2, 12)):
            assert cqt.estimate_tuning(spec, SR, bpo) == librosa.estimate_tuning(S=spec, sr=SR, bins_per_octave=bpo)


def test_the_mirrored_librosa_is_the_pinned_one():
    cqt.check_librosa()  # the installed librosa
    assert librosa.__version__.startswith(cqt.LIBROSA_MIRRORED + ".")


def test_another_librosa_release_is_refused():
    cqt.check_librosa(cqt.LIBROSA_MIRRORED + ".9")
    with pytest.raises(RuntimeError, match=r"mirrors librosa 0\.11.*librosa 1\.0\.0 is installed"):
        cqt.check_librosa("1.0.0")


def test_bad_parameters_are_a_constant_q_error():
    with pytest.raises(cqt.ConstantQError, match="at least 2 bins"):
        cqt.ConstantQ(float(SR), 512, 1, 12, 0.0, 32.7, "complex64")
