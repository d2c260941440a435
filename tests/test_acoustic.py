"""Acoustic stage: the paper's librosa recipe, openSMILE LLDs, shard stores, QC, CLI."""

from __future__ import annotations

import json
import os

import librosa
import numpy as np
import pyarrow.parquet as pq
import pytest

from polysent import contracts, media
from polysent.cli import main as cli_main
from polysent.features import acoustic
from polysent.features.acoustic import LibrosaExtractor, OpenSmileExtractor
from polysent.io import read_provenance
from test_media import feature_corpus, media_dirs, shard_of_video, speech  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def voice(tmp_path_factory):
    path = speech(tmp_path_factory.mktemp("voice") / "v.wav", "Je suis très content de ce produit.")
    y, _ = librosa.load(path, sr=22050)
    return y[: 22050 * 2]


def test_default_is_the_papers_recipe(voice):
    """chroma_stft and spectral_contrast on |stft|, tonnetz(y=harmonic(y)), as in the paper's code."""
    t, f = LibrosaExtractor()(voice)
    stft = np.abs(librosa.stft(voice))
    chroma = librosa.feature.chroma_stft(S=stft, sr=22050)
    contrast = librosa.feature.spectral_contrast(S=stft, sr=22050)
    tonnetz = librosa.feature.tonnetz(y=librosa.effects.harmonic(voice), sr=22050)
    expected = np.concatenate([chroma, contrast, tonnetz]).T
    assert f.shape == expected.shape == (1 + len(voice) // 512, 25)
    np.testing.assert_allclose(f, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(t, np.arange(len(t)) * 512 / 22050)
    assert LibrosaExtractor().names == (
        [f"chroma_{i:02d}" for i in range(12)]
        + [f"contrast_{i}" for i in range(7)]
        + [f"tonnetz_{i}" for i in range(6)]
    )


def test_every_parameter_is_used(voice):
    base = LibrosaExtractor()(voice)[1]
    assert LibrosaExtractor({"hop_length": 256})(voice)[1].shape[0] == 1 + len(voice) // 256
    for change in (
        {"n_fft": 1024},
        {"tonnetz_harmonic": False},
        {"tonnetz_chroma": "stft"},
        {"contrast_fmin": 100.0},
        {"chroma_power": 2.0},
        {"tuning": 0.0},
        {"cqt_bins_per_octave": 12},
    ):
        other = LibrosaExtractor(change)(voice)[1]
        assert other.shape == base.shape and not np.allclose(other, base), change
    fast = LibrosaExtractor({"tonnetz_harmonic": False, "tonnetz_chroma": "stft"})(voice)[1]
    np.testing.assert_allclose(fast[:, :19], base[:, :19])  # chroma + contrast unaffected
    assert LibrosaExtractor({"contrast_n_bands": 4})(voice)[1].shape[1] == 12 + 5 + 6


def test_opensmile_egemaps_lld(voice):
    ex = OpenSmileExtractor()
    y16 = librosa.resample(voice, orig_sr=22050, target_sr=16000)
    t, f = ex(y16)
    assert len(ex.names) == 25 and "Loudness_sma3" in ex.names and "F0semitoneFrom27.5Hz_sma3nz" in ex.names
    assert f.shape == (len(t), 25) and f.dtype == np.float32
    np.testing.assert_allclose(np.diff(t), 0.01, atol=1e-9)


def _run_shard(corpus, shard, cfg, name):
    cwd = os.getcwd()
    os.chdir(corpus)
    try:
        return acoustic.run_shard(
            "results/corpus/manifest.parquet",
            shard,
            f"out/{name}.parquet",
            f"out/{name}.qc.parquet",
            cfg,
            threads=1,
            media_dir=f"results/media/{shard}",
            progress=False,
        )
    finally:
        os.chdir(cwd)


def test_shard_store_contract_provenance_and_qc(feature_corpus, media_dirs):
    cfg = {"backend": "librosa", "librosa": {"tonnetz_harmonic": False}}
    for shard in media_dirs:
        _run_shard(feature_corpus, shard, cfg, f"ac{shard}")
    shard_b = shard_of_video("vid_b")
    table = contracts.read(feature_corpus / f"out/ac{shard_b}.parquet", contracts.FRAMES)
    assert [f.name for f in table.schema][:2] == ["segment_id", "time"]
    assert all(table.schema.field(n).type == "float" for n in table.schema.names[2:])
    assert len(table.schema.names) == 2 + 25
    df = table.to_pandas()
    # whole_wav (the default): only frames whose 2048-sample window lies inside 0.2..2.2 s.
    b0 = df[df.segment_id == "vid_b_0"]
    centres = np.arange(0, 4 * 22050, 512)
    inside = (centres - 1024 >= round(0.2 * 22050)) & (centres + 1024 <= round(2.2 * 22050))
    assert len(b0) == inside.sum()
    np.testing.assert_allclose(b0.time, centres[inside] / 22050 - 0.2, atol=1e-6)
    prov = read_provenance(feature_corpus / f"out/ac{shard_b}.parquet")
    assert prov["backend"] == "librosa" and prov["params"]["tonnetz_harmonic"] is False
    assert prov["mode"] == "whole_wav"
    assert prov["versions"]["librosa"] == librosa.__version__ and len(prov["feature_names"]) == 25

    # Every segment missing from the stores is in QC with a reason.
    seen, qc = set(), {}
    for shard in media_dirs:
        seen |= set(pq.read_table(feature_corpus / f"out/ac{shard}.parquet").column("segment_id").to_pylist())
        q = pq.read_table(feature_corpus / f"out/ac{shard}.qc.parquet").to_pylist()
        qc |= {r["segment_id"]: r["reason"] for r in q}
    assert seen == {"vid_a_0", "vid_a_1", "vid_b_0"}
    assert set(qc) == {"vid_b_1", "gone_0"}
    assert "after the audio" in qc["vid_b_1"] and "media stage" in qc["gone_0"]


def test_shard_bytes_are_deterministic(feature_corpus, media_dirs):
    shard = shard_of_video("vid_a")
    cfg = {"backend": "librosa", "librosa": {"tonnetz_harmonic": False, "tonnetz_chroma": "stft"}}
    _run_shard(feature_corpus, shard, cfg, "det1")
    _run_shard(feature_corpus, shard, cfg, "det2")
    assert (feature_corpus / "out/det1.parquet").read_bytes() == (feature_corpus / "out/det2.parquet").read_bytes()


def test_missing_rate_is_resampled_and_reported(feature_corpus, media_dirs):
    shard = shard_of_video("vid_a")
    _run_shard(feature_corpus, shard, {"backend": "opensmile", "opensmile": {"sr": 24000}}, "os24")
    prov = read_provenance(feature_corpus / "out/os24.parquet")
    assert prov["resampled_from"] == [22050] and prov["backend"] == "opensmile"
    table = contracts.read(feature_corpus / "out/os24.parquet", contracts.FRAMES)
    assert "Loudness_sma3" in table.schema.names and table.num_rows > 100


def test_cli_single_file(tmp_path, feature_corpus):
    out = tmp_path / "f.parquet"
    video = feature_corpus / "results/corpus/media/fr/vid_a.mp4"
    rc = cli_main(
        [
            "acoustic",
            str(video),
            str(out),
            "--start",
            "0.5",
            "--end",
            "1.5",
            "--set",
            "librosa.tonnetz_harmonic=false",
            "--segment-id",
            "seg",
        ]
    )
    assert rc == 0
    table = contracts.read(out, contracts.FRAMES)
    assert set(table.column("segment_id").to_pylist()) == {"seg"}
    assert table.num_rows == 1 + int(round(1.0 * 22050)) // 512
    assert json.loads(pq.read_schema(out).metadata[b"polysent"])["params"]["tonnetz_harmonic"] is False


def test_small_overrun_within_media_tolerance_is_analysed_to_the_audio_end(tmp_path, feature_corpus):
    """Media and acoustic agree: an end up to media.duration_tolerance past the audio is fine."""
    from test_media import write_manifest

    video = feature_corpus / "results/corpus/media/fr/vid_a.mp4"
    manifest = write_manifest(
        tmp_path / "m.parquet",
        [
            {
                "segment_id": "s",
                "video_id": "vid_a",
                "start": 2.0,
                "end": 3.08,
                "video_path": str(video),
            }
        ],
    )
    shard = shard_of_video("vid_a")
    media.run_shard(manifest, shard, tmp_path / "media", tmp_path / "qc_media.parquet", None, threads=1, progress=False)
    assert pq.read_table(tmp_path / "qc_media.parquet").num_rows == 0
    cfg = {"backend": "librosa", "librosa": {"tonnetz_harmonic": False, "tonnetz_chroma": "stft"}}
    table = acoustic.run_shard(
        manifest,
        shard,
        tmp_path / "f.parquet",
        tmp_path / "qc.parquet",
        cfg,
        threads=1,
        media_dir=tmp_path / "media",
        progress=False,
    )
    assert pq.read_table(tmp_path / "qc.parquet").num_rows == 0
    assert table.column("time").to_numpy().max() <= 1.0 + 1e-9  # audio ends at 3.0 s


# ---------------------------------------------------------------------------------------------
# Whole-WAV mode, its boundaries, the constant-Q filter cache and the tuning estimate

HOP, N_FFT, SR = 512, 2048, 22050
# The longest constant-Q filter (C1 at 36 bins/octave) is ~1.6 s: frames this far from a segment
# edge see the same samples whether the WAV or the segment alone is analysed.
CQT_MARGIN = 0.85


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory) -> tuple[str, float]:
    """A ~6 s 22 050 Hz PCM WAV of French speech, as the media stage writes them."""
    import soundfile as sf

    tmp = tmp_path_factory.mktemp("long")
    path = speech(
        tmp / "l.wav",
        "Bonjour à tous, aujourd'hui je vais vous parler de ce nouveau téléphone. Honnêtement, "
        "je suis très content de la qualité de l'écran, mais le prix est un peu élevé.",
    )
    y, _ = librosa.load(path, sr=SR)
    # A noise floor (-60 dB): spectral_contrast clips each frame at 80 dB below the loudest frame
    # of the analysed audio (librosa's power_to_db top_db), so in digital silence its values
    # depend on what else was analysed (segment or whole WAV); real recordings have a floor.
    y = y + 1e-3 * np.random.default_rng(0).standard_normal(len(y)).astype(np.float32)
    out = tmp / "long.wav"
    sf.write(out, y, SR, subtype="PCM_16")
    return str(out), len(y) / SR


def _frames(cfg: dict, wav: str, duration: float, segs: list, mode: str):
    from polysent.features.acoustic import _process_video

    key = json.dumps({"backend": "librosa", "mode": mode, "librosa": cfg}, sort_keys=True)
    frames, failures = _process_video(key, wav, SR, duration, segs)
    return {f.segment_id: f for f in frames}, dict(failures)


def _segment(seg_id: str, start: float, end: float):
    from polysent.features import Segment

    return Segment(seg_id, "v", start, end, "", "")


@pytest.mark.parametrize(
    "cfg, columns, margin",
    [
        # CQT tonnetz (the demo's setting) at a fixed tuning: every column, away from the edges.
        ({"tonnetz_harmonic": False, "tuning": 0.0}, slice(None), CQT_MARGIN),
        # chroma_stft + contrast are per STFT frame: equal as soon as the frame is inside.
        ({"tonnetz_harmonic": False, "tuning": 0.0}, slice(0, 19), N_FFT / 2 / SR),
        # The paper's HPSS setting (median filter over 31 frames, then CQT).
        ({"tonnetz_harmonic": True, "tuning": 0.0}, slice(None), CQT_MARGIN + 16 * HOP / SR),
    ],
)
def test_whole_wav_slices_equal_per_segment_well_inside(long_wav, cfg, columns, margin):
    """Tolerance: rtol 1e-4, atol 1e-4 (float32 features, values of order 1)."""
    wav, duration = long_wav
    # Starts on the hop grid, so both modes have frames at the same instants.
    segs = [_segment("a", 40 * HOP / SR, 4.0), _segment("b", 120 * HOP / SR, duration)]
    whole, qc_w = _frames(cfg, wav, duration, segs, "whole_wav")
    per, qc_p = _frames(cfg, wav, duration, segs, "per_segment")
    assert not qc_w and not qc_p
    compared = 0
    for s in segs:
        w, p = whole[s.segment_id], per[s.segment_id]
        length = min(s.end, duration) - s.start
        for t, row in zip(w.time, w.features):
            if margin <= t <= length - margin:
                k = int(round(t * SR / HOP))
                assert abs(p.time[k] - t) < 1e-6
                np.testing.assert_allclose(row[columns], p.features[k][columns], rtol=1e-4, atol=1e-4)
                compared += 1
    assert compared > 100
    # Near the edges the modes do differ (zero padding vs real neighbouring audio): the
    # comparison above is not vacuous.
    w, p = whole["b"], per["b"]
    k = int(round(w.time[0] * SR / HOP))
    assert not np.allclose(w.features[0], p.features[k], rtol=1e-4, atol=1e-4)


def test_whole_wav_boundaries(long_wav):
    """Frames fully inside the segment: file start, file end, a late end within tolerance,
    a segment shorter than one analysis frame, and one that holds no whole frame."""
    wav, duration = long_wav
    half = N_FFT / 2 / SR
    segs = [
        _segment("start", 0.0, 2.0),
        _segment("end", duration - 2.0, duration),
        _segment("late", duration - 1.0, duration + 0.05),  # within the media tolerance
        _segment("short", 3.0, 3.0 + 0.5 * N_FFT / SR),
        _segment("one", 2.0 * HOP / SR, 2.0 * HOP / SR + (N_FFT + HOP) / SR),
        _segment("no_frame", 3.01, 3.01 + 1.05 * N_FFT / SR),
    ]
    cfg = {"tonnetz_harmonic": False}
    frames, qc = _frames(cfg, wav, duration, segs, "whole_wav")
    # The file start: frame k is centred on k*hop, so the first whole window is frame 2 (1024).
    assert frames["start"].time[0] == pytest.approx(half)
    for seg_id in ("end", "late"):
        f, s = frames[seg_id], next(s for s in segs if s.segment_id == seg_id)
        assert f.time[-1] + half <= duration - s.start + 0.5 / SR
        assert f.time[-1] + half + HOP / SR > duration - s.start  # the last whole frame is kept
    assert len(frames["one"].time) in (1, 2) and frames["one"].time[0] >= half - 1e-9
    assert "(46 ms of audio) is shorter than one analysis frame (93 ms" in qc["short"]
    # 98 ms: longer than a frame, but no 2048-sample window on the 512-sample grid fits in it.
    assert "(98 ms of audio) holds no whole analysis frame (93 ms" in qc["no_frame"]
    assert set(frames) | set(qc) == {s.segment_id for s in segs}
    # per_segment keeps its defined result: every frame of a short segment, centred from 0.
    per, qc_p = _frames(cfg, wav, duration, segs, "per_segment")
    assert not qc_p and per["short"].time[0] == 0.0


def test_constant_q_cache_is_librosa_and_keyed(voice):
    from polysent.features.acoustic import constant_q

    c1 = float(librosa.note_to_hz("C1"))
    for sr, hop, bpo, tuning in (
        (22050, 512, 36, 0.0),
        (22050, 512, 36, 0.13),
        (22050, 256, 12, -0.2),
    ):
        ref = librosa.cqt(voice, sr=sr, hop_length=hop, n_bins=7 * bpo, bins_per_octave=bpo, tuning=tuning)
        got = constant_q(float(sr), hop, 7 * bpo, bpo, tuning, c1, "complex64")(voice)
        assert got.shape == ref.shape
        np.testing.assert_allclose(np.abs(got), np.abs(ref), rtol=1e-4, atol=1e-5)
    base = constant_q(22050.0, 512, 252, 36, 0.0, c1, "complex64")
    assert constant_q(22050.0, 512, 252, 36, 0.0, c1, "complex64") is base  # built once
    others = [
        constant_q(22050.0, 512, 252, 36, 0.01, c1, "complex64"),  # tuning
        constant_q(22050.0, 256, 252, 36, 0.0, c1, "complex64"),  # hop
        constant_q(22050.0, 512, 84, 12, 0.0, c1, "complex64"),  # resolution
        constant_q(16000.0, 512, 252, 36, 0.0, c1, "complex64"),  # sample rate
    ]
    ref = np.abs(base(voice))
    for other in others:
        assert other is not base
        got = np.abs(other(voice))
        assert got.shape != ref.shape or not np.allclose(got, ref, rtol=1e-3, atol=1e-3)


def test_tuning_estimate_equals_librosa(long_wav):
    import soundfile as sf

    from polysent.features.acoustic import estimate_tuning

    y, _ = sf.read(long_wav[0], dtype="float32")
    for i0 in range(0, len(y) - SR, SR):
        S = np.abs(librosa.stft(y[i0 : i0 + SR]))
        for spec, bpo in ((S, 36), (S**2, 12)):
            assert estimate_tuning(spec, SR, bpo) == librosa.estimate_tuning(S=spec, sr=SR, bins_per_octave=bpo)


def test_whole_wav_shard_bytes_deterministic_with_a_warm_cache(feature_corpus, media_dirs):
    from polysent.features.acoustic import _cached_extractor, constant_q

    shard = shard_of_video("vid_b")
    cfg = {"backend": "librosa", "mode": "whole_wav", "librosa": {"tonnetz_harmonic": False}}
    constant_q.cache_clear()
    _cached_extractor.cache_clear()
    _run_shard(feature_corpus, shard, cfg, "wdet1")  # builds the filter bank
    _run_shard(feature_corpus, shard, cfg, "wdet2")  # reuses it
    assert constant_q.cache_info().hits > 0
    assert (feature_corpus / "out/wdet1.parquet").read_bytes() == (feature_corpus / "out/wdet2.parquet").read_bytes()


# ---------------------------------------------------------------------------------------------
# Block-wise analysis of a long WAV (acoustic.block_seconds)


@pytest.mark.parametrize(
    "cfg",
    [
        {},  # the paper's settings: estimated tunings, HPSS, CQT tonnetz
        {"tonnetz_chroma": "stft"},  # tuning of the harmonic STFT chroma
        {"center": False, "tuning": 0.0, "tonnetz_harmonic": False},
    ],
)
def test_blocks_equal_one_analysis_of_the_whole_wav(long_wav, cfg):
    """One-second blocks of a ~8 s WAV give the frames of one analysis: same times, features
    allclose at atol 1e-5 (float32 values of order 1; measured max difference 6e-6)."""
    import soundfile as sf

    from polysent.features.acoustic import _BlockReader

    wav, _ = long_wav
    ex = LibrosaExtractor(cfg)
    y, _ = sf.read(wav, dtype="float32")
    lo, hi, whole = ex.spans(y)
    reader = _BlockReader(wav, SR)
    assert reader.n_samples == len(y)
    lo_b, hi_b, blocks = ex.block_spans(reader.read, reader.n_samples, SR, reader.grid)
    np.testing.assert_array_equal(lo_b, lo)
    np.testing.assert_array_equal(hi_b, hi)
    np.testing.assert_allclose(blocks, whole, rtol=0, atol=1e-5)


def test_blocks_of_a_resampled_wav(long_wav, tmp_path):
    """A WAV at another rate is resampled block by block, on the resampler's grid."""
    import soundfile as sf

    from polysent.features.acoustic import _BlockReader

    wav, _ = long_wav
    y16 = librosa.resample(sf.read(wav, dtype="float32")[0], orig_sr=SR, target_sr=16000)
    path = tmp_path / "16k.wav"
    sf.write(path, y16, 16000, subtype="FLOAT")
    ex = LibrosaExtractor({"tuning": 0.0})
    whole = ex.spans(librosa.resample(y16, orig_sr=16000, target_sr=SR, res_type="soxr_hq"))[2]
    reader = _BlockReader(str(path), SR)
    blocks = ex.block_spans(reader.read, reader.n_samples, SR, reader.grid)[2]
    np.testing.assert_allclose(blocks, whole, rtol=0, atol=1e-4)


def test_shard_in_blocks_equals_whole(long_wav):
    """Through the stage: block_seconds shorter than the WAV changes no segment's frames."""
    wav, duration = long_wav
    segs = [_segment("a", 0.0, 3.0), _segment("b", 2.5, duration)]
    whole, qc_w = _frames({}, wav, duration, segs, "whole_wav")
    key = json.dumps({"backend": "librosa", "mode": "whole_wav", "block_seconds": 1.5, "librosa": {}}, sort_keys=True)
    from polysent.features.acoustic import _process_video

    frames, failures = _process_video(key, wav, SR, duration, segs)
    assert not failures and not qc_w
    for f in frames:
        np.testing.assert_array_equal(f.time, whole[f.segment_id].time)
        np.testing.assert_allclose(f.features, whole[f.segment_id].features, rtol=0, atol=1e-5)


def test_job_memory_counts_a_long_wav_as_one_block(tmp_path):
    """mem_mb grows with the WAVs analysed at once up to one block each, then barely."""
    from polysent.features.acoustic import BASE_MB, MB_PER_WAV_MB, MB_PER_WAV_MB_BEYOND_BLOCK, job_mem_mb

    wav_dir = tmp_path / "wav" / "v"
    wav_dir.mkdir(parents=True)
    block_mb = 60 * SR * 2 / 1e6
    (wav_dir / "short.wav").write_bytes(b"\0" * 1_000_000)
    with open(wav_dir / "long.wav", "wb") as f:
        f.truncate(318_000_000)  # two hours at 22.05 kHz, 16 bit
    one = job_mem_mb(tmp_path, 1, {})
    assert one == int(BASE_MB + MB_PER_WAV_MB * block_mb + MB_PER_WAV_MB_BEYOND_BLOCK * (318 - block_mb))
    assert one < 4000
    both = job_mem_mb(tmp_path, 2, {})
    assert both == int(one + MB_PER_WAV_MB * 1.0)
    whole = job_mem_mb(tmp_path, 1, {"mode": "per_segment"})  # no blocks: the whole WAV counts
    assert whole == int(BASE_MB + MB_PER_WAV_MB * 318)
