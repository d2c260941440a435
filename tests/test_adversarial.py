"""Adversarial inputs that used to get through (issue 15): name collisions, drop accounting, split
leakage, paths outside the media roots. Each case asserts its verdict: a clear up-front error
naming the file/row/path/root, or a QC record with the reason, and that no good row was lost.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from polysent import contracts, media
from polysent.cli import main as cli
from polysent.corpus import folder
from polysent.corpus.checks import ManifestError
from polysent.media import wav_path
from test_moseas_support import tiny_videos  # noqa: F401 (fixture)

# --------------------------------------------------------------------------- helpers


def _tone(path: Path, seconds: float, freq: float, sr: int = 16000) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr, subtype="PCM_16")
    return path


def _media_shard(manifest: Path, tmp_path: Path, cfg: dict, qc: str = "qc.parquet"):
    """The media stage on the manifest's shard 0 into ``tmp_path/media``, QC to ``tmp_path/qc``."""
    return media.run_shard(manifest, 0, tmp_path / "media", tmp_path / qc, cfg, threads=1, progress=False)


def _media_manifest(path: Path, videos: dict[str, Path]) -> Path:
    """A built manifest (one shard) with one 0.5 s segment per video."""
    rows = [
        {
            "segment_id": f"{vid}_0",
            "video_id": vid,
            "lang": "fr",
            "split": "train",
            "start": 0.0,
            "end": 0.5,
            "transcript": "bonjour",
            "sentiment": np.float32(0.0),
            "video_path": str(src),
            "audio_path": "",
            "shard": np.int32(0),
        }
        for vid, src in videos.items()
    ]
    table = pa.Table.from_pylist(rows, schema=contracts.manifest_schema([]))
    pq.write_table(contracts.check(table, contracts.MANIFEST), path)
    return path


HEADER = ["segment_id", "video_id", "lang", "start", "end", "transcript", "sentiment"]


def _corpus(root: Path, rows: list[list], header=HEADER, videos=None) -> Path:
    """``root/m.csv`` plus ``root/media/<video_id>.mp4`` for ``videos`` (default: every video of the rows)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "media").mkdir(exist_ok=True)
    vids = videos if videos is not None else {r[header.index("video_id")] for r in rows}
    for vid in vids:
        (root / "media" / f"{vid}.mp4").write_bytes(f"video {vid}".encode())
    with open(root / "m.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return root / "m.csv"


def _cfg(path: Path, **kw) -> dict:
    # min_success_rate 0: these cases count what a drop records; the schema default (1.0) is its own case
    return {
        "manifest": str(path),
        "media_root": "media",
        "extensions": [".mp4"],
        "on_invalid": "fail",
        "min_success_rate": 0.0,
        **kw,
    }


def _build(tmp_path: Path, cfg: dict, languages=None):
    """Build the folder corpus; by default for those of fr, es that the manifest has rows of (a
    configured language without rows is its own case: test_language_without_usable_segments_stops)."""
    out = tmp_path / "res"
    if languages is None:
        manifest = Path(cfg["manifest"])
        rows = pd.read_parquet(manifest) if manifest.suffix == ".parquet" else pd.read_csv(manifest, dtype=str)
        present = set(rows["lang"].dropna().astype(str)) if "lang" in rows else set()
        languages = [lang for lang in ("fr", "es") if lang in present] or ["fr", "es"]
    table = folder.build(
        cfg,
        list(languages),
        1,
        2,
        out / "manifest.parquet",
        out / "qc.parquet",
        out / "media",
        out_downloads=out / "downloads.csv",
    )
    return table.to_pandas(), pd.read_parquet(out / "qc.parquet")


def _fails(tmp_path: Path, cfg: dict) -> list[str]:
    """The report lines of a build that must stop (and write nothing)."""
    with pytest.raises(ManifestError) as err:
        _build(tmp_path, cfg)
    assert not (tmp_path / "res/manifest.parquet").exists()
    return [line.strip() for line in str(err.value).splitlines()[1:]]


def _validate(path: Path, capsys, *args: str) -> tuple[int, str]:
    rc = cli(["validate-manifest", str(path), "--media-root", "media", *args])
    return rc, capsys.readouterr().out


def _row(seg, vid, lang="fr", start="0", end="1", text="bonjour", sentiment="0"):
    return [seg, vid, lang, start, end, text, sentiment]


GOOD = [_row("g1", "good1"), _row("g2", "good1", start="1", end="2"), _row("g3", "good2", "es", text="hola")]

# --------------------------------------------------------------------------- 0. names cannot collide


def test_video_id_ending_like_a_rate_keeps_its_own_wavs(tmp_path):
    # 'v.sr22050' once wrote its 16 kHz WAV over v's 22.05 kHz one.
    videos = {"v": _tone(tmp_path / "src/v.wav", 1.0, 220), "v.sr22050": _tone(tmp_path / "src/w.wav", 2.0, 660)}
    manifest = _media_manifest(tmp_path / "m.parquet", videos)
    index = _media_shard(manifest, tmp_path, {"sample_rates": [16000, 22050]}).to_pandas()
    assert len(index) == 4 and index.wav.nunique() == 4
    assert len(pd.read_parquet(tmp_path / "qc.parquet")) == 0
    for row in index.itertuples():
        assert row.wav == str(wav_path(tmp_path / "media", row.video_id, row.sample_rate))
        info = sf.info(row.wav)
        expected = 1.0 if row.video_id == "v" else 2.0
        assert info.samplerate == row.sample_rate and abs(info.duration - expected) < 0.01, row


def test_video_id_named_like_the_index_cannot_replace_it(tmp_path):
    videos = {"index.parquet": _tone(tmp_path / "src/a.wav", 1.0, 220), "b": _tone(tmp_path / "src/b.wav", 1.0, 330)}
    manifest = _media_manifest(tmp_path / "m.parquet", videos)
    _media_shard(manifest, tmp_path, {"sample_rates": [16000]})
    index = pq.read_table(tmp_path / "media/index.parquet").to_pandas()
    assert sorted(index.video_id) == ["b", "index.parquet"]
    assert sf.info(str(wav_path(tmp_path / "media", "index.parquet", 16000))).frames == 16000


def test_failed_video_cleans_up_only_its_own_files(tmp_path):
    # The old clean-up glob '{video_id}.*wav' of a failing video 'a' matched 'a.b.wav'.
    bad = tmp_path / "src/a.mp4"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a video at all")
    videos = {"a.b": _tone(tmp_path / "src/ab.wav", 1.0, 220), "a": bad}
    manifest = _media_manifest(tmp_path / "m.parquet", videos)
    index = _media_shard(manifest, tmp_path, {"sample_rates": [16000, 22050]}).to_pandas()
    assert sorted(set(index.video_id)) == ["a.b"]
    for rate in (16000, 22050):
        assert wav_path(tmp_path / "media", "a.b", rate).is_file()
    assert not wav_path(tmp_path / "media", "a", 16000).parent.exists()
    qc = pd.read_parquet(tmp_path / "qc.parquet")
    assert qc.segment_id.tolist() == ["a_0"] and "audio extraction failed" in qc.reason[0]
    assert "a.mp4" in qc.reason[0]


def test_duplicate_segment_ids_give_one_qc_record_per_dropped_row(tmp_path):
    rows = GOOD + [_row("dup", "v1"), _row("dup", "v1", start="1", end="2"), _row("dup", "v2", "es")]
    path = _corpus(tmp_path / "c", rows)
    kept, qc = _build(tmp_path, _cfg(path, on_invalid="drop"))
    assert sorted(kept.segment_id) == ["g1", "g2", "g3"]
    assert qc.segment_id.tolist() == ["dup", "dup", "dup"]
    assert sorted(qc.video_id) == ["v1", "v1", "v2"]
    assert all("duplicate segment_id 'dup' (first at " in r for r in qc.reason)
    assert len(rows) == len(kept) + len(qc)


def test_rows_in_equal_rows_kept_plus_qc_records_for_every_kind_of_drop(tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/x.mp4").write_bytes(b"video x")
    header = HEADER + ["split", "speaker", "video_path"]
    rows = [
        ["g1", "good1", "fr", "0", "1", "bonjour", "0", "train", "s_a", ""],
        ["g2", "good1", "fr", "1", "2", "salut", "1", "train", "s_a", ""],
        ["g3", "good2", "es", "0", "1", "hola", "0", "test", "s_b", ""],
        ["d1", "v1", "fr", "0", "1", "un", "0", "train", "", ""],
        ["d1", "v1", "fr", "1", "2", "deux", "0", "train", "", ""],  # duplicate id
        ["bad", "v2", "fr", "0", "1", "trois", "9", "train", "", ""],  # sentiment out of range
        ["m1", "nomedia", "fr", "0", "1", "quatre", "0", "train", "", ""],  # no file
        ["m2", "nomedia", "fr", "1", "2", "cinq", "0", "train", "", ""],
        ["l1", "leak", "fr", "0", "1", "six", "0", "train", "", ""],  # video in two splits
        ["l2", "leak", "fr", "1", "2", "sept", "0", "test", "", ""],
        ["sp1", "spk_v1", "es", "0", "1", "ocho", "0", "train", "s_c", ""],  # speaker in two splits
        ["sp2", "spk_v2", "es", "0", "1", "nueve", "0", "valid", "s_c", ""],
        ["o1", "outside", "fr", "0", "1", "diez", "0", "train", "", "../outside/x.mp4"],
    ]
    vids = {r[1] for r in rows} - {"nomedia"}
    path = _corpus(tmp_path / "c", rows, header, videos=vids)
    kept, qc = _build(tmp_path, _cfg(path, on_invalid="drop"))
    assert sorted(kept.segment_id) == ["g1", "g2", "g3"]
    assert len(rows) == len(kept) + len(qc)
    assert sorted(qc.segment_id) == sorted(r[0] for r in rows if r[0] not in ("g1", "g2", "g3"))
    reason = dict(zip(qc.segment_id, qc.reason))
    assert "outside [-3, 3]" in reason["bad"] and "media file not found" in reason["m2"]
    assert "in more than one split" in reason["l1"] and "speaker 's_c'" in reason["sp2"]
    assert "outside the media root" in reason["o1"]
    assert not (tmp_path / "res/media/fr/outside.mp4").exists()


# --------------------------------------------------------------------------- 1. split leakage


LEAK = GOOD + [_row("l1", "leak"), _row("l2", "leak", start="1", end="2"), _row("l3", "leak", start="2", end="3")]


def _with_split(rows, splits, extra=None):
    return [r + [s] + ([extra[i]] if extra else []) for i, (r, s) in enumerate(zip(rows, splits))]


def test_video_in_two_splits_is_named_by_validate_manifest(tmp_path, capsys):
    rows = _with_split(LEAK, ["train", "train", "test", "train", "test", "train"])
    path = _corpus(tmp_path, rows, HEADER + ["split"])
    rc, out = _validate(path, capsys)
    assert rc == 1
    assert out.splitlines()[1] == (
        f"  {path}:5: video 'leak' is in more than one split (train at {path}:5, {path}:7; test at "
        f"{path}:6); all segments of a video must share one split"
    )
    assert len(out.splitlines()) == 2  # the good videos are fine


def test_video_in_two_splits_stops_the_corpus_stage(tmp_path):
    rows = _with_split(LEAK, ["train", "train", "test", "valid", "test", "test"])
    lines = _fails(tmp_path, _cfg(_corpus(tmp_path / "c", rows, HEADER + ["split"])))
    assert len(lines) == 1 and lines[0].startswith(f"{tmp_path}/c/m.csv:5: video 'leak' is in more than one split")


def test_video_in_two_splits_is_dropped_whole_under_drop(tmp_path):
    rows = _with_split(LEAK, ["train", "train", "test", "valid", "test", "test"])
    kept, qc = _build(tmp_path, _cfg(_corpus(tmp_path / "c", rows, HEADER + ["split"]), on_invalid="drop"))
    assert sorted(kept.segment_id) == ["g1", "g2", "g3"]
    assert qc.segment_id.tolist() == ["l1", "l2", "l3"] and set(qc.video_id) == {"leak"}
    assert all("video 'leak' is in more than one split" in r for r in qc.reason)


def test_speaker_in_two_splits_is_a_problem_of_each_of_its_videos(tmp_path, capsys):
    rows = [
        _row("a1", "va"),
        _row("b1", "vb"),
        _row("b2", "vb", start="1", end="2"),
        _row("c1", "vc"),
        _row("d1", "vd", "es"),
    ]
    rows = _with_split(rows, ["train", "test", "test", "train", "train"], ["ana", "ana", "ana", "bob", ""])
    path = _corpus(tmp_path / "c", rows, HEADER + ["split", "speaker"])
    rc, out = _validate(path, capsys)
    assert rc == 1
    expected = (
        f"speaker 'ana' is in more than one split (videos train: 'va' ({path}:2); test: 'vb' "
        f"({path}:3)); all videos of a speaker must share one split"
    )
    assert out.splitlines()[1:] == [f"  {path}:2: {expected}", f"  {path}:3: {expected}"]
    kept, qc = _build(tmp_path, _cfg(path, on_invalid="drop"))
    assert sorted(kept.segment_id) == ["c1", "d1"]
    assert sorted(qc.segment_id) == ["a1", "b1", "b2"] and all("speaker 'ana'" in r for r in qc.reason)


def test_speaker_of_one_split_and_distinct_videos_pass(tmp_path, capsys):
    rows = _with_split(GOOD, ["train", "train", "test"], ["ana", "ana", "bob"])
    path = _corpus(tmp_path, rows, HEADER + ["split", "speaker"])
    rc, out = _validate(path, capsys)
    assert rc == 0 and out.strip().endswith("3 segment(s), 2 video(s), no problems")


def test_drawn_split_keeps_every_speaker_in_one_split(tmp_path):
    # 30 videos of 6 speakers, no split column: drawn by speaker, so no speaker straddles splits.
    rows = [_row(f"s{v}", f"v{v:02d}") + [f"spk{v % 6}"] for v in range(30)]
    path = _corpus(tmp_path / "c", rows, HEADER + ["speaker"])
    kept, qc = _build(tmp_path, _cfg(path))
    assert len(qc) == 0 and len(kept) == 30
    speakers = {r[1]: r[-1] for r in rows}
    per_speaker = kept.assign(speaker=kept.video_id.map(speakers)).groupby("speaker").split.nunique()
    assert (per_speaker == 1).all() and kept.split.nunique() >= 2


# --------------------------------------------------------------------------- 2. paths inside the roots


@pytest.fixture
def outside(tmp_path) -> Path:
    """A file outside the corpus folder, standing in for a system file."""
    d = tmp_path / "elsewhere"
    d.mkdir()
    (d / "secret.mp4").write_bytes(b"not yours")
    (d / "secret.txt").write_text("secret text", encoding="utf-8")
    return d


def _paths_corpus(tmp_path, column, value, vid="v3"):
    header = HEADER + [column]
    rows = [r + [""] for r in GOOD] + [_row("x1", vid) + [value]]
    return _corpus(tmp_path / "c", rows, header)


def _roots(tmp_path) -> str:
    return f"{tmp_path}/c/media, {tmp_path}/c"


@pytest.mark.parametrize("relative", [True, False], ids=["dotdot", "absolute"])
def test_video_path_outside_the_roots_is_refused_up_front(tmp_path, outside, capsys, relative):
    given = "../elsewhere/secret.mp4" if relative else str(outside / "secret.mp4")
    path = _paths_corpus(tmp_path, "video_path", given)
    expected = (
        f"{path}:5: video_path {given!r} resolves to {outside}/secret.mp4, outside the media root(s) "
        f"{_roots(tmp_path)} (move it inside, or set corpus.folder.allow_outside_root: true to allow "
        "paths outside)"
    )
    rc, out = _validate(path, capsys)
    assert rc == 1 and out.splitlines()[1:] == [f"  {expected}"]
    assert _fails(tmp_path, _cfg(path)) == [expected]
    assert not list((tmp_path / "res").rglob("*.mp4"))  # nothing linked


def test_media_symlink_pointing_outside_is_refused(tmp_path, outside, capsys):
    path = _corpus(tmp_path / "c", GOOD + [_row("x1", "v3")], videos={"good1", "good2"})
    os.symlink(outside / "secret.mp4", tmp_path / "c/media/v3.mp4")
    rc, out = _validate(path, capsys)
    assert rc == 1
    assert out.splitlines()[1] == (
        f"  {path}:5: media file '{tmp_path}/c/media/v3.mp4' resolves to {outside}/secret.mp4, outside the "
        f"media root(s) {_roots(tmp_path)} (move it inside, or set corpus.folder.allow_outside_root: true "
        "to allow paths outside)"
    )
    kept, qc = _build(tmp_path, _cfg(path, on_invalid="drop"))
    assert sorted(kept.segment_id) == ["g1", "g2", "g3"] and qc.segment_id.tolist() == ["x1"]
    assert "outside the media root" in qc.reason[0]
    assert not (tmp_path / "res/media/fr/v3.mp4").exists()


def test_media_symlink_inside_the_root_is_followed(tmp_path, capsys):
    path = _corpus(tmp_path / "c", GOOD + [_row("x1", "v3")])
    (tmp_path / "c/media/v3.mp4").unlink()
    os.symlink(tmp_path / "c/media/good1.mp4", tmp_path / "c/media/v3.mp4")
    assert _validate(path, capsys)[0] == 0
    kept, qc = _build(tmp_path, _cfg(path))
    assert len(qc) == 0 and (tmp_path / "res/media/fr/v3.mp4").read_bytes() == b"video good1"


def test_transcript_path_outside_is_refused_and_never_read(tmp_path, outside, capsys):
    header = [h if h != "transcript" else "transcript_path" for h in HEADER]
    (tmp_path / "c/tr").mkdir(parents=True)
    (tmp_path / "c/tr/ok.txt").write_text("bonjour", encoding="utf-8")
    rows = [_row("g1", "good1", text="tr/ok.txt"), _row("x1", "v3", text="../elsewhere/secret.txt")]
    path = _corpus(tmp_path / "c", rows, header)
    rc, out = _validate(path, capsys)
    assert rc == 1 and "secret text" not in out
    assert out.splitlines()[1:] == [
        f"  {path}:3: transcript_path '../elsewhere/secret.txt' resolves to {outside}/secret.txt, outside the "
        f"media root(s) {_roots(tmp_path)} (move it inside, or set corpus.folder.allow_outside_root: true to "
        "allow paths outside)",
        f"  {path}:3: transcript is empty",
    ]
    kept, qc = _build(tmp_path, _cfg(path, on_invalid="drop"))
    assert kept.transcript.tolist() == ["bonjour"] and qc.segment_id.tolist() == ["x1"]
    assert "secret text" not in " ".join(qc.reason)


def test_audio_path_outside_is_refused(tmp_path, outside, capsys):
    path = _paths_corpus(tmp_path, "audio_path", "../elsewhere/secret.mp4")
    rc, out = _validate(path, capsys)
    assert rc == 1 and out.splitlines()[1].startswith(
        f"  {path}:5: audio_path '../elsewhere/secret.mp4' resolves to {outside}/secret.mp4, outside"
    )


def test_audio_path_inside_is_linked_relative_to_the_manifest(tmp_path):
    path = _paths_corpus(tmp_path, "audio_path", "media/good1.mp4")
    kept, qc = _build(tmp_path, _cfg(path))
    assert len(qc) == 0
    m = kept.set_index("segment_id")
    assert m.loc["x1", "audio_path"] == str(tmp_path / "res/media/fr/audio/v3.mp4")
    assert m.loc["g1", "audio_path"] == ""
    assert Path(m.loc["x1", "audio_path"]).read_bytes() == b"video good1"


def test_outside_paths_allowed_by_the_switch_are_copied_not_hard_linked(tmp_path, outside, capsys):
    path = _paths_corpus(tmp_path, "video_path", "../elsewhere/secret.mp4")
    assert _validate(path, capsys, "--allow-outside-root")[0] == 0
    kept, qc = _build(tmp_path, _cfg(path, allow_outside_root=True))
    dest = Path(kept.set_index("segment_id").loc["x1", "video_path"])
    assert len(qc) == 0 and dest.read_bytes() == b"not yours"
    assert dest.stat().st_ino != (outside / "secret.mp4").stat().st_ino
    assert (outside / "secret.mp4").stat().st_nlink == 1


def test_media_inside_the_root_are_still_hard_linked(tmp_path):
    path = _corpus(tmp_path / "c", GOOD)
    kept, _ = _build(tmp_path, _cfg(path))
    dest = Path(kept.set_index("segment_id").loc["g1", "video_path"])
    assert dest.stat().st_ino == (tmp_path / "c/media/good1.mp4").stat().st_ino


def test_absolute_media_root_elsewhere_is_a_root(tmp_path, capsys):
    store = tmp_path / "disk2"
    store.mkdir()
    (store / "v3.mp4").write_bytes(b"video v3")
    path = _corpus(tmp_path / "c", [_row("x1", "v3")], videos=set())
    kept, qc = _build(tmp_path, _cfg(path, media_root=str(store)))
    assert len(qc) == 0 and Path(kept.video_path[0]).read_bytes() == b"video v3"
    assert cli(["validate-manifest", str(path), "--media-root", str(store)]) == 0


def test_relative_manifest_path_as_the_workflow_gives_it(tmp_path, monkeypatch, capsys):
    # The corpus rule passes 'data/<corpus>/m.csv' relative to the workflow root.
    (tmp_path / "outside.mp4").write_bytes(b"x")
    header = HEADER + ["video_path"]
    rows = [r + [""] for r in GOOD] + [_row("x1", "v3") + ["../../outside.mp4"]]
    _corpus(tmp_path / "data/c", rows, header, videos={"good1", "good2"})
    monkeypatch.chdir(tmp_path)
    cfg = _cfg(Path("data/c/m.csv"), on_invalid="drop")
    kept, qc = _build(Path("."), cfg)
    assert sorted(kept.segment_id) == ["g1", "g2", "g3"] and qc.segment_id.tolist() == ["x1"]
    assert kept.video_path.tolist() == ["res/media/fr/good1.mp4"] * 2 + ["res/media/es/good2.mp4"]
    assert f"resolves to {tmp_path}/outside.mp4, outside the media root(s) {tmp_path}/data/c/media" in qc.reason[0]
    rc, out = _validate(Path("data/c/m.csv"), capsys)
    assert rc == 1 and out.splitlines()[1].startswith("  data/c/m.csv:5: video_path '../../outside.mp4' resolves")


def test_transcript_symlink_inside_pointing_outside_is_refused(tmp_path, outside):
    header = [h if h != "transcript" else "transcript_path" for h in HEADER]
    (tmp_path / "c/tr").mkdir(parents=True)
    os.symlink(outside / "secret.txt", tmp_path / "c/tr/x.txt")
    path = _corpus(tmp_path / "c", [_row("g1", "good1", text="tr/x.txt")], header)
    lines = _fails(tmp_path, _cfg(path))
    assert lines[0].startswith(f"{path}:2: transcript_path 'tr/x.txt' resolves to {outside}/secret.txt, outside")


def test_media_symlink_loop_is_a_missing_file_not_a_crash(tmp_path, capsys):
    path = _corpus(tmp_path / "c", GOOD + [_row("x1", "v3")], videos={"good1", "good2"})
    os.symlink(tmp_path / "c/media/v3.mp4", tmp_path / "c/media/v3.mp4")
    rc, out = _validate(path, capsys)
    assert rc == 1 and out.splitlines()[1:] == [
        f"  {path}:5: media file not found: {tmp_path}/c/media/v3{{.mp4,.mkv,.webm,.avi,.mov}}"
    ]


def test_folder_source_does_not_import_the_validate_cli():
    # The checks live in corpus.checks: folder -> checks, validate -> folder + checks, no cycle.
    import subprocess
    import sys

    code = (
        "import sys, polysent.corpus.folder; assert 'polysent.corpus.validate' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_config_defaults_refuse_outside_paths_and_require_the_aligner_rate():
    from polysent.config import ConfigError, load_config

    repo = Path(__file__).resolve().parents[1]
    schemas = repo / "workflow/schemas"
    cfg = load_config(repo / "config/tiny.yaml", schemas)
    assert cfg["corpus"]["folder"]["allow_outside_root"] is False
    assert load_config(repo / "config/tiny.yaml", schemas, {"corpus": {"folder": {"columns": {"speaker": "spk"}}}})[
        "corpus"
    ]["folder"]["columns"]
    with pytest.raises(ConfigError, match="sample_rates"):
        load_config(repo / "config/tiny.yaml", schemas, {"media": {"sample_rates": [22050]}})


# --------------------------------------------------------------------------- 3. plausibility (align stage)

SPOKEN = "je suis vraiment très content de ce produit"


def _speech(text: str) -> np.ndarray:
    import io
    import subprocess

    import librosa

    raw = subprocess.run(["espeak-ng", "-v", "fr", "--stdout", text], capture_output=True, check=True).stdout
    y, sr = sf.read(io.BytesIO(raw), dtype="float32")
    return librosa.resample(y, orig_sr=sr, target_sr=16000)


@pytest.fixture(scope="module")
def plausibility_shard(tmp_path_factory):
    """One video WAV: speech, 3 s of digital silence, the same speech at -45 dBFS under noise."""
    from polysent.media import ALIGN_RATE

    root = tmp_path_factory.mktemp("plausible")
    y = _speech(SPOKEN)
    d = len(y) / ALIGN_RATE
    rng = np.random.default_rng(0)
    quiet = y / np.sqrt(np.mean(y**2)) * 10 ** (-45 / 20) + rng.normal(0, 1e-4, len(y)).astype(np.float32)
    audio = np.concatenate([y, np.zeros(3 * ALIGN_RATE, np.float32), quiet.astype(np.float32)])
    wav = wav_path(root, "v", ALIGN_RATE)
    wav.parent.mkdir(parents=True)
    sf.write(wav, audio, ALIGN_RATE, subtype="PCM_16")
    runaway = " ".join(["bonjour"] * 10_000)
    segs = {
        "good": (0.0, d, SPOKEN),
        "silence": (d + 0.2, d + 2.8, SPOKEN),
        "runaway": (0.0, d, runaway),
        "quiet": (d + 3.0, 2 * d + 3.0, SPOKEN),
    }
    manifest = pd.DataFrame(
        [
            {"segment_id": k, "video_id": "v", "lang": "fr", "start": a, "end": b, "transcript": t}
            for k, (a, b, t) in segs.items()
        ]
    )
    return root, manifest


def _align(shard, tmp_path, only=None, **plausibility):
    from polysent.align import align_shard

    root, manifest = shard
    manifest = manifest if only is None else manifest[manifest.segment_id.isin(only)]
    table, qc = align_shard(manifest, root, {"backend": "aeneas", "plausibility": plausibility}, tmp_path, threads=1)
    return table.to_pandas(), {r["segment_id"]: r["reason"] for r in qc.records}


def test_digital_silence_and_a_runaway_transcript_go_to_qc_with_their_numbers(plausibility_shard, tmp_path):
    words, qc = _align(plausibility_shard, tmp_path)
    assert sorted(qc) == ["runaway", "silence"]
    assert sorted(set(words.segment_id)) == ["good", "quiet"]  # no good segment lost
    assert qc["silence"].startswith("digital silence: RMS -inf dBFS over 2.60 s")
    assert "align.plausibility.min_loudness_dbfs = -60" in qc["silence"]
    wps = 10_000 / float(plausibility_shard[1].set_index("segment_id").at["runaway", "end"])
    assert qc["runaway"].startswith(f"implausible transcript: {wps:.1f} words per second (10000 words in ")
    assert "max_words_per_second = 8" in qc["runaway"]


def test_zero_length_words_catch_silence_when_the_loudness_check_is_off(plausibility_shard, tmp_path):
    words, qc = _align(plausibility_shard, tmp_path, ["good", "silence", "quiet"], min_loudness_dbfs=None)
    # The aligner squeezes the words of a silent clip into points (the issue: 8 of 9 at 0.00-0.00).
    reason = qc["silence"]
    assert reason.startswith("aeneas: implausible alignment: ") and "aligned to zero length" in reason, reason
    zero, total = (int(x) for x in reason.split(": ")[2].split(" words")[0].split(" of "))
    assert total == len(SPOKEN.split()) and zero / total > 0.5
    assert {"good", "quiet"} <= set(words.segment_id)


def test_loudness_bound_is_configurable(plausibility_shard, tmp_path):
    _, qc = _align(plausibility_shard, tmp_path, ["quiet"], min_loudness_dbfs=-40)
    assert qc["quiet"].startswith("near-silent audio: RMS -4") and "min_loudness_dbfs = -40" in qc["quiet"]
    level = float(qc["quiet"].split("RMS ")[1].split(" dBFS")[0])
    assert -46 < level < -44  # the -45 dBFS the fixture wrote


def test_aligned_words_fewer_than_transcript_words_is_a_qc_record(plausibility_shard, tmp_path, monkeypatch):
    from polysent.align import align_shard, mfa

    def drops_words(segments, cfg, workdir, threads):  # as MFA leaving out-of-dictionary words out
        out = {}
        for seg in segments:
            keep = 2 if seg.segment_id == "good" else len(seg.words)
            out[seg.segment_id] = [(w, 0.1 * i, 0.1 * i + 0.08) for i, w in enumerate(seg.words[:keep])]
        return out

    monkeypatch.setattr(mfa, "align_segments", drops_words)
    root, manifest = plausibility_shard
    table, qc = align_shard(
        manifest[manifest.segment_id.isin(["good", "quiet"])],
        root,
        {"backend": "mfa", "plausibility": {"max_missing_word_share": 0.5}},
        tmp_path,
        threads=1,
    )
    reasons = {r["segment_id"]: r["reason"] for r in qc.records}
    assert reasons == {
        "good": "mfa: implausible alignment: 2 of 8 transcript words aligned (75% missing; "
        "bound align.plausibility.max_missing_word_share = 0.5)"
    }
    assert set(table.column("segment_id").to_pylist()) == {"quiet"}


def test_plausibility_defaults_come_from_the_schema():
    from polysent.config import complete

    assert complete(None, "align", "plausibility") == {
        "max_words_per_second": 8,
        "min_loudness_dbfs": -60,
        "max_zero_length_share": 0.5,
        "max_missing_word_share": 0.2,
        "min_language_share": None,
        "language_candidates": ["de", "en", "es", "fr", "it", "pt"],
    }


GERMAN = "ich bin wirklich sehr zufrieden mit diesem produkt"  # SPOKEN in German, labelled fr


def _language_case(plausibility_shard, tmp_path, monkeypatch, **plausibility):
    """'good' (French) and 'swapped' (a German transcript under lang fr) on the same speech; the
    aligner (MFA's entry point, replaced) records which segments reach it."""
    from polysent.align import align_shard, mfa

    reached = []

    def aligns(segments, cfg, workdir, threads):
        reached.extend(seg.segment_id for seg in segments)
        return {seg.segment_id: [(w, 0.1 * i, 0.1 * i + 0.08) for i, w in enumerate(seg.words)] for seg in segments}

    monkeypatch.setattr(mfa, "align_segments", aligns)
    root, manifest = plausibility_shard
    good = manifest[manifest.segment_id == "good"]
    rows = pd.concat([good, good.assign(segment_id="swapped", transcript=GERMAN)], ignore_index=True)
    table, qc = align_shard(rows, root, {"backend": "mfa", "plausibility": plausibility}, tmp_path, threads=1)
    return set(table.column("segment_id").to_pylist()), {r["segment_id"]: r["reason"] for r in qc.records}, reached


def test_transcript_in_another_language_is_a_qc_record_when_the_check_is_on(plausibility_shard, tmp_path, monkeypatch):
    kept, qc, reached = _language_case(plausibility_shard, tmp_path, monkeypatch, min_language_share=0.5)
    assert kept == {"good"} and reached == ["good"]  # checked before aligning
    reason = qc["swapped"]
    assert reason.startswith("transcript looks like another language: ") and "guessed language 'de'" in reason
    share = float(reason.split(": ")[1].split("%")[0]) / 100
    assert share < 0.5 and "known to the 'fr' dictionary" in reason
    assert "align.plausibility.min_language_share = 0.5" in reason


def test_language_check_is_off_by_default(plausibility_shard, tmp_path, monkeypatch):
    kept, qc, reached = _language_case(plausibility_shard, tmp_path, monkeypatch)
    assert kept == {"good", "swapped"} and not qc


def test_language_check_guesses_among_close_languages_and_spares_unknown_words():
    from polysent.config import complete
    from polysent.langcheck import language_problem

    cfg = {**complete(None, "align", "plausibility"), "min_language_share": 0.5}
    assert language_problem("la película es muy buena".split(), "es", cfg) is None
    assert "guessed language 'pt'" in language_problem("o filme é muito bom".split(), "es", cfg)
    # Names and numbers no dictionary knows: no other language explains them better, no record.
    assert language_problem(["Xqzwv", "Brrtk", "1234"], "fr", cfg) is None
    assert language_problem([], "fr", cfg) is None


# --------------------------------------------------------------------------- 4. media probed up front


def _mp4(path: Path, wav: Path | None, seconds: float) -> Path:
    from polysent.corpus.demo.video import encode

    frames = (np.full((32, 32, 3), 90, np.uint8) for _ in range(int(seconds * 10)))
    encode(path, wav, frames, 32, 10, pad_audio_to=seconds if wav is not None else None)
    return path


PROBED = {  # video id -> what its file is; a segment of 0-1 s each (past_end: 0-4 s)
    "good": "2 s H.264/AAC",
    "eight_khz": "2 s video + 8 kHz mono audio_path",
    "truncated": "first third",
    "zero_byte": "empty",
    "text": "text named .mp4",
    "no_audio": "no audio stream",
    "past_end": "2 s, segment to 4 s",
}


@pytest.fixture(scope="module")
def probed_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("probe")
    media = root / "media"
    media.mkdir()
    tone = _tone(root / "tone.wav", 2.0, 220)
    good = _mp4(media / "good.mp4", tone, 2.0).read_bytes()
    (media / "past_end.mp4").write_bytes(good)
    (media / "eight_khz.mp4").write_bytes(good)
    _tone(media / "eight_khz.wav", 2.0, 220, sr=8000)
    (media / "truncated.mp4").write_bytes(good[: len(good) // 3])
    (media / "zero_byte.mp4").write_bytes(b"")
    (media / "text.mp4").write_text("this is not a video\n")
    _mp4(media / "no_audio.mp4", None, 2.0)
    header = [*HEADER, "audio_path"]
    rows = [
        [
            *_row(f"{vid}_0", vid, end="4" if vid == "past_end" else "1"),
            "media/eight_khz.wav" if vid == "eight_khz" else "",
        ]
        for vid in PROBED
    ]
    rows.append([*_row("good_1", "good", start="1", end="2"), ""])
    with open(root / "m.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *rows])
    return root


def _probe_lines(root: Path, capsys, *args) -> tuple[int, dict[str, str]]:
    rc = cli(["validate-manifest", str(root / "m.csv"), "--media-root", "media", "--probe", *args])
    out = capsys.readouterr().out.splitlines()
    by_video = {}
    for line in out[1:]:
        where, _, message = line.strip().partition(": ")
        by_video[Path(message.split(" ")[2]).stem] = (where, message)
    return rc, out, by_video


def test_validate_manifest_without_probe_does_not_open_media(probed_corpus, capsys):
    rc = cli(["validate-manifest", str(probed_corpus / "m.csv"), "--media-root", "media"])
    assert rc == 0 and "no problems" in capsys.readouterr().out


@pytest.mark.parametrize(
    "video, words",
    [
        ("truncated", ["truncated (video stream:", "packets readable"]),
        ("zero_byte", ["ffprobe cannot read", "the file is corrupt, truncated or not a media file"]),
        ("text", ["ffprobe cannot read", "the file is corrupt, truncated or not a media file"]),
        ("no_audio", ["no audio stream"]),
        ("past_end", ["segments end at 4.000 s but the audio lasts 2.0"]),
    ],
)
def test_probe_names_each_bad_media_file_by_row_and_path(probed_corpus, capsys, video, words):
    rc, out, by_video = _probe_lines(probed_corpus, capsys, "--probe-jobs", "3")
    assert rc == 1 and out[0].startswith("5 problem(s) in the manifest")
    assert sorted(by_video) == sorted(v for v in PROBED if v not in ("good", "eight_khz"))
    where, message = by_video[video]
    line = 2 + list(PROBED).index(video)  # header is line 1
    assert where == f"{probed_corpus / 'm.csv'}:{line}"
    assert message.startswith(f"probe: video_path {probed_corpus / 'media' / video}.mp4: ")
    assert all(w.lower() in message.lower() for w in words), message


def test_probe_of_a_clean_folder_and_its_tolerance(probed_corpus, tmp_path, capsys):
    manifest = probed_corpus / "m.csv"
    keep = [r for r in csv.reader(open(manifest, encoding="utf-8")) if r[1] in ("video_id", "good", "eight_khz")]
    clean = probed_corpus / "clean.csv"
    with open(clean, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(keep)
    rc = cli(["validate-manifest", str(clean), "--media-root", "media", "--probe"])
    assert rc == 0 and "3 segment(s), 2 video(s), no problems" in capsys.readouterr().out
    # past_end's segment ends 2 s after its audio: a 2.5 s tolerance lets it through
    rc, _, by_video = _probe_lines(probed_corpus, capsys, "--probe-tolerance", "2.5")
    assert rc == 1 and "past_end" not in by_video and "truncated" in by_video


def test_corpus_stage_probe_switch_drops_each_bad_video_with_its_qc_record(probed_corpus, tmp_path):
    cfg = _cfg(probed_corpus / "m.csv", on_invalid="drop", probe=True)
    table, qc = _build(tmp_path, cfg, languages=("fr",))
    assert sorted(table.segment_id) == ["eight_khz_0", "good_0", "good_1"]
    bad = [v for v in PROBED if v not in ("good", "eight_khz")]
    assert sorted(qc.segment_id) == sorted(f"{v}_0" for v in bad)  # one record per dropped row
    for vid, reason in zip(qc.video_id, qc.reason):
        assert f"probe: video_path {probed_corpus / 'media' / vid}.mp4: " in reason, reason
    report = pd.read_csv(tmp_path / "res/downloads.csv", keep_default_na=False).set_index("key")
    assert sorted(report.index[~report.ok]) == sorted(bad)  # the media report agrees
    assert report.loc["no_audio", "reason"].endswith("no audio stream") and report.loc["good", "reason"] == ""
    with pytest.raises(ManifestError, match="5 problem"):
        _build(tmp_path / "fail", _cfg(probed_corpus / "m.csv", probe=True), languages=("fr",))


def test_probe_is_off_by_default_in_the_corpus_stage():
    from polysent.config import load_config

    repo = Path(__file__).resolve().parents[1]
    cfg = load_config(repo / "config/tiny.yaml", repo / "workflow/schemas")["corpus"]["folder"]
    assert cfg["probe"] is False and cfg["probe_tolerance"] == 0.1 and cfg["probe_jobs"] >= 1


def test_media_stage_and_probe_share_one_ffprobe_reader(probed_corpus):
    from polysent import media, probe

    assert media.MediaError is probe.MediaError
    good = probed_corpus / "media/good.mp4"
    info = probe.probe(good)
    assert (
        media.probe_duration(good, ffprobe="ffprobe", timeout=120) == info.audio_duration
        and 1.9 < info.audio_duration < 2.2
    )
    with pytest.raises(media.MediaError, match="no audio stream"):
        media.probe_duration(probed_corpus / "media/no_audio.mp4", ffprobe="ffprobe", timeout=120)


# --------------------------------------------------------------------------- the tiny DAG


def test_tiny_dag_writes_only_below_results_logs_benchmarks(tiny_run):
    """Every file the run created in its workflow copy lies in results/, logs/, benchmarks/ or
    Snakemake's own .snakemake/; the media stage's WAVs are in per-video folders."""
    repo = Path(__file__).resolve().parents[1]
    allowed = ("results", "logs", "benchmarks", ".snakemake")
    stray = []
    for p in tiny_run.rglob("*"):
        rel = p.relative_to(tiny_run)
        if p.is_dir() or rel.parts[0] in allowed or "__pycache__" in rel.parts:
            continue
        if not (repo / rel).exists():
            stray.append(str(rel))
    assert stray == []
    for index_path in sorted((tiny_run / "results/media").glob("*/index.parquet")):
        index = pd.read_parquet(index_path)
        assert len(index) > 0
        for row in index.itertuples():
            assert row.wav == str(wav_path(index_path.parent.relative_to(tiny_run), row.video_id, row.sample_rate))
            assert (tiny_run / row.wav).is_file()
    qc = pd.concat([pd.read_parquet(p) for p in (tiny_run / "results/qc/align").glob("*.parquet")])
    assert not qc.reason.str.contains("no audio for video").any()


def test_language_without_usable_segments_stops(tmp_path):
    """languages: [fr, es] where every es row is invalid (or absent): a stop naming es at the corpus
    stage, with the dropped rows in QC, instead of an empty es store found 18 jobs later."""
    rows = [["f_0", "vf", "fr", "0", "1", "bonjour", "1"], ["e_0", "ve", "es", "1", "0", "hola", "1"]]
    cfg = _cfg(_corpus(tmp_path / "c", rows), on_invalid="drop")
    with pytest.raises(ManifestError) as err:
        _build(tmp_path, cfg, languages=("fr", "es"))
    assert "es: 0 usable segments" in str(err.value) and "fr:" not in str(err.value)
    # the evidence is written before the stop, where Snakemake does not delete a failed job's outputs
    assert f"see {tmp_path / 'res' / 'qc.rejected.parquet'} for dropped rows" in str(err.value)
    qc = pd.read_parquet(tmp_path / "res" / "qc.rejected.parquet")
    assert qc.segment_id.tolist() == ["e_0"]
    with pytest.raises(ManifestError, match="it: 0 usable segments"):
        _build(tmp_path, cfg, languages=("fr", "it"))


def test_moseas_language_without_usable_segments_stops(tmp_path, tiny_videos):
    """corpus.source: moseas with both es videos unavailable (404): the corpus stage stops naming
    es (not fr), with every dropped es segment in QC, instead of building an empty es store."""
    from polysent.corpus import moseas
    from test_moseas_support import LANG_DIR, FaultServer, moseas_config, write_fake_moseas

    url = "/cache/multilingual/{language}/data/{batch}/Videos/{video_id}{ext}"
    root = tmp_path / "moseas"
    truth = write_fake_moseas(root)
    language, batch = LANG_DIR["fr"]
    fr = {vid for vid, t in truth.items() if t["lang"] == "fr"}
    files = {
        f"/cache/multilingual/{language}/data/{batch}/Videos/{v}.mp4": b
        for v, b in tiny_videos.items()
        if any(s.startswith(v + "_") for s in fr)
    }
    out = tmp_path / "results"
    with FaultServer(files) as srv:  # the es videos: 404
        cfg = moseas_config(root, srv.base + url, min_success_rate=0.5)
        with pytest.raises(ManifestError) as err:
            moseas.build(
                cfg,
                ["fr", "es"],
                5,
                2,
                out / "corpus/manifest.parquet",
                out / "qc/corpus/all.parquet",
                out / "corpus/downloads.csv",
                out / "corpus/moseas_annotations.parquet",
                out / "corpus/media",
            )
    text = str(err.value)
    assert "es: 0 usable segments" in text and "qc/corpus/all.rejected.parquet" in text and "fr:" not in text
    assert not (out / "corpus/manifest.parquet").exists()
    qc = pd.read_parquet(out / "qc/corpus/all.rejected.parquet")
    es = {s for s, t in truth.items() if t["lang"] == "es"}
    assert set(qc.segment_id) == es and qc.reason.str.startswith("media unavailable (permanent)").all()


# --------------------------------------------------------------------------- environment errors are not data

ENV_ERRNOS = ["ENOSPC", "EROFS", "EIO", "EMFILE", "EDQUOT"]


def _fake_ffmpeg(tmp_path: Path, stderr: str) -> str:
    """An ffmpeg that dies as the real one does when its output disk fails."""
    tool = tmp_path / "bin" / "ffmpeg"
    tool.parent.mkdir(parents=True, exist_ok=True)
    tool.write_text(f"#!/bin/sh\necho '{stderr}' >&2\nexit 1\n")
    tool.chmod(0o755)
    return str(tool)


@pytest.mark.parametrize("name", ENV_ERRNOS)
def test_ffmpeg_dying_of_an_environment_error_fails_the_media_job(tmp_path, name):
    import errno as errno_mod

    from polysent.errors import EnvironmentFailure

    code = getattr(errno_mod, name)
    manifest = _media_manifest(tmp_path / "m.parquet", {"v": _tone(tmp_path / "src/v.wav", 1.0, 220)})
    ffmpeg = _fake_ffmpeg(tmp_path, f"[out#0/wav] Error writing trailer: {os.strerror(code)}")
    cfg = {"sample_rates": [16000], "ffmpeg": ffmpeg}
    with pytest.raises(EnvironmentFailure, match=os.strerror(code)) as info:
        _media_shard(manifest, tmp_path, cfg)
    assert info.value.errno == code and "\n" not in str(info.value)
    assert not (tmp_path / "qc.parquet").exists(), "an environment error must not become a QC record"


@pytest.mark.parametrize("name", ENV_ERRNOS)
def test_oserror_at_the_media_write_fails_the_job_and_a_rerun_loses_nothing(tmp_path, monkeypatch, name):
    import errno as errno_mod

    from polysent import media
    from polysent.errors import EnvironmentFailure

    code = getattr(errno_mod, name)
    videos = {f"v{i}": _tone(tmp_path / f"src/v{i}.wav", 1.0, 220 + 50 * i) for i in range(3)}
    manifest = _media_manifest(tmp_path / "m.parquet", videos)
    real = media.extract_wavs

    def full_disk(source, targets, *args, **kw):
        if Path(source).name == "v1.wav":
            raise OSError(code, os.strerror(code), str(next(iter(targets.values()))))
        return real(source, targets, *args, **kw)

    monkeypatch.setattr(media, "extract_wavs", full_disk)
    with pytest.raises(EnvironmentFailure):
        _media_shard(manifest, tmp_path, {"sample_rates": [16000]})
    assert not (tmp_path / "qc.parquet").exists()
    monkeypatch.setattr(media, "extract_wavs", real)  # space freed: the same call completes, nothing lost
    index = _media_shard(manifest, tmp_path, {"sample_rates": [16000]})
    assert sorted(index.column("video_id").to_pylist()) == ["v0", "v1", "v2"]
    assert len(pd.read_parquet(tmp_path / "qc.parquet")) == 0


@pytest.mark.parametrize("name", ENV_ERRNOS)
def test_oserror_while_reading_audio_fails_the_acoustic_job(tmp_path, monkeypatch, name):
    import errno as errno_mod

    from polysent.errors import EnvironmentFailure
    from polysent.features import acoustic

    code = getattr(errno_mod, name)
    manifest = _media_manifest(tmp_path / "m.parquet", {"v": _tone(tmp_path / "src/v.wav", 1.0, 220)})
    _media_shard(manifest, tmp_path, {"sample_rates": [16000, 22050]}, qc="mqc.parquet")

    def failing(*args, **kw):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(acoustic, "_read_audio", failing)
    media_dir = tmp_path / "media"
    with pytest.raises(EnvironmentFailure):
        acoustic.run_shard(
            manifest, 0, tmp_path / "a.parquet", tmp_path / "aqc.parquet", None, threads=1, media_dir=media_dir
        )
    assert not (tmp_path / "aqc.parquet").exists() and not (tmp_path / "a.parquet").exists()


@pytest.mark.parametrize("name", ENV_ERRNOS)
def test_an_environment_error_is_never_a_qc_record_whichever_stage_records_it(name):
    import errno as errno_mod

    from polysent.errors import EnvironmentFailure
    from polysent.qc import QCLog

    code = getattr(errno_mod, name)
    qc = QCLog("any")
    with pytest.raises(EnvironmentFailure):
        try:
            raise OSError(code, os.strerror(code), "/results/x.parquet")
        except OSError as err:
            qc.add(f"could not write: {err}", "s1", "v1")
    with pytest.raises(EnvironmentFailure):  # a tool's message naming it, outside any handler
        qc.add(f"espeak-ng failed: {os.strerror(code)}", "s1", "v1")
    assert len(qc) == 0


def test_input_data_problems_still_become_qc_records():
    import errno as errno_mod

    from polysent.qc import QCLog

    qc = QCLog("any")
    try:
        raise FileNotFoundError(errno_mod.ENOENT, "No such file or directory", "media/v.mp4")
    except OSError as err:
        qc.add(f"media source missing: {err}", "s1", "v1")
    qc.add("ffmpeg failed on v.mp4: Invalid data found when processing input", "s2", "v2")
    assert len(qc) == 2


def test_a_full_disk_during_a_download_stops_every_download(tmp_path, monkeypatch):
    import errno as errno_mod

    from polysent.corpus import download
    from polysent.errors import EnvironmentFailure

    fetcher = download.Fetcher({}, seed=0, sleep=lambda s: None)

    def full(job):
        raise OSError(errno_mod.ENOSPC, "No space left on device", job.dest)

    monkeypatch.setattr(fetcher, "_run_one", full)
    job = download.Job(key="v", dest=str(tmp_path / "v.mp4"), sources=[])
    with pytest.raises(EnvironmentFailure):
        fetcher.run_one(job)


# --------------------------------------------------------------------------- probe and validation agree with the workflow


def _av(path: Path, audio_codec: str, seconds: float = 3.0, extra: tuple[str, ...] = ()) -> Path:
    import subprocess

    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=d={seconds}:sample_rate=44100"]
    cmd += ["-f", "lavfi", "-i", f"color=s=32x32:d={seconds}:r=10", "-c:a", audio_codec, "-c:v", "mpeg4"]
    subprocess.run([*cmd, *extra, str(path)], check=True)
    return path


# a camera's .mp4 with PCM audio is a QuickTime file (ffmpeg's mp4 muxer refuses PCM)
@pytest.mark.parametrize("name, extra", [("pcm.mov", ()), ("pcm.mp4", ("-f", "mov"))], ids=["mov", "mp4"])
def test_pcm_audio_in_mov_or_mp4_is_not_called_truncated(tmp_path, capsys, name, extra):
    from polysent.probe import media_problems, probe

    info = probe(_av(tmp_path / "media" / name, "pcm_s16le", extra=extra))
    audio = info.first("audio")
    assert audio.declared_packets and audio.read_packets < audio.declared_packets  # the old false alarm's cause
    assert info.truncated() == [] and media_problems(info, last_end=2.9) == []
    manifest = _corpus(tmp_path, [_row("s0", Path(name).stem, end="2.5")], videos=[])
    rc = cli(["validate-manifest", str(manifest), "--media-root", "media", "--probe"])
    assert rc == 0, capsys.readouterr().out


def test_truncated_audio_is_found_by_its_decoded_duration(tmp_path):
    import subprocess

    from polysent.probe import media_problems, probe

    whole = tmp_path / "a.m4a"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=d=4", "-c:a", "aac"]
        + ["-movflags", "+faststart", str(whole)],
        check=True,
    )
    cut = tmp_path / "cut.m4a"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    problems = media_problems(probe(cut), need_video=False)
    assert len(problems) == 1 and "audio stream: decodes to" in problems[0] and "of the 4.000 s" in problems[0]
    assert media_problems(probe(whole), need_video=False) == []


@pytest.mark.parametrize("ext", [".webm", ".mkv", ".avi", ".mov"])
def test_validate_manifest_finds_every_extension_the_workflow_reads(tmp_path, capsys, ext):
    from polysent.config import schema_defaults

    assert ext in schema_defaults("corpus", "folder")["extensions"]
    manifest = _corpus(tmp_path, [_row("s0", "v")], videos=[])
    (tmp_path / "media" / f"v{ext}").write_bytes(b"a video")
    rc, out = _validate(manifest, capsys)
    assert rc == 0 and "1 segment(s), 1 video(s), no problems" in out


def test_validate_manifest_fails_on_a_manifest_without_segments(tmp_path, capsys):
    manifest = _corpus(tmp_path, [], videos=[])
    rc, out = _validate(manifest, capsys)
    assert rc == 1 and "no segment" in out
    rc, out = _validate(_corpus(tmp_path / "b", [_row("s0", "v")]), capsys, "--languages", "es")
    assert rc == 1 and "no segment in es" in out


# --------------------------------------------------------------------------- no silent leaks


def _twins(tmp_path: Path, splits: tuple[str, str], how: str) -> Path:
    """Videos 'a' and 'b' that are one recording (a copy, or a symlink), plus an unrelated 'c'."""
    rows = _with_split([_row("a0", "a"), _row("b0", "b"), _row("c0", "c")], [splits[0], splits[1], "train"])
    path = _corpus(tmp_path, rows, header=[*HEADER, "split"], videos={"a", "c"})
    media = tmp_path / "media"
    (media / "a.mp4").write_bytes(b"the same recording")
    if how == "copy":
        (media / "b.mp4").write_bytes(b"the same recording")
    else:
        os.symlink(media / "a.mp4", media / "b.mp4")
    return path


@pytest.mark.parametrize("how", ["copy", "symlink"])
def test_one_recording_under_two_ids_in_two_splits_is_refused(tmp_path, capsys, how):
    path = _twins(tmp_path, ("train", "test"), how)
    rc, out = _validate(path, capsys)
    lines = out.splitlines()[1:]
    assert rc == 1 and len(lines) == 2, out
    assert all("same media as another video in another split" in line for line in lines)
    assert "'a' (train" in lines[0] and "'b' (test" in lines[0]
    table, qc = _build(tmp_path, _cfg(path, on_invalid="drop"), languages=("fr",))
    assert table.video_id.tolist() == ["c"] and sorted(qc.video_id) == ["a", "b"]


def test_one_recording_under_two_ids_in_one_split_is_a_warning(tmp_path, capsys, caplog):
    path = _twins(tmp_path, ("train", "train"), "copy")
    with caplog.at_level("WARNING"):
        rc, out = _validate(path, capsys)
    assert rc == 0, out
    assert any("one recording counted 2 times" in r.getMessage() and "'a'" in r.getMessage() for r in caplog.records)


def test_a_drawn_split_keeps_one_recordings_ids_together(tmp_path):
    rows = [_row(f"{v}0", v) for v in ("a", "b")] + [_row(f"v{i}_0", f"v{i}") for i in range(30)]
    path = _corpus(tmp_path, rows, videos={"a", *(f"v{i}" for i in range(30))})
    (tmp_path / "media/a.mp4").write_bytes(b"the same recording")
    (tmp_path / "media/b.mp4").write_bytes(b"the same recording")
    for seed in range(5):
        out = tmp_path / f"res{seed}"
        table = folder.build(_cfg(path), ["fr"], seed, 1, out / "m.parquet", out / "qc.parquet", out / "media")
        split = dict(zip(table.column("video_id").to_pylist(), table.column("split").to_pylist()))
        assert split["a"] == split["b"], (seed, split["a"], split["b"])


def test_overlapping_segments_with_opposite_labels_are_a_problem_of_both_rows(tmp_path, capsys):
    rows = [
        _row("s0", "v", start="0", end="4", sentiment="2"),
        _row("s1", "v", start="0.5", end="4", text="bonjour", sentiment="-2"),  # same words, opposite label
        _row("s2", "v", start="3", end="8", sentiment="-1"),  # overlaps s0 by 1 s of 4: below half
        _row("s3", "w", start="0", end="4", sentiment="1"),
        _row("s4", "w", start="0", end="4", sentiment="2"),  # agreeing labels pass
    ]
    path = _corpus(tmp_path, rows)
    rc, out = _validate(path, capsys)
    lines = out.splitlines()[1:]
    assert rc == 1 and len(lines) == 2, out
    assert "m.csv:2: segment 's0'" in lines[0] and "overlaps 's1'" in lines[0] and "opposite sentiment" in lines[0]
    assert "m.csv:3: segment 's1'" in lines[1] and "overlaps 's0'" in lines[1]
    table, qc = _build(tmp_path, _cfg(path, on_invalid="drop"), languages=("fr",))
    assert sorted(table.segment_id) == ["s2", "s3", "s4"] and sorted(qc.segment_id) == ["s0", "s1"]


@pytest.fixture(scope="module")
def folder_workflow(tmp_path_factory) -> Path:
    """A workflow copy on a small folder corpus whose Spanish half has no test video, with its
    corpus stage run (the only job run: everything else is dry-run)."""
    import yaml

    from conftest import copy_workflow, snakemake

    wf = copy_workflow(tmp_path_factory.mktemp("folderwf") / "wf")
    data = wf / "data"
    splits = {"f0": "train", "f1": "train", "f2": "valid", "f3": "test", "e0": "train", "e1": "train", "e2": "valid"}
    rows = [[*_row(f"{v}_0", v, "fr" if v[0] == "f" else "es"), s] for v, s in splits.items()]
    _corpus(data, rows, header=[*HEADER, "split"])
    (wf / "config/folder.yaml").write_text(
        yaml.safe_dump({"corpus": {"source": "folder", "folder": {"manifest": "data/m.csv"}}})
    )
    snakemake(wf, "results/corpus/manifest.parquet", "--cores", "1", *FOLDER_CONFIG)
    return wf


FOLDER_CONFIG = ("--configfile", "config/tiny.yaml", "config/folder.yaml")


def test_a_language_without_test_segments_fails_the_rows_evaluating_on_it_at_dag_build(folder_workflow):
    from conftest import snakemake

    proc = snakemake(folder_workflow, "-n", "results/table1.csv", *FOLDER_CONFIG, check=False)
    err = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for row in ("adamml_dl2_fr_es", "adamml_dl2_es_es"):
        assert f"experiments.{row}.eval: language 'es' has no test segments in the corpus" in err, err[-3000:]
    assert "mult_t_fr_fr" not in err.split("cannot run")[-1]  # French rows are fine


def test_split_count_problems_name_each_row_and_split():
    from polysent.config import split_count_problems

    config = {"experiments": {"a": {"train": {"fr": 1.0}, "eval": "es"}, "b": {"train": {"fr": 1.0}, "eval": "fr"}}}
    counts = {("fr", "train"): 5, ("fr", "valid"): 1, ("fr", "test"): 1, ("es", "train"): 3}
    assert split_count_problems(config, ["a", "b"], counts) == [
        "experiments.a.eval: language 'es' has no test segments in the corpus; its row would be blank "
        "(add es test videos, or leave the row out of report.table1/emotions)"
    ]
    assert split_count_problems(config, ["b"], {("fr", "test"): 1}) == [
        "experiments.b.train: language 'fr' has no train segments in the corpus",
        "experiments.b.train: language 'fr' has no valid segments in the corpus",
    ]


def test_a_changed_manifest_path_replans_and_a_missing_one_fails_clearly(folder_workflow, tmp_path):
    import shutil

    import yaml

    from conftest import copy_finished_run, parse_dry_run, snakemake

    wf = copy_finished_run(folder_workflow, tmp_path / "wf")
    target = ("results/corpus/manifest.parquet", "--cores", "1", "--configfile", "config/tiny.yaml", "config/f2.yaml")
    shutil.copy(wf / "data/m.csv", wf / "data/m2.csv")
    (wf / "config/f2.yaml").write_text(
        yaml.safe_dump({"corpus": {"source": "folder", "folder": {"manifest": "data/m2.csv"}}})
    )
    jobs = parse_dry_run(snakemake(wf, "-n", *target).stdout)
    # the corpus job, and the step that copies the file's labels into the manifest
    assert sorted(j.rule for j in jobs.values()) == ["corpus_external", "corpus_folder_labels"]
    (wf / "config/f2.yaml").write_text(
        yaml.safe_dump({"corpus": {"source": "folder", "folder": {"manifest": "data/gone.csv"}}})
    )
    proc = snakemake(wf, "-n", *target, check=False)
    assert proc.returncode != 0
    assert "corpus.folder.manifest: data/gone.csv does not exist" in proc.stdout + proc.stderr


# --------------------------------------------------------------------------- every refusal one clear line


@pytest.fixture(scope="module")
def one_bundle(tmp_path_factory):
    from polysent import io
    from polysent.bundle import make_bundle
    from polysent.synthetic import synthetic_store_table
    from polysent.train import run_experiment
    from test_bundle import EXPERIMENTS, store_metadata
    from test_train import DIMS, TRAIN

    root = tmp_path_factory.mktemp("adv_bundle")
    stores = {}
    for lang, other in (("fr", "es"), ("es", "fr")):
        stores[lang] = str(root / f"{lang}.parquet")
        table = synthetic_store_table(lang, n_videos=6, segments_per_video=3, dims=DIMS, max_words=8, tr_lang=other)
        io.write_parquet(stores[lang], table, provenance=store_metadata(lang))
    run_experiment(stores, EXPERIMENTS["mctn_ta"], {**TRAIN, "max_len": 8, "max_epochs": 1}, 1, root / "run")
    return make_bundle(root / "run", stores, root / "bundle")


def _edited_bundle(src: Path, dest: Path, edit) -> Path:
    import json
    import shutil

    shutil.copytree(src, dest)
    spec = dest / "bundle.json"
    text = spec.read_text()
    spec.write_text(edit(json.loads(text), text))
    return dest


def test_a_truncated_bundle_json_is_named_in_one_line(one_bundle, tmp_path):
    from polysent.bundle import BundleError, load_bundle

    path = _edited_bundle(one_bundle, tmp_path / "b", lambda meta, text: text[: len(text) // 2])
    with pytest.raises(BundleError) as info:
        load_bundle(path)
    msg = str(info.value)
    assert "\n" not in msg and f"bundle description {path / 'bundle.json'} is corrupt or not a JSON file" in msg


def test_a_bundle_json_without_a_key_names_the_key(one_bundle, tmp_path):
    import json

    from polysent.bundle import BundleError, load_bundle

    def drop_kwargs(meta, text):
        del meta["model"]["kwargs"]
        return json.dumps(meta)

    with pytest.raises(BundleError, match=r"key\(s\) model.kwargs missing") as info:
        load_bundle(_edited_bundle(one_bundle, tmp_path / "b", drop_kwargs))
    assert "\n" not in str(info.value)


def test_an_edited_model_spec_is_one_line_not_a_state_dict_dump(one_bundle, tmp_path):
    import json

    from polysent.bundle import BundleError, load_bundle

    def bigger(meta, text):
        key = next(
            k for k, v in meta["model"]["kwargs"].items() if isinstance(v, int) and not isinstance(v, bool) and v > 1
        )
        meta["model"]["kwargs"][key] *= 2
        return json.dumps(meta)

    with pytest.raises(BundleError, match="do not match weights.safetensors") as info:
        load_bundle(_edited_bundle(one_bundle, tmp_path / "b", bigger))
    assert "\n" not in str(info.value) and "of another shape, first" in str(info.value)


def test_integer_ids_in_a_parquet_manifest_are_ids(tmp_path, capsys):
    frame = pd.DataFrame(
        {
            "video_id": [101, 101, 102],
            "lang": "fr",
            "start": [0.0, 1.0, 0.0],
            "end": [1.0, 2.0, 1.0],
            "transcript": "bonjour",
            "sentiment": [0.0, 1.0, -1.0],
        }
    )
    (tmp_path / "media").mkdir()
    for vid in (101, 102):
        (tmp_path / "media" / f"{vid}.mp4").write_bytes(f"video {vid}".encode())
    frame.to_parquet(tmp_path / "m.parquet")
    rc, out = _validate(tmp_path / "m.parquet", capsys)
    assert rc == 0 and "3 segment(s), 2 video(s), no problems" in out, out
    table, _ = _build(tmp_path, _cfg(tmp_path / "m.parquet"), languages=("fr",))
    assert sorted(set(table.video_id)) == ["101", "102"] and "101_1" in set(table.segment_id)


def test_a_duplicated_header_column_is_named(tmp_path, capsys):
    path = _corpus(tmp_path, [[*_row("s0", "v"), "1"]], header=[*HEADER, "sentiment"])
    rc, out = _validate(path, capsys)
    assert rc == 1 and out.splitlines()[1:] == [
        f"  {path}:1: column 'sentiment' appears 2 times in the header (columns 7, 8); rename or remove all but one"
    ]


def test_a_text_file_named_parquet_is_named_with_its_role(tmp_path, capsys):
    path = tmp_path / "m.parquet"
    path.write_text("video_id,lang\nv,fr\n")
    assert cli(["validate-manifest", str(path)]) == 1  # the CLI prints a PolysentError's one line
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert f"corpus manifest {path} is corrupt or not a Parquet file (" in lines[0]
    (problem,) = folder.read_manifest_file(path)[1]
    assert str(problem).startswith(f"{path}: corpus manifest is not a readable Parquet file (")
    assert str(problem).endswith("; save it again, or as CSV") and "\n" not in str(problem)


def test_a_yaml_syntax_error_in_the_workflow_config_names_file_and_line(tmp_path):
    from conftest import copy_workflow, snakemake

    wf = copy_workflow(tmp_path / "wf")
    path = wf / "config/config.yaml"
    lines = path.read_text().splitlines()
    lines.insert(3, "broken: [1, 2")
    path.write_text("\n".join(lines) + "\n")
    proc = snakemake(wf, "-n", check=False)
    assert proc.returncode != 0
    assert f"{path}:5:5: YAML syntax error" in proc.stdout + proc.stderr, proc.stdout[-2000:]


def test_snakefile_run_from_another_folder_reads_the_workflows_config(tmp_path):
    import sys

    from conftest import REPO

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess_run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n", "--cores", "1", "results/table1.csv"]
        + ["--configfile", str(REPO / "config/tiny.yaml")],
        elsewhere,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "report_table1" in proc.stdout


def subprocess_run(cmd, cwd):
    import subprocess

    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_qc_reasons_are_words_and_the_tools_stderr_is_its_own_column(tmp_path):
    no_audio = tmp_path / "src/silent.mp4"
    no_audio.parent.mkdir(parents=True)
    _mp4(no_audio, None, 1.0)
    garbage = tmp_path / "src/garbage.mp4"
    garbage.write_bytes(b"not a video at all")
    manifest = _media_manifest(tmp_path / "m.parquet", {"silent": no_audio, "garbage": garbage})
    cfg = {"sample_rates": [16000]}
    _media_shard(manifest, tmp_path, cfg)
    qc = pd.read_parquet(tmp_path / "qc.parquet").set_index("video_id")
    assert (
        qc.loc["garbage", "reason"]
        == f"audio extraction failed: ffprobe cannot read {garbage}: the file is corrupt, truncated or not a media file"
    )
    assert "Invalid data found when processing input" in qc.loc["garbage", "detail"]
    assert qc.loc["silent", "reason"] == f"audio extraction failed: {no_audio} has no audio stream"
    for vid in qc.index:
        assert "\n" not in qc.loc[vid, "reason"] and "0x" not in qc.loc[vid, "reason"]


def test_ffmpeg_in_words_keeps_the_raw_message_out_of_the_reason(tmp_path):
    from polysent import media

    src = _tone(tmp_path / "v.wav", 1.0, 220)
    ffmpeg = _fake_ffmpeg(tmp_path, "Stream map 0:a:0 matches no streams.")
    with pytest.raises(media.ToolFailed) as info:
        media.extract_wav(src, tmp_path / "out.wav", 16000, ffmpeg=ffmpeg, timeout=600)
    assert str(info.value) == f"audio extraction failed: the file has no audio stream: {src}"
    assert info.value.detail == "Stream map 0:a:0 matches no streams."
    manifest = _media_manifest(tmp_path / "m.parquet", {"v": src})
    _media_shard(manifest, tmp_path, {"sample_rates": [16000], "ffmpeg": ffmpeg})
    qc = pd.read_parquet(tmp_path / "qc.parquet")
    assert qc.reason.tolist() == [f"audio extraction failed: the file has no audio stream: {src}"]
    assert qc.detail.tolist() == ["Stream map 0:a:0 matches no streams."]


# --------------------------------------------------------------------------- early: at DAG build


@pytest.mark.parametrize(
    "where, settings, expected",
    [
        (
            "variation",
            {"modalitites": ["text"]},
            "experiments.x.variation: unknown setting 'modalitites' for model 'mctn' (did you mean 'modalities'?)",
        ),
        (
            "variation",
            {"variant": "hierachical"},
            "experiments.x.variation.variant: 'hierachical' is not a value the model knows (did you mean 'hierarchical'?)",
        ),
        (
            "variation",
            {"modalities": ["text", "acoustc"]},
            "experiments.x.variation.modalities: 'acoustc' is not a value the model knows (did you mean 'acoustic'?)",
        ),
        (
            "models",
            {"hiden": 8},
            "train.models.mctn: unknown setting 'hiden' for model 'mctn' (did you mean 'hidden'?)",
        ),
    ],
)
def test_model_settings_are_checked_against_the_models_keywords(where, settings, expected):
    from polysent.config import ConfigError, check_experiments

    entry = {"model": "mctn", "train": {"fr": 1.0}, "eval": "fr"}
    config = {"languages": ["fr"], "experiments": {"x": entry}, "train": {"models": {}}}
    if where == "variation":
        entry["variation"] = settings
    else:
        config["train"]["models"]["mctn"] = settings
    with pytest.raises(ConfigError) as info:
        check_experiments(config, ["x"])
    assert expected in str(info.value)


def test_every_shipped_config_passes_the_model_settings_check():
    from polysent.config import deep_merge, model_setting_problems, read_yaml

    repo = Path(__file__).resolve().parents[1]
    base = deep_merge(read_yaml(repo / "config/config.yaml"), read_yaml(repo / "config/experiments.yaml"))
    for extra in ("tiny.yaml", "moseas.yaml"):
        config = deep_merge(base, read_yaml(repo / "config" / extra))
        assert model_setting_problems(config, list(config["experiments"])) == [], extra


def test_a_typo_in_model_settings_fails_the_dry_run(tmp_path):
    import yaml

    from conftest import copy_workflow, snakemake

    wf = copy_workflow(tmp_path / "wf")
    (wf / "config/typo.yaml").write_text(yaml.safe_dump({"train": {"models": {"mult": {"hedas": 2}}}}))
    proc = snakemake(wf, "-n", "--configfile", "config/tiny.yaml", "config/typo.yaml", check=False)
    assert (
        proc.returncode != 0
        and "train.models.mult: unknown setting 'hedas' for model 'mult' (did you mean 'heads'?)"
        in proc.stdout + proc.stderr
    )


@pytest.mark.parametrize(
    "fractions, words", [([0.8, 0.3, 0.1], "sum to 1.2, not 1"), ([1.0, 0.0, 0.0], "the test fraction is 0")]
)
def test_split_fractions_are_checked_with_the_config(fractions, words):
    from polysent.config import ConfigError, complete

    for source in ("folder", "moseas", "demo"):
        with pytest.raises(ConfigError, match=f"corpus.{source}.splits: .*{words}"):
            complete({"splits": fractions}, "corpus", source)


def test_a_qc_threshold_stop_points_to_records_snakemake_keeps(tmp_path):
    from polysent import qc

    manifest = _media_manifest(tmp_path / "m.parquet", {f"v{i}": tmp_path / f"v{i}.wav" for i in range(4)})
    log = qc.QCLog("media")
    for seg in ["v0_0", "v1_0"]:
        log.add("the file has no audio stream", segment_id=seg, video_id=seg[:2])
    log.write(tmp_path / "q.parquet")
    with pytest.raises(qc.QCThresholdExceeded) as err:
        qc.summarise_run(manifest, [tmp_path / "q.parquet"], tmp_path / "s.csv", tmp_path / "r.csv", 0.25)
    kept = tmp_path / "r.rejected.csv"
    assert str(err.value).endswith(f"every record: {kept}")
    (tmp_path / "r.csv").unlink()  # what Snakemake does to the failed job's outputs
    assert sorted(pd.read_csv(kept).segment_id) == ["v0_0", "v1_0"]


# --------------------------------------------------------------------------- bounded cost


def test_the_acoustic_jobs_memory_request_grows_with_its_largest_wavs(tmp_path):
    from polysent.features.acoustic import BASE_MB, MB_PER_WAV_MB, job_mem_mb

    assert job_mem_mb(tmp_path / "not_yet", 1, {}) == BASE_MB  # at DAG build, before the media exist
    for vid, seconds in (("short", 1.0), ("long", 6.0), ("mid", 3.0)):
        _tone(tmp_path / "wav" / vid / "22050.wav", seconds, 220, sr=22050)
    one = job_mem_mb(tmp_path, 1, {}) - BASE_MB
    two = job_mem_mb(tmp_path, 2, {}) - BASE_MB
    assert abs(one - MB_PER_WAV_MB * 6.0 * 22050 * 2 / 1e6) < 1 and abs(two - MB_PER_WAV_MB * 9.0 * 22050 * 2 / 1e6) < 1
    rule = (Path(__file__).resolve().parents[1] / "workflow/rules/acoustic.smk").read_text()
    assert "acoustic_mem_mb(input.media, threads)" in rule
