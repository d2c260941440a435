"""Acoustic stage: the paper's librosa recipe, openSMILE LLDs, shard stores, QC, CLI."""

from __future__ import annotations

import json
import os

import librosa
import numpy as np
import pyarrow.parquet as pq
import pytest

from polysent import contracts
from polysent.cli import main as cli_main
from polysent.features.acoustic import LibrosaExtractor, OpenSmileExtractor, extract_shard
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
    assert (
        len(ex.names) == 25
        and "Loudness_sma3" in ex.names
        and "F0semitoneFrom27.5Hz_sma3nz" in ex.names
    )
    assert f.shape == (len(t), 25) and f.dtype == np.float32
    np.testing.assert_allclose(np.diff(t), 0.01, atol=1e-9)


def _run_shard(corpus, shard, cfg, name):
    cwd = os.getcwd()
    os.chdir(corpus)
    try:
        return extract_shard(
            "results/corpus/manifest.parquet",
            f"results/media/{shard}",
            shard,
            f"out/{name}.parquet",
            f"out/{name}.qc.parquet",
            cfg,
            threads=1,
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
    b0 = df[df.segment_id == "vid_b_0"]
    assert len(b0) == 1 + int(2.0 * 22050) // 512 and b0.time.iloc[0] == 0.0
    prov = read_provenance(feature_corpus / f"out/ac{shard_b}.parquet")
    assert prov["backend"] == "librosa" and prov["params"]["tonnetz_harmonic"] is False
    assert prov["versions"]["librosa"] == librosa.__version__ and len(prov["feature_names"]) == 25

    # Every segment missing from the stores is in QC with a reason.
    seen, qc = set(), {}
    for shard in media_dirs:
        seen |= set(
            pq.read_table(feature_corpus / f"out/ac{shard}.parquet")
            .column("segment_id")
            .to_pylist()
        )
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
    assert (feature_corpus / "out/det1.parquet").read_bytes() == (
        feature_corpus / "out/det2.parquet"
    ).read_bytes()


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
    assert (
        json.loads(pq.read_schema(out).metadata[b"polysent"])["params"]["tonnetz_harmonic"] is False
    )


def test_small_overrun_within_media_tolerance_is_analysed_to_the_audio_end(
    tmp_path, feature_corpus
):
    """Media and acoustic agree: an end up to media.duration_tolerance past the audio is fine."""
    from polysent.media import build_shard
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
    build_shard(manifest, shard, tmp_path / "media", tmp_path / "qc_media.parquet", progress=False)
    assert pq.read_table(tmp_path / "qc_media.parquet").num_rows == 0
    cfg = {"backend": "librosa", "librosa": {"tonnetz_harmonic": False, "tonnetz_chroma": "stft"}}
    table = extract_shard(
        manifest,
        tmp_path / "media",
        shard,
        tmp_path / "f.parquet",
        tmp_path / "qc.parquet",
        cfg,
        progress=False,
    )
    assert pq.read_table(tmp_path / "qc.parquet").num_rows == 0
    assert table.column("time").to_numpy().max() <= 1.0 + 1e-9  # audio ends at 3.0 s
