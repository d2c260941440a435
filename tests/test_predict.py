"""`polysent predict` on the tiny workflow run: a bundle of one of its runs, fed the run's own
valid/test videos as "new" videos, rebuilds their features exactly and reproduces the run's
predictions (from the library and the CLI; the workflow's target: test_predict_workflow.py); other feature
settings are refused before any compute. Media without a manifest: segments from pauses,
transcripts from a tiny local Whisper (sockets blocked) or, for a text-free model, none; a
text model without transcripts is refused; no speech / no face give rows with a reason."""

import json
import re
import subprocess

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from polysent.bundle import FeatureMismatch, load_bundle, make_bundle
from polysent.predict import PredictError, predict, predict_manifest
from test_asr import tiny_whisper

RUN = "results/runs/mult_t_fr_fr/seed1"
FEATURES = ("words", "text", "visual", "acoustic")


pytestmark = pytest.mark.usefixtures("restore_torch_state")


@pytest.fixture(scope="module")
def bundle_path(tiny_run, tmp_path_factory):
    return make_bundle(
        tiny_run / RUN, {"fr": tiny_run / "results/store/fr.parquet"}, tmp_path_factory.mktemp("predict") / "bundle"
    )


def new_videos(tiny_run, path, extra_rows=()):
    """The run's valid/test segments as a manifest of 'new' videos: no labels, split or shard."""
    man = pd.read_parquet(tiny_run / "results/corpus/manifest.parquet")
    man = man[(man["lang"] == "fr") & man["split"].isin(["valid", "test"])]
    man = man[["segment_id", "video_id", "lang", "start", "end", "transcript", "video_path", "audio_path"]]
    man = pd.concat([man, pd.DataFrame(list(extra_rows))], ignore_index=True)
    man.to_csv(path, index=False)
    return man


@pytest.fixture(scope="module")
def predicted(tiny_run, bundle_path, tmp_path_factory):
    """One `polysent predict` run (the CLI) over the run's valid/test videos plus a segment
    lying past the end of its video's audio."""
    from polysent.cli import main

    root = tmp_path_factory.mktemp("predict_run")
    man = pd.read_parquet(tiny_run / "results/corpus/manifest.parquet")
    vid = man[man["split"] == "test"].iloc[0]
    late = {
        "segment_id": f"{vid['video_id']}_late",
        "video_id": vid["video_id"],
        "lang": "fr",
        "start": 500.0,
        "end": 502.0,
        "transcript": "Bonjour.",
        "video_path": vid["video_path"],
        "audio_path": vid["audio_path"],
    }
    new_videos(tiny_run, root / "manifest.csv", [late])
    mp = pytest.MonkeyPatch()
    mp.chdir(tiny_run)  # the manifest's media paths are relative to the workflow folder
    try:
        rc = main(
            [
                "predict",
                "--bundle",
                str(bundle_path),
                "--manifest",
                str(root / "manifest.csv"),
                "--out",
                str(root / "pred.csv"),
                "--work",
                str(root / "work"),
            ]
        )
    finally:
        mp.undo()
    assert rc == 0
    return root, late["segment_id"]


def test_predict_rebuilds_the_features_and_reproduces_the_run(tiny_run, bundle_path, predicted):
    root, late = predicted
    rows = pd.read_csv(root / "pred.csv")
    bundle = load_bundle(bundle_path)
    ood_cols = [f"ood_{m}" for m in ("text", "visual", "acoustic") if m in bundle.modalities]
    assert list(rows.columns) == ["segment_id", "video_id", "start", "end", "prediction", *ood_cols, "reason"]
    # the run's own valid/test videos lie within its training range: no modality flagged
    assert ood_cols and not rows.loc[rows["prediction"].notna(), ood_cols].any().any()
    want = pd.read_parquet(tiny_run / RUN / "predictions.parquet")
    got = rows.set_index("segment_id").loc[want["segment_id"]]
    assert got["reason"].isna().all()
    np.testing.assert_allclose(got["prediction"], want["y_pred"], rtol=0, atol=1e-5)  # CSV text, other batches
    # the rebuilt store holds the training store's features, bit for bit
    train = pq.read_table(tiny_run / "results/store/fr.parquet").to_pandas().set_index("segment_id")
    new = pq.read_table(root / "work/store/fr.parquet")
    assert sorted(new.column("segment_id").to_pylist()) == sorted(want["segment_id"])
    for row in new.to_pandas().to_dict("records"):
        for col in FEATURES:
            assert np.array_equal(
                np.stack(row[col]) if col != "words" else row[col],
                np.stack(train.loc[row["segment_id"], col]) if col != "words" else train.loc[row["segment_id"], col],
            ), (row["segment_id"], col)
    # in the run's batches (one per split) the bundle gives the run's numbers exactly
    ids = new.column("segment_id").to_pylist()
    for split in ("valid", "test"):
        part = want[want["split"] == split]
        table = new.take(pa.array([ids.index(s) for s in part["segment_id"]]))
        np.testing.assert_array_equal(
            bundle.predict_table(table).column("y_pred").to_numpy(), part["y_pred"].to_numpy()
        )
    meta = json.loads((root / "pred.csv.json").read_text())
    assert meta["model"] == "mult" and meta["allow_mismatch"] is False
    assert all(d["severity"] == "note" for d in meta["feature_differences"])


def test_a_segment_that_cannot_be_featurised_gets_a_reason(predicted):
    root, late = predicted
    rows = pd.read_csv(root / "pred.csv").set_index("segment_id")
    assert np.isnan(rows.loc[late, "prediction"])
    assert rows.loc[late, "reason"].startswith("media: ")


def test_other_feature_settings_are_refused_before_any_compute(tiny_run, bundle_path, tmp_path):
    new_videos(tiny_run, tmp_path / "m.csv")
    with pytest.raises(FeatureMismatch) as err:
        predict_manifest(
            bundle_path,
            tmp_path / "m.csv",
            tmp_path / "p.parquet",
            work=tmp_path / "work",
            overrides={"acoustic": {"librosa": {"n_fft": 1024}}, "visual": {"backend": "openface"}},
        )
    msg = str(err.value)
    assert "acoustic.params.n_fft: bundle 2048, new 1024" in msg
    assert 'visual.backend: bundle "landmarks", new "openface"' in msg
    assert not (tmp_path / "work" / "media").exists() and not (tmp_path / "p.parquet").exists()


def test_manifest_without_transcripts_or_segments_is_named(tiny_run, bundle_path, tmp_path):
    man = new_videos(tiny_run, tmp_path / "m.csv")
    man.loc[1, "transcript"] = ""
    man.to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(PredictError, match=rf"1 segment has no transcript \(e.g. \['{man.loc[1, 'segment_id']}'\]\)"):
        predict_manifest(bundle_path, tmp_path / "m.csv", tmp_path / "p.csv", work=tmp_path / "work", asr_cfg=NO_ASR)
    man.drop(columns=["start"]).to_csv(tmp_path / "m2.csv", index=False)
    with pytest.raises(PredictError, match=r"missing column\(s\) \['start'\]"):
        predict_manifest(bundle_path, tmp_path / "m2.csv", tmp_path / "p.csv", work=tmp_path / "work")


def test_emotion_bundle_to_parquet(tiny_run, tmp_path, monkeypatch):
    run = tiny_run / "results/runs/emotions_mctn_posweight_fr/seed1"
    bundle = make_bundle(run, {"fr": tiny_run / "results/store/fr.parquet"}, tmp_path / "bundle")
    new_videos(tiny_run, tmp_path / "m.csv")
    monkeypatch.chdir(tiny_run)
    rows = predict_manifest(bundle, tmp_path / "m.csv", tmp_path / "p.parquet", work=tmp_path / "work", progress=False)
    want = pd.read_parquet(run / "predictions.parquet")
    probs = [c for c in want.columns if c.startswith("prob_")]
    ood_cols = [c for c in rows.columns if c.startswith("ood_")]
    assert list(rows.columns) == ["segment_id", "video_id", "start", "end", *probs, *ood_cols, "reason"]
    stored = pd.read_parquet(tmp_path / "p.parquet").set_index("segment_id").loc[want["segment_id"]]
    np.testing.assert_allclose(stored[probs].to_numpy(), want[probs].to_numpy(), rtol=0, atol=1e-6)
    assert ood_cols and not stored[ood_cols].astype(bool).any().any()  # the run's own videos: in range
    meta = json.loads(pq.read_schema(tmp_path / "p.parquet").metadata[b"polysent"])
    assert meta["task"] == "emotion" and meta["model"] == "mctn"


# ------------------------------------------------------------------ media without a manifest


def synthetic_video(path, audio, seconds):
    """A black (face-less) 64x64 video with the lavfi ``audio`` source as its sound (None: no audio stream)."""
    video = ["-f", "lavfi", "-i", f"color=c=black:s=64x64:r=15:d={seconds}"]
    sound = ["-an"] if audio is None else ["-f", "lavfi", "-i", audio, "-t", str(seconds)]
    codecs = ["-c:v", "mpeg4"] + ([] if audio is None else ["-c:a", "aac", "-ar", "16000", "-ac", "1"])
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *video, *sound, *codecs, str(path)], check=True)
    return path


SILENCE = "anullsrc=r=16000:cl=mono"
BURSTS = "aevalsrc='0.3*sin(2*PI*220*t)*between(mod(t,1.5),0.2,1.1)':s=16000"  # 0.9 s tones every 1.5 s
# two loud 0.2 s syllables (0.5 s, 1.5 s) and a 1 s tone (2.5 s)
SYLLABLES = "aevalsrc='0.4*sin(2*PI*300*t)*(between(t,0.5,0.7)+between(t,1.5,1.7)+between(t,2.5,3.5))':s=16000"


def test_folder_of_videos_with_a_text_free_model(tiny_run, tmp_path):
    """Audio-only MulT: a demo test video segmented by pauses and pooled over pseudo-words, and a
    silent video that gets one row with the reason."""
    bundle = make_bundle(
        tiny_run / "results/runs/mult_a_fr_fr/seed1", {"fr": tiny_run / "results/store/fr.parquet"}, tmp_path / "bundle"
    )
    man = pd.read_parquet(tiny_run / "results/corpus/manifest.parquet")
    demo = man[(man["lang"] == "fr") & (man["split"] == "test")].iloc[0]
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "talk.mp4").write_bytes((tiny_run / demo["video_path"]).read_bytes())
    synthetic_video(folder / "quiet.mp4", SILENCE, 3)
    synthetic_video(folder / "mute.mp4", None, 2)
    synthetic_video(folder / "syll.mp4", SYLLABLES, 4)
    rows = predict(bundle, tmp_path / "p.csv", media=folder, work=tmp_path / "work", progress=False)
    # two loud 0.2 s syllables: rows with their times and the reason; the 1 s tone is predicted
    syll = rows[rows["video_id"] == "syll"]
    short = syll[syll["segment_id"].isna()]
    assert len(syll) == 3 and len(short) == 2 and short["prediction"].isna().all()
    np.testing.assert_allclose(short["start"], [0.5, 1.5], atol=0.03)
    assert short["reason"].str.startswith("segment: sound too short (0.").all()
    assert np.isfinite(syll.loc[syll["segment_id"].notna(), "prediction"]).all()
    quiet = rows[rows["video_id"] == "quiet"]
    assert len(quiet) == 1 and quiet["segment_id"].isna().all() and quiet["prediction"].isna().all()
    assert quiet["reason"].iloc[0].startswith("segment: no speech found")
    mute = rows[rows["video_id"] == "mute"]  # no audio stream at all
    assert (
        len(mute) == 1
        and mute["prediction"].isna().all()
        and mute["reason"].iloc[0].startswith("media: audio extraction failed: the file has no audio stream")
    )
    talk = rows[rows["video_id"] == "talk"]
    assert len(talk) >= 1 and talk["reason"].isna().all() and np.isfinite(talk["prediction"]).all()
    assert (talk["start"].diff().dropna() > 0).all() and (talk["end"] > talk["start"]).all()
    # the segments are the pauses' complement: each demo segment of the video overlaps a found one
    for seg in man[man["video_id"] == demo["video_id"]].itertuples():
        assert ((talk["start"] < seg.end) & (talk["end"] > seg.start)).any(), (seg.start, seg.end)
    words = pq.read_table(tmp_path / "work/store/fr.parquet").column("words").to_pylist()
    assert all(w and set(w) == {"_"} for w in words)  # pseudo-words, no transcript
    meta = json.loads((tmp_path / "p.csv.json").read_text())
    assert meta["transcripts"]["pseudo_words"] == len(talk) + 1 and meta["transcripts"]["asr"] == {"backend": "none"}
    assert meta["segmentation"]["top_db"] == 35.0 and meta["media"] == str(folder)
    listed = [(r["video_id"], r["reason"].split(" (")[0]) for r in meta["not_predicted"]]
    assert sum(v == "syll" and r == "segment: sound too short" for v, r in listed) == 2
    assert {v for v, _ in listed} == {"quiet", "mute", "syll"}


# Without speech recognition (the default, auto, transcribes with the packaged Whisper when installed).
NO_ASR = {"backend": "none"}


def test_text_model_without_transcripts_is_refused_naming_both_ways_out(tiny_run, bundle_path, tmp_path):
    video = synthetic_video(tmp_path / "v.mp4", BURSTS, 3)
    with pytest.raises(PredictError) as err:
        predict(bundle_path, tmp_path / "p.csv", media=video, work=tmp_path / "work", progress=False, asr_cfg=NO_ASR)
    msg = str(err.value)
    assert "reads text" in msg and "--manifest with a transcript column" in msg and "--asr backend=" in msg
    assert f"{video}: 1 video has no transcript" in msg  # videos counted as videos
    assert not (tmp_path / "work" / "speech").exists()  # refused before any compute
    man = new_videos(tiny_run, tmp_path / "m.csv").drop(columns=["transcript"])
    man.to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(PredictError, match="have no transcript"):
        predict(bundle_path, tmp_path / "p.csv", manifest=tmp_path / "m.csv", work=tmp_path / "work", asr_cfg=NO_ASR)


def test_cli_refusal_is_one_line_without_traceback(bundle_path, tmp_path, capsys):
    """The refusal above from the command line: one line on stderr, exit status 1."""
    from polysent.cli import main

    video = synthetic_video(tmp_path / "v.mp4", BURSTS, 2)
    argv = ["predict", "--bundle", str(bundle_path), "--media", str(video), "--out", str(tmp_path / "p.csv")]
    assert main([*argv, "--asr", "backend=none"]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"polysent predict: {video}: 1 video has no transcript"), lines
    assert not (tmp_path / "p.csv").exists()


def test_asr_transcribes_a_faceless_video_for_a_trimodal_model(tiny_run, tmp_path, offline):
    """AdaMML (text, audio, visual) on a black video of tone bursts: the tiny Whisper writes the
    transcripts, the segments are predicted from text and audio and say that no face was found."""
    run = tiny_run / "results/runs/adamml_dl2_fr_es/seed1"
    stores = {lang: tiny_run / f"results/store/{lang}.parquet" for lang in ("fr", "es")}
    bundle = make_bundle(run, stores, tmp_path / "bundle")
    video = synthetic_video(tmp_path / "tones.mp4", BURSTS, 4.5)
    model = tiny_whisper(tmp_path / "whisper")
    rows = predict(
        bundle,
        tmp_path / "p.parquet",
        media=video,
        lang="es",
        work=tmp_path / "work",
        asr_cfg={"backend": "whisper", "model": str(model), "max_new_tokens": 4},
        progress=False,
    )
    assert len(rows) == 3  # three tone bursts
    np.testing.assert_allclose(rows["start"], [0.1, 1.6, 3.1], atol=0.03)  # 0.2 s onsets - 0.1 s padding
    assert np.isfinite(rows["prediction"]).all()
    assert rows["reason"].str.contains("visual: no face detected").all()
    assert rows["reason"].str.endswith("(predicted from the other modalities)").all()
    transcripts = pd.read_parquet(tmp_path / "work/manifest.parquet")["transcript"]
    assert transcripts.str.len().gt(0).all() and all(set(t.replace(" ", "")) <= set("bonjur") for t in transcripts)
    meta = json.loads(pq.read_schema(tmp_path / "p.parquet").metadata[b"polysent"])
    assert meta["transcripts"]["transcribed"] == 3 and meta["transcripts"]["asr"]["backend"] == "whisper"


# ------------------------------------------------- what is not predicted, and out-of-distribution input


def _store(path, segments, dim=3):
    """A feature store-like table: ``segments`` = [(segment_id, split, (words, dim) acoustic array)]."""
    vec = pa.list_(pa.list_(pa.float32(), dim))
    table = pa.table(
        {
            "segment_id": [s for s, _, _ in segments],
            "lang": ["fr"] * len(segments),
            "split": [sp for _, sp, _ in segments],
            "acoustic": pa.array([x.astype(np.float32).tolist() for _, _, x in segments], vec),
        }
    )
    pq.write_table(table, path)
    return table


def test_ood_flags_out_of_range_segments_and_not_in_range_ones(tmp_path):
    from polysent import ood

    rng = np.random.default_rng(0)
    train = [(f"t{i}", "train", rng.normal([0, 5, -2], [1, 2, 0.5], (20, 3))) for i in range(50)]
    test = [
        ("in", "test", rng.normal([0, 5, -2], [1, 2, 0.5], (20, 3))),
        ("far", "test", rng.normal([0, 5, -2], [1, 2, 0.5], (20, 3)) + [0, 0, 4.5]),  # one feature 9 SDs off
        ("odd_word", "test", np.vstack([rng.normal([0, 5, -2], [1, 2, 0.5], (19, 3)), [[40, 5, -2]]])),
    ]
    _store(tmp_path / "s.parquet", train + test)
    ranges = ood.training_range([tmp_path / "s.parquet"], ["fr"])
    stats = ranges["modalities"]["acoustic"]
    np.testing.assert_allclose(stats["mean"], [0, 5, -2], atol=0.15)
    np.testing.assert_allclose(stats["sd"], [1, 2, 0.5], rtol=0.1)
    assert stats["words"] == 1000 and stats["share_beyond"] < 0.01  # the test rows are not training's
    flags = ood.segment_flags(_store(tmp_path / "n.parquet", test), ranges, ["acoustic"])
    assert flags["in"]["acoustic"]["ood"] is False and flags["in"]["acoustic"]["max_sd"] < ood.K_SD + 1
    assert flags["far"]["acoustic"]["ood"] is True and flags["far"]["acoustic"]["share"] > 0.25
    assert flags["odd_word"]["acoustic"]["ood"] is False  # one word in 60 values: not the segment
    assert flags["odd_word"]["acoustic"]["max_sd"] > 30
    assert ood.segment_flags(_store(tmp_path / "n2.parquet", test), None, ["acoustic"]) == {}


def _tones_wav(path, spans, seconds=4.0, sr=16000, noise_dbfs=-50.0):
    """Loud 300 Hz tones over ``spans`` (s) on a noise floor, as a 16 kHz WAV."""
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    y = np.random.default_rng(1).normal(0, 10 ** (noise_dbfs / 20), len(t))
    for s, e in spans:
        y += 0.4 * np.sin(2 * np.pi * 300 * t) * ((t >= s) & (t < e))
    sf.write(path, y.astype(np.float32), sr)
    return path


def test_short_sound_spans_are_listed_not_dropped(tmp_path):
    """Two loud 0.2 s syllables and one 1 s phrase: the phrase is a segment, the syllables are
    listed as too short with their times, each named (min_segment 0.25 s)."""
    from polysent.config import complete
    from polysent.predict import entry_settings
    from polysent.predict.segments import segment_media

    wav = _tones_wav(tmp_path / "talk.wav", [(0.5, 0.7), (1.5, 1.7), (2.5, 3.5)])
    frame, skipped = segment_media(
        [wav], "fr", tmp_path / "work", entry_settings()["segment"], complete({}, "media"), progress=False
    )
    assert len(frame) == 1 and frame["start"].iloc[0] < 2.5 < 3.5 < frame["end"].iloc[0]
    assert [(round(s["start"], 1), round(s["end"], 1)) for s in skipped] == [(0.5, 0.7), (1.5, 1.7)]
    for s in skipped:
        assert re.match(r"segment: sound too short \(0\.[12]\d s < segment\.min_segment 0\.25 s", s["reason"]), s


@pytest.mark.skipif(not __import__("polysent.asr").asr.installed(), reason="optional [asr] extra not installed")
def test_text_model_on_a_video_without_transcript_transcribes_offline(tiny_run, bundle_path, tmp_path, offline, capsys):
    """`polysent predict --bundle <text bundle> --media talk.mp4`: no manifest, no transcript, no
    network; the default ASR (auto) takes the packaged Whisper and every segment gets words."""
    from polysent.cli import main

    man = pd.read_parquet(tiny_run / "results/corpus/manifest.parquet")
    demo = man[(man["lang"] == "fr") & (man["split"] == "test")].iloc[0]
    video = tmp_path / "talk.mp4"
    video.write_bytes((tiny_run / demo["video_path"]).read_bytes())
    out = tmp_path / "p.csv"
    argv = ["predict", "--bundle", str(bundle_path), "--media", str(video), "--out", str(out), "--lang", "fr"]
    assert main([*argv, "--work", str(tmp_path / "work")]) == 0, capsys.readouterr().err
    rows = pd.read_csv(out)
    meta = json.loads((tmp_path / "p.csv.json").read_text())
    assert meta["transcripts"]["asr"]["backend"] == "faster_whisper"
    assert meta["transcripts"]["transcribed"] >= 1 and meta["transcripts"]["pseudo_words"] == 0
    assert rows["prediction"].notna().sum() >= 1
