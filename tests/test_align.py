"""align: tokenizer, MFA TextGrid parsing and wiring, aeneas accuracy on speech with known timings."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from polysent.align import AlignerUnavailable, Segment, align_shard, mfa, tokenize
from polysent.align.textgrid import read_words
from polysent.contracts import WORDS, check
from polysent.media import ALIGN_RATE, wav_path

FIX = Path(__file__).parent / "fixtures" / "mfa"
SR = 16000


def test_tokenize_keeps_inner_apostrophes_and_drops_punctuation():
    assert tokenize("Aujourd'hui, je n’aime pas ça... Vraiment?") == [
        "Aujourd'hui",
        "je",
        "n'aime",
        "pas",
        "ça",
        "Vraiment",
    ]
    assert tokenize("  ") == []


def test_textgrid_words_tier_skips_silences():
    words = read_words(FIX / "demo_fr_000_0.TextGrid")
    assert [w for w, _, _ in words] == ["je", "suis", "très", "content", "aujourd'hui"]
    assert words[0][1:] == (0.12, 0.3)
    assert all(s < e for _, s, e in words)


def test_textgrid_multi_speaker_tiers_short_format():
    assert read_words(FIX / "two_speakers.TextGrid", "spk1") == [("hola", 0.2, 0.7), ("amigos", 0.7, 1.5)]
    assert read_words(FIX / "two_speakers.TextGrid", "spk2") == [("<unk>", 0.0, 0.9)]
    with pytest.raises(ValueError, match="no unique words tier"):
        read_words(FIX / "two_speakers.TextGrid")


def test_mfa_missing_gives_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AlignerUnavailable, match="conda-forge.*envs/mfa.yaml"):
        mfa.find_mfa()


def test_mfa_corpus_layout_command_and_output_collection(tmp_path):
    wav = tmp_path / "clip.wav"
    _write_wav(wav, np.zeros(SR, np.float32))
    segs = [
        Segment("demo_fr_000_0", "demo_fr_000", "fr", ("je", "suis"), wav, 1.0),
        Segment("demo_fr_000_1", "demo_fr_000", "fr", ("content",), wav, 1.0),
    ]
    corpus = tmp_path / "corpus"
    mfa.write_corpus(segs, corpus)
    assert (corpus / "demo_fr_000" / "demo_fr_000_0.lab").read_text().strip() == "je suis"
    assert (corpus / "demo_fr_000" / "demo_fr_000_1.wav").exists()
    cmd = mfa.align_command("mfa", corpus, "french_mfa", "french_mfa", tmp_path / "out", {"beam": 100}, 3)
    assert cmd[:6] == ["mfa", "align", str(corpus), "french_mfa", "french_mfa", str(tmp_path / "out")]
    assert cmd[cmd.index("--beam") + 1] == "100" and cmd[cmd.index("-j") + 1] == "3"
    # MFA mirrors the corpus: out/<speaker>/<utterance>.TextGrid; utterance 1 failed to align.
    (tmp_path / "out" / "demo_fr_000").mkdir(parents=True)
    shutil.copy(FIX / "demo_fr_000_0.TextGrid", tmp_path / "out" / "demo_fr_000" / "demo_fr_000_0.TextGrid")
    res = mfa.collect(segs, tmp_path / "out")
    assert res["demo_fr_000_0"][1] == ("suis", 0.3, 0.55)
    assert "no TextGrid" in str(res["demo_fr_000_1"])


# ------------------------------------------------------------------------ aeneas, real audio


def _write_wav(path, y, sr=SR):
    import soundfile as sf

    sf.write(path, y, sr, subtype="PCM_16")


def _espeak(word: str, voice: str, rate: int) -> np.ndarray:
    import librosa
    import soundfile as sf

    raw = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(rate), "--stdout", word], capture_output=True, check=True
    ).stdout
    y, sr = sf.read(io.BytesIO(raw), dtype="float32")
    idx = np.flatnonzero(np.abs(y) > 0.01)
    y = y[idx[0] : idx[-1] + 1]
    return librosa.resample(y, orig_sr=sr, target_sr=SR)


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    """A 'video' WAV with two French segments built word by word: exact word timings known."""
    assert shutil.which("espeak-ng"), "espeak-ng is not on PATH: run scripts/setup.sh (make setup)"
    d = tmp_path_factory.mktemp("spoken")
    rng = np.random.default_rng(0)
    sents = ["je suis vraiment très content de ce produit", "ce film est une catastrophe totale"]
    audio, truth, rows, t = [np.zeros(int(0.5 * SR), np.float32)], [], [], 0.5
    for k, s in enumerate(sents):
        seg_start = t - 0.2
        for i, w in enumerate(s.split()):
            y = _espeak(w, "fr+m3", 150)
            truth.append((f"v_{k}", i, w, t - seg_start, t + len(y) / SR - seg_start))
            audio.append(y)
            t += len(y) / SR
            gap = np.zeros(int(rng.uniform(0.0, 0.1) * SR), np.float32)
            audio.append(gap)
            t += len(gap) / SR
        rows.append(
            {
                "segment_id": f"v_{k}",
                "video_id": "v",
                "lang": "fr",
                "transcript": s.capitalize() + ".",
                "start": seg_start,
                "end": t + 0.2,
            }
        )
        pad = np.zeros(int(0.6 * SR), np.float32)
        audio.append(pad)
        t += len(pad) / SR
    y = np.concatenate(audio) + rng.normal(0, 0.002, sum(map(len, audio))).astype(np.float32)
    media_wav = wav_path(d, "v", ALIGN_RATE)  # the media stage's layout
    media_wav.parent.mkdir(parents=True)
    _write_wav(media_wav, y)
    rows.append(
        {"segment_id": "w_0", "video_id": "w", "lang": "fr", "transcript": "bonjour", "start": 0.0, "end": 1.0}
    )  # its video WAV is missing → QC
    rows.append(
        {"segment_id": "v_9", "video_id": "v", "lang": "fr", "transcript": " ... ", "start": 0.0, "end": 1.0}
    )  # nothing to align → QC
    truth = pd.DataFrame(truth, columns=["segment_id", "word_idx", "word", "start", "end"])
    return d, pd.DataFrame(rows), truth


def test_aeneas_aligns_real_speech_within_tolerance(spoken, tmp_path):
    media, manifest, truth = spoken
    table, qc = align_shard(manifest, media, {"backend": "aeneas"}, tmp_path, threads=2)
    check(table, WORDS, "test")
    got = table.to_pandas()
    assert set(got["segment_id"]) == {"v_0", "v_1"}
    reasons = {r["segment_id"]: r["reason"] for r in qc.records}
    assert "missing" in reasons["w_0"] and "empty transcript" in reasons["v_9"]
    j = got.merge(truth, on=["segment_id", "word_idx"], suffixes=("", "_true"))
    assert len(j) == len(truth) and (j["word"].str.lower() == j["word_true"]).all()
    starts = np.abs(j["start"] - j["start_true"])
    # A uniform spread of the words over the segment would miss by far more than this.
    assert np.median(starts) < 0.05, j[["word", "start", "start_true"]]
    assert (
        np.diff(got["start"].to_numpy())[
            got["segment_id"].iloc[1:].to_numpy() == got["segment_id"].iloc[:-1].to_numpy()
        ]
        >= 0
    ).all()


def test_unknown_backend_is_an_error(spoken, tmp_path):
    media, manifest, _ = spoken
    with pytest.raises(ValueError, match="align.backend"):
        align_shard(manifest.iloc[:1], media, {"backend": "whisper"}, tmp_path, threads=1)


def fit(wav, words, **cfg):
    from polysent.align.aeneas_backend import fit_to_speech
    from polysent.config import complete

    return fit_to_speech(wav, words, complete(cfg, "align", "aeneas"))


def test_fit_to_speech_drops_the_pause_after_a_word(tmp_path):
    t = np.arange(int(2.0 * SR)) / SR
    y = np.where((t > 0.2) & (t < 0.8), 0.3 * np.sin(2 * np.pi * 220 * t), 0).astype(np.float32)
    y += np.random.default_rng(0).normal(0, 0.001, len(y)).astype(np.float32)
    _write_wav(tmp_path / "a.wav", y)
    (w, s, e), silent = fit(tmp_path / "a.wav", [("la", 0.1, 1.5), ("x", 1.6, 1.9)])
    assert abs(s - 0.2) <= 0.011 and abs(e - 0.8) <= 0.011
    assert silent == ("x", 1.6, 1.9)  # no speech in its interval: kept


@pytest.fixture(scope="module")
def noisy_words(tmp_path_factory):
    """espeak-ng words with pauses of 0.12-0.45 s over brown noise at -50 dBFS (room noise)."""
    from noisy_speech import noisy_speech, write_wav

    assert shutil.which("espeak-ng"), "espeak-ng is not on PATH: run scripts/setup.sh (make setup)"
    words = ["bonjour", "madame", "je", "voudrais", "une", "baguette", "merci"]
    y, truth = noisy_speech(words, [0.3, 0.45, 0.12, 0.35, 0.2, 0.4], noise_dbfs=-50.0)
    return write_wav(tmp_path_factory.mktemp("noisy") / "clip.wav", y), truth


def test_fit_to_speech_moves_late_starts_onto_the_speech(noisy_words):
    """aeneas' contiguous words on real speech: each start late, each end at the next start.
    Fitting to the clip's own noise floor finds both edges; shrinking alone cannot fix a start."""
    wav, truth = noisy_words
    late = [s + 0.1 for _, s, _ in truth]
    contiguous = [(w, a, b) for (w, _, _), a, b in zip(truth, late, late[1:] + [truth[-1][2] + 0.3])]
    got = fit(wav, contiguous)
    start_err = np.array([abs(g[1] - t[1]) for g, t in zip(got, truth)])
    end_err = np.array([abs(g[2] - t[2]) for g, t in zip(got, truth)])
    assert np.median(start_err) <= 0.03 and np.median(end_err) <= 0.03, (got, truth)
    shrunk = fit(wav, contiguous, snap_to_speech=False)
    assert np.median([abs(g[1] - t[1]) for g, t in zip(shrunk, truth)]) >= 0.09  # starts stay late
    assert [w for w, _, _ in got] == [w for w, _, _ in truth]
    assert all(a[2] <= b[1] for a, b in zip(got, got[1:]))  # still in order, no overlap


def test_aeneas_on_noisy_speech_meets_the_boundary_target(noisy_words, tmp_path):
    """The whole aligner on speech over a -50 dBFS noise floor: median start and end error <= 50 ms."""
    from polysent.align.aeneas_backend import align_words

    wav, truth = noisy_words
    got = align_words(wav, [w for w, _, _ in truth], "fr")
    start_err = np.array([abs(g[1] - t[1]) for g, t in zip(got, truth)])
    end_err = np.array([abs(g[2] - t[2]) for g, t in zip(got, truth)])
    assert np.median(start_err) <= 0.05 and np.median(end_err) <= 0.05, (got, truth)


def test_mfa_backend_end_to_end_with_a_stand_in_executable(spoken, tmp_path, monkeypatch):
    """Wiring only: a test double named `mfa` on PATH checks the corpus it is given and writes
    TextGrids in MFA's layout (long format, `words` tier) — it leaves one utterance unaligned."""
    import sys

    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "argv.txt"
    (bindir / "mfa").write_text(f"""#!{sys.executable}
import sys, pathlib
from praatio import textgrid
from praatio.utilities.constants import Interval
a = sys.argv[1:]
pathlib.Path({str(log)!r}).write_text(" ".join(a))
assert a[0] == "align" and a[2] == "french_mfa" and a[3] == "french_mfa", a
corpus, out = pathlib.Path(a[1]), pathlib.Path(a[4])
for lab in sorted(corpus.glob("*/*.lab")):
    assert lab.with_suffix(".wav").exists()
    if lab.stem.endswith("_1"):
        continue  # MFA could not align this utterance
    words = lab.read_text().split()
    ivs = [Interval(0.1 + i * 0.3, 0.35 + i * 0.3, w.lower()) for i, w in enumerate(words)]
    tg = textgrid.Textgrid()
    tg.addTier(textgrid.IntervalTier("words", ivs, 0, 0.1 + 0.3 * len(words)))
    tg.addTier(textgrid.IntervalTier("phones", [], 0, 0.1 + 0.3 * len(words)))
    d = out / lab.parent.name
    d.mkdir(parents=True, exist_ok=True)
    tg.save(str(d / (lab.stem + ".TextGrid")), format="long_textgrid", includeBlankSpaces=True)
""")
    (bindir / "mfa").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{__import__('os').environ['PATH']}")
    media, manifest, _ = spoken
    cfg = {"backend": "mfa", "mfa": {"models": {"fr": {"dictionary": "french_mfa", "acoustic": "french_mfa"}}}}
    table, qc = align_shard(manifest, media, cfg, tmp_path / "work", threads=2)
    got = table.to_pandas()
    assert set(got["segment_id"]) == {"v_0"} and got["word"].iloc[0] == "je"
    reasons = {r["segment_id"]: r["reason"] for r in qc.records}
    assert "no TextGrid" in reasons["v_1"] and "--output_format long_textgrid" in log.read_text()


# ------------------------------------------- aeneas engines: library (forked, in memory) vs cli


@pytest.fixture(scope="module")
def demo_speech(tmp_path_factory):
    """Two French and two Spanish segments voiced the way the demo corpus voices them (its
    espeak-ng prosody, word gaps and background noise), on one 16 kHz 'video' WAV per language."""
    import soxr

    from polysent.corpus.demo import speech

    d = tmp_path_factory.mktemp("demo_speech")
    rng = np.random.default_rng(3)
    sents = {
        "fr": (
            speech.Prosody("fr+f3", 165, 55, 100),
            ["Aujourd'hui, je vais vous parler de ce film.", "Franchement, ce livre est vraiment excellent."],
        ),
        "es": (
            speech.Prosody("es+m3", 150, 40, 110),
            ["Hoy, voy a hablar de esta película.", "La verdad, este restaurante no es nada bueno."],
        ),
    }
    rows = []
    for lang, (prosody, texts) in sents.items():
        vid, sr = f"demo_{lang}_000", speech.SAMPLE_RATE
        pieces, t = [np.zeros(int(0.4 * sr), np.float32)], 0.4
        for k, text in enumerate(texts):
            start = t - 0.15
            for w in tokenize(text):
                x = speech.synth_word(w, prosody)
                gap = np.zeros(int(rng.uniform(0.02, 0.12) * sr), np.float32)
                pieces += [x, gap]
                t += (len(x) + len(gap)) / sr
            rows.append(
                {
                    "segment_id": f"{vid}_{k}",
                    "video_id": vid,
                    "lang": lang,
                    "transcript": text,
                    "start": start,
                    "end": t + 0.1,
                }
            )
            pieces.append(np.zeros(int(0.5 * sr), np.float32))
            t += 0.5
        track = speech.add_noise(np.concatenate(pieces), rng, 25.0)
        out = wav_path(d, vid, ALIGN_RATE)
        out.parent.mkdir(parents=True)
        _write_wav(out, soxr.resample(track, sr, ALIGN_RATE).astype(np.float32))
    return d, pd.DataFrame(rows)


def _aeneas(engine: str, **settings) -> dict:
    return {"backend": "aeneas", "aeneas": {"engine": engine, **settings}}


def test_library_engine_gives_the_cli_engines_words(demo_speech, tmp_path):
    """The in-memory path (no ffprobe/ffmpeg, soxr resampling of the synthetic wave) reproduces
    aeneas' own command line word for word on demo-voiced French and Spanish."""
    media, manifest = demo_speech
    cli, qc_cli = align_shard(manifest, media, _aeneas("cli"), tmp_path / "cli", threads=2)
    lib, qc_lib = align_shard(manifest, media, _aeneas("library"), tmp_path / "lib", threads=2)
    assert len(qc_cli) == len(qc_lib) == 0
    assert cli.num_rows == sum(len(tokenize(t)) for t in manifest["transcript"])
    assert lib.equals(cli), pd.concat([cli.to_pandas(), lib.to_pandas()], axis=1)


def test_library_engine_is_deterministic_whatever_the_worker_count(demo_speech, tmp_path):
    """espeak-ng keeps state between utterances; a fork per segment must make each segment's
    result independent of order and workers: same input -> byte-identical words Parquet."""
    from polysent.io import write_parquet

    media, manifest = demo_speech
    blobs = []
    for k, (threads, order) in enumerate([(1, manifest), (3, manifest.iloc[::-1]), (2, manifest)]):
        table, qc = align_shard(order, media, _aeneas("library"), tmp_path / f"w{k}", threads=threads)
        assert len(qc) == 0
        write_parquet(tmp_path / f"words{k}.parquet", table, provenance={"stage": "align"})
        blobs.append((tmp_path / f"words{k}.parquet").read_bytes())
    assert blobs[0] == blobs[1] == blobs[2]


def test_hung_crashed_and_failing_segments_become_qc_records(demo_speech, tmp_path, monkeypatch):
    """A segment whose child hangs is killed at the timeout and retried, one whose child dies is
    retried, one that raises is not; all three end in QC and the others are aligned as usual."""
    import os
    import time

    from polysent.align import aeneas_backend

    media, manifest = demo_speech
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    real = aeneas_backend.align_words_library

    def misbehaving(wav, words, lang, cfg):  # runs in the forked child
        stem = Path(wav).stem
        with open(attempts / stem, "a") as f:
            f.write("x")
        if stem == "demo_fr_000_1":
            time.sleep(120)
        if stem == "demo_es_000_0":
            os._exit(3)
        if stem == "demo_es_000_1":
            raise ValueError("no voice today")
        return real(wav, words, lang, cfg)

    monkeypatch.setattr(aeneas_backend, "align_words_library", misbehaving)
    t0 = time.monotonic()
    table, qc = align_shard(manifest, media, _aeneas("library", timeout=3.0, retries=1), tmp_path / "w", threads=2)
    assert time.monotonic() - t0 < 60
    assert set(table.column("segment_id").to_pylist()) == {"demo_fr_000_0"}
    reasons = {r["segment_id"]: r["reason"] for r in qc.records}
    assert "timed out after 3.0 s" in reasons["demo_fr_000_1"]
    assert "died (exit code 3)" in reasons["demo_es_000_0"]
    assert "ValueError: no voice today" in reasons["demo_es_000_1"]
    tries = {p.name: len(p.read_text()) for p in attempts.iterdir()}
    assert tries == {"demo_fr_000_0": 1, "demo_fr_000_1": 2, "demo_es_000_0": 2, "demo_es_000_1": 1}


def test_library_engine_converts_a_clip_that_is_not_16k_pcm16(spoken, tmp_path):
    """Clips are read directly only when they are what cut_segments writes; another rate goes
    through aeneas' own ffmpeg conversion and still aligns."""
    import soundfile as sf

    from polysent.align.aeneas_backend import align_words

    media, manifest, truth = spoken
    row = manifest.iloc[0]
    y, sr = sf.read(wav_path(media, "v", ALIGN_RATE), dtype="float32")
    clip = y[int(row.start * sr) : int(row.end * sr)]
    import librosa

    _write_wav(tmp_path / "c22.wav", librosa.resample(clip, orig_sr=sr, target_sr=22050), sr=22050)
    got = align_words(tmp_path / "c22.wav", tokenize(row.transcript), "fr")
    want = truth[truth["segment_id"] == row.segment_id]
    assert [w for w, _, _ in got] == tokenize(row.transcript)
    assert np.median(np.abs(np.array([s for _, s, _ in got]) - want["start"].to_numpy())) < 0.05


def test_unknown_language_is_a_qc_record_not_a_crash(spoken, tmp_path):
    media, manifest, _ = spoken
    man = manifest.iloc[:2].assign(lang=["fr", "xx"])
    table, qc = align_shard(man, media, {"backend": "aeneas"}, tmp_path, threads=1)
    assert set(table.column("segment_id").to_pylist()) == {"v_0"}
    assert "no aeneas/espeak-ng language for 'xx'" in {r["segment_id"]: r["reason"] for r in qc.records}["v_1"]
