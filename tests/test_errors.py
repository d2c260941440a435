"""Expected failures only: stage handlers record data errors as QC and let bugs fail the job."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from polysent.errors import BASE_DATA_ERRORS, data_errors
from polysent.features import acoustic, landmarks as lm, visual
from test_media import feature_corpus, media_dirs, shard_of_video  # noqa: F401 (fixtures)


def test_data_errors_exclude_programming_errors():
    errors = data_errors(visual.VideoError)
    for bug in (TypeError, KeyError, AttributeError, NameError, IndexError, AssertionError):
        assert not issubclass(bug, errors), bug
    for data in (ValueError, FileNotFoundError, EOFError, ZeroDivisionError, visual.VideoError):
        assert issubclass(data, errors), data
    assert data_errors(ValueError) == BASE_DATA_ERRORS  # no duplicates


def _run_shard(stage, feature_corpus, tmp_path, out: str, cfg: dict, **inputs):
    """``stage.run_shard`` on the shard of vid_a from the corpus folder (its manifest's paths are
    relative), frames to ``tmp_path/out``."""
    shard = shard_of_video("vid_a")
    cwd = os.getcwd()
    os.chdir(feature_corpus)
    try:
        return stage.run_shard(
            "results/corpus/manifest.parquet", shard, tmp_path / out, tmp_path / "qc.parquet", cfg, threads=1, **inputs
        )
    finally:
        os.chdir(cwd)


def _acoustic_shard(feature_corpus, media_dirs, tmp_path):
    media_dir = media_dirs[shard_of_video("vid_a")]
    return _run_shard(acoustic, feature_corpus, tmp_path, "a.parquet", {"backend": "librosa"}, media_dir=media_dir)


def _visual_shard(feature_corpus, tmp_path):
    return _run_shard(visual, feature_corpus, tmp_path, "v.parquet", {"backend": "landmarks"})


def test_acoustic_bug_fails_the_stage_and_bad_data_is_qc(feature_corpus, media_dirs, tmp_path, monkeypatch):
    def broken(self, y):
        raise TypeError("injected bug")

    monkeypatch.setattr(acoustic.LibrosaExtractor, "spans", broken)
    monkeypatch.setattr(acoustic.LibrosaExtractor, "__call__", broken)
    acoustic._cached_extractor.cache_clear()
    with pytest.raises(TypeError, match="injected bug"):
        _acoustic_shard(feature_corpus, media_dirs, tmp_path)
    assert not (tmp_path / "a.parquet").exists()  # no store that hides the bug

    def bad_data(self, y):
        raise ValueError("injected undecodable audio")

    monkeypatch.setattr(acoustic.LibrosaExtractor, "spans", bad_data)
    monkeypatch.setattr(acoustic.LibrosaExtractor, "__call__", bad_data)
    acoustic._cached_extractor.cache_clear()
    _acoustic_shard(feature_corpus, media_dirs, tmp_path)
    reasons = pq.read_table(tmp_path / "qc.parquet").column("reason").to_pylist()
    assert sum("ValueError: injected undecodable audio" in r for r in reasons) == 3  # every segment with audio
    acoustic._cached_extractor.cache_clear()


def test_visual_bug_fails_the_stage_and_bad_data_is_qc(feature_corpus, tmp_path, monkeypatch):
    def broken(self, gray):
        raise TypeError("injected bug")

    monkeypatch.setattr(lm.LandmarkTracker, "__call__", broken)
    with pytest.raises(TypeError, match="injected bug"):
        _visual_shard(feature_corpus, tmp_path)
    assert not (tmp_path / "v.parquet").exists()

    def bad_data(self, gray):
        raise ValueError("injected bad frame")

    monkeypatch.setattr(lm.LandmarkTracker, "__call__", bad_data)
    _visual_shard(feature_corpus, tmp_path)
    reasons = pq.read_table(tmp_path / "qc.parquet").column("reason").to_pylist()
    assert reasons and any("ValueError: injected bad frame" in r for r in reasons)


# --- the remaining handlers: download (yt-dlp, one fetch job), the aeneas child, segment's reader


class _FakeYoutubeDL:
    """Stands in for yt_dlp.YoutubeDL; ``download`` raises ``error`` (set per test)."""

    error: Exception = RuntimeError("unset")
    calls = 0

    def __init__(self, opts):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def download(self, urls):
        type(self).calls += 1
        raise type(self).error


def _youtube(tmp_path, monkeypatch, error):
    import yt_dlp

    from polysent.config import complete
    from polysent.corpus.download import fetch_youtube

    monkeypatch.setattr(_FakeYoutubeDL, "error", error)
    monkeypatch.setattr(_FakeYoutubeDL, "calls", 0)
    monkeypatch.setattr(yt_dlp, "YoutubeDL", _FakeYoutubeDL)
    settings = {
        **complete({}, "corpus", "moseas", "download"),
        "retries": 2,
        "backoff_base_s": 0.0,
        "backoff_max_s": 0.0,
    }
    return fetch_youtube("http://127.0.0.1:9/v.mp4", tmp_path / "v.mp4", {}, settings, sleep=lambda s: None)


def test_youtube_bug_fails_and_post_processing_error_is_retried(tmp_path, monkeypatch):
    from yt_dlp.utils import PostProcessingError

    from polysent.corpus.download import DownloadFailed

    with pytest.raises(TypeError, match="injected bug"):
        _youtube(tmp_path, monkeypatch, TypeError("injected bug"))
    assert _FakeYoutubeDL.calls == 1  # a bug is not retried either

    with pytest.raises(DownloadFailed, match="PostProcessingError: ffmpeg could not merge") as err:
        _youtube(tmp_path, monkeypatch, PostProcessingError("ffmpeg could not merge"))
    assert _FakeYoutubeDL.calls == 3 and not err.value.permanent  # 1 + retries


def test_fetch_job_bug_fails_the_run_and_disk_error_is_an_outcome(tmp_path, monkeypatch):
    from polysent.config import complete
    from polysent.corpus.download import Fetcher, Job

    settings = {**complete({}, "corpus", "moseas", "download"), "retries": 0, "concurrency": 2}
    src = tmp_path / "src.mp4"
    src.write_bytes(b"media bytes")
    (tmp_path / "blocker").write_text("a file where a folder should be")
    jobs = [
        Job("x", str(tmp_path / "blocker" / "x.mp4"), [{"kind": "local", "location": str(src)}]),
        Job("a", str(tmp_path / "a.mp4"), [{"kind": "local", "location": str(src)}]),
    ]
    out = Fetcher(settings).run(jobs)  # the blocker: FileExistsError, a data (disk) error
    assert not out[0].ok and "FileExistsError" in out[0].reason
    assert out[1].ok and (tmp_path / "a.mp4").read_bytes() == b"media bytes"

    def broken(self, job):
        raise TypeError("injected bug")

    monkeypatch.setattr(Fetcher, "_run_one", broken)
    with pytest.raises(TypeError, match="injected bug"):
        Fetcher(settings).run(jobs)


def _aeneas_segments(tmp_path):
    from polysent.align.base import Segment

    good = tmp_path / "good.wav"
    good.write_text("not a wav file, but this test never reads it")
    text_as_wav = tmp_path / "text.wav"
    text_as_wav.write_text("a text file named .wav")
    return [
        Segment("s_good", "v", "fr", ("bonjour",), good, 1.0),
        Segment("s_text", "v", "fr", ("bonjour",), text_as_wav, 1.0),
    ]


def test_aeneas_child_bug_fails_the_stage_and_unreadable_clip_is_qc(tmp_path, monkeypatch):
    from polysent.align import aeneas_backend
    from polysent.align.base import AlignError

    real = aeneas_backend.align_words_library

    def broken_on_good(wav, words, lang, cfg):  # runs in the forked child
        if Path(wav).name == "good.wav":
            raise TypeError("injected bug")
        return real(wav, words, lang, cfg)

    monkeypatch.setattr(aeneas_backend, "align_words_library", broken_on_good)
    cfg = {"engine": "library", "timeout": 60.0, "retries": 0}
    with pytest.raises(TypeError, match="injected bug") as err:
        aeneas_backend.align_segments(_aeneas_segments(tmp_path), cfg, threads=1)
    assert isinstance(err.value.__cause__, aeneas_backend.ChildTraceback)
    assert "broken_on_good" in str(err.value.__cause__)  # the child's traceback comes along

    def data_error_on_good(wav, words, lang, cfg):
        if Path(wav).name == "good.wav":
            raise ValueError("injected empty transcript")
        return real(wav, words, lang, cfg)

    monkeypatch.setattr(aeneas_backend, "align_words_library", data_error_on_good)
    res = aeneas_backend.align_segments(_aeneas_segments(tmp_path), cfg, threads=2)
    assert isinstance(res["s_good"], AlignError) and "ValueError: injected empty transcript" in str(res["s_good"])
    # The real reader on a text file: libsndfile's error, a QC record, not a crash.
    assert isinstance(res["s_text"], AlignError) and "LibsndfileError" in str(res["s_text"]), res["s_text"]


def test_segment_reader_bug_propagates_and_unreadable_file_is_a_segment_error(tmp_path, monkeypatch):
    import soundfile as sf

    from polysent import segment

    bad = tmp_path / "text.wav"
    bad.write_text("a text file named .wav")
    with pytest.raises(segment.SegmentError, match="text.wav: cannot read audio"):
        segment.read_mono(bad)

    def broken(*args, **kwargs):
        raise TypeError("injected bug")

    monkeypatch.setattr(sf, "read", broken)
    with pytest.raises(TypeError, match="injected bug"):
        segment.read_mono(bad)


# ------------------------------------------------------------ the polysent CLI: one line, no traceback


def _cli(argv, capsys):
    from polysent.cli import main

    rc = main(argv)
    err = capsys.readouterr().err
    return rc, [line for line in err.splitlines() if line.strip()]


def test_cli_refusals_are_one_line_naming_the_file(tmp_path, capsys):
    bad = tmp_path / "manifest.parquet"
    bad.write_text("segment_id,video_id\n")  # a text file named .parquet
    cases = [
        (["predict", "--bundle", str(tmp_path / "nobundle"), "--media", str(tmp_path), "--out", "p.csv"], "nobundle"),
        (["bundle", "--run", str(tmp_path), "--store", f"fr={bad}"], str(tmp_path)),
        (["validate-manifest", str(bad)], str(bad)),
    ]
    for argv, named in cases:
        rc, lines = _cli(argv, capsys)
        assert rc == 1, argv
        assert len(lines) == 1 and lines[0].startswith(f"polysent {argv[0]}: ") and named in lines[0], lines
        assert "Traceback" not in lines[0]


def test_cli_verbose_shows_the_traceback_before_or_after_the_subcommand(tmp_path, capsys, caplog):
    for argv in (["-v", "predict"], ["predict", "-v"]):
        caplog.clear()
        rc, lines = _cli([*argv, "--bundle", str(tmp_path / "nb"), "--media", str(tmp_path), "--out", "p.csv"], capsys)
        assert rc == 1 and "not a polysent bundle" in lines[-1]
        assert any(r.exc_info and "BundleError" in r.exc_info[0].__name__ for r in caplog.records), argv


def test_cli_bugs_keep_their_traceback(tmp_path, monkeypatch):
    from polysent import bundle
    from polysent.cli import main

    def broken(path):
        raise KeyError("a bug, not bad input")

    monkeypatch.setattr(bundle, "load_bundle", broken)
    monkeypatch.setattr("polysent.predict.run.load_bundle", broken)
    with pytest.raises(KeyError):
        main(["predict", "--bundle", str(tmp_path), "--media", str(tmp_path), "--out", str(tmp_path / "p.csv")])


def test_refusal_is_recognised_by_its_class_not_its_base():
    from polysent.bundle import FeatureMismatch
    from polysent.cli import is_refusal
    from polysent.config import ConfigError
    from polysent.predict import PredictError

    for err in (PredictError("x"), ConfigError("x"), FeatureMismatch([], "ref")):
        assert is_refusal(err), err
    for err in (ValueError("x"), KeyError("x"), TypeError("x")):
        assert not is_refusal(err), err
