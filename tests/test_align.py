"""align: tokenizer, MFA TextGrid parsing and wiring, aeneas accuracy on speech with known timings."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from polysent.align import AlignerUnavailable, Segment, align_shard, tokenize
from polysent.align import mfa
from polysent.align.textgrid import read_words
from polysent.contracts import WORDS, check
from polysent.media import ALIGN_RATE, wav_path

FIX = Path(__file__).parent / "fixtures" / "mfa"
SR = 16000


def test_tokenize_keeps_inner_apostrophes_and_drops_punctuation():
    assert tokenize("Aujourd'hui, je n’aime pas ça... Vraiment?") == [
        "Aujourd'hui", "je", "n'aime", "pas", "ça", "Vraiment"
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

    raw = subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "--stdout", word],
                         capture_output=True, check=True).stdout
    y, sr = sf.read(io.BytesIO(raw), dtype="float32")
    idx = np.flatnonzero(np.abs(y) > 0.01)
    y = y[idx[0] : idx[-1] + 1]
    return librosa.resample(y, orig_sr=sr, target_sr=SR)


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    """A 'video' WAV with two French segments built word by word: exact word timings known."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
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
        rows.append({"segment_id": f"v_{k}", "video_id": "v", "lang": "fr",
                     "transcript": s.capitalize() + ".", "start": seg_start, "end": t + 0.2})
        pad = np.zeros(int(0.6 * SR), np.float32)
        audio.append(pad)
        t += len(pad) / SR
    y = np.concatenate(audio) + rng.normal(0, 0.002, sum(map(len, audio))).astype(np.float32)
    media_wav = wav_path(d, "v", ALIGN_RATE)  # the media stage's layout
    media_wav.parent.mkdir(parents=True)
    _write_wav(media_wav, y)
    rows.append({"segment_id": "w_0", "video_id": "w", "lang": "fr", "transcript": "bonjour",
                 "start": 0.0, "end": 1.0})  # its video WAV is missing → QC
    rows.append({"segment_id": "v_9", "video_id": "v", "lang": "fr", "transcript": " ... ",
                 "start": 0.0, "end": 1.0})  # nothing to align → QC
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
    assert (np.diff(got["start"].to_numpy())[got["segment_id"].iloc[1:].to_numpy() == got["segment_id"].iloc[:-1].to_numpy()] >= 0).all()


def test_unknown_backend_is_an_error(spoken, tmp_path):
    media, manifest, _ = spoken
    with pytest.raises(ValueError, match="align.backend"):
        align_shard(manifest.iloc[:1], media, {"backend": "whisper"}, tmp_path)


def test_trim_to_speech_drops_the_pause_after_a_word(tmp_path):
    from polysent.align.aeneas_backend import trim_to_speech

    t = np.arange(int(2.0 * SR)) / SR
    y = np.where((t > 0.2) & (t < 0.8), 0.3 * np.sin(2 * np.pi * 220 * t), 0).astype(np.float32)
    y += np.random.default_rng(0).normal(0, 0.001, len(y)).astype(np.float32)
    _write_wav(tmp_path / "a.wav", y)
    (w, s, e), silent = trim_to_speech(tmp_path / "a.wav", [("la", 0.1, 1.5), ("x", 1.6, 1.9)])
    assert abs(s - 0.2) <= 0.011 and abs(e - 0.8) <= 0.011
    assert silent == ("x", 1.6, 1.9)  # no voiced frame: interval kept


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
