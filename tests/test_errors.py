"""Expected failures only: stage handlers record data errors as QC and let bugs fail the job."""

from __future__ import annotations

import os

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


def _acoustic_shard(feature_corpus, media_dirs, tmp_path):
    shard = shard_of_video("vid_a")
    cwd = os.getcwd()
    os.chdir(feature_corpus)
    try:
        return acoustic.extract_shard(
            "results/corpus/manifest.parquet", media_dirs[shard], shard,
            tmp_path / "a.parquet", tmp_path / "qc.parquet", {"backend": "librosa"}, progress=False,
        )
    finally:
        os.chdir(cwd)


def _visual_shard(feature_corpus, tmp_path):
    shard = shard_of_video("vid_a")
    cwd = os.getcwd()
    os.chdir(feature_corpus)
    try:
        return visual.extract_shard(
            "results/corpus/manifest.parquet", shard, tmp_path / "v.parquet", tmp_path / "qc.parquet",
            {"backend": "landmarks"}, progress=False,
        )
    finally:
        os.chdir(cwd)


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
