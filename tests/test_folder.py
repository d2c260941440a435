"""Folder source: optional columns filled, column mapping, media linking, CLI."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from polysent import contracts
from polysent.cli import main as cli
from polysent.corpus import folder
from polysent.corpus.sharding import shard_of

# the manifest's own column names -> polysent's (corpus.folder.columns)
RENAMED_COLUMNS = {
    "video_id": "clip",
    "lang": "language",
    "start": "t0",
    "end": "t1",
    "transcript": "text",
    "sentiment": "score",
}


def _corpus(tmp_path, rows, header):
    (tmp_path / "media").mkdir()
    for vid in {r[header.index("clip")] for r in rows}:
        (tmp_path / "media" / f"{vid}.mkv").write_bytes(f"video {vid}".encode())
    with open(tmp_path / "corpus.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return tmp_path / "corpus.csv"


HEADER = ["clip", "language", "t0", "t1", "text", "score", "joy"]
ROWS = [
    ["vid_b", "it", "3.0", "4.0", "che bello", "2", "1"],
    ["vid_b", "it", "0.5", "2.0", "ciao a tutti", "0.5", "0"],
    ["vid_a", "it", "0.0", "1.0", "non mi piace", "-1.5", "0"],
    ["vid_c", "pt", "0.0", "1.0", "olá", "0", "0"],  # not a configured language: skipped
] + [[f"v{i}", "it", "0", "1", f"frase {i}", "0", "1"] for i in range(8)]


def test_folder_source_fills_optional_columns(tmp_path):
    path = _corpus(tmp_path, ROWS, HEADER)
    cfg = {
        "manifest": str(path),
        "media_root": "media",
        "extensions": [".mp4", ".mkv"],
        "labels": ["joy"],
        "columns": RENAMED_COLUMNS,
    }
    out = tmp_path / "res"
    table = folder.build(
        cfg,
        ["it"],
        4,
        3,
        out / "manifest.parquet",
        out / "qc.parquet",
        out / "media",
        out_downloads=out / "downloads.csv",
    )
    contracts.check(table, contracts.MANIFEST)
    m = table.to_pandas().set_index("segment_id")
    # segment ids: <video_id>_<rank by start within the video>
    assert m.loc["vid_b_0", "transcript"] == "ciao a tutti" and m.loc["vid_b_1", "start"] == 3.0
    assert "vid_c_0" not in m.index and set(m.lang) == {"it"}
    assert m.loc["vid_a_0", "sentiment"] == -1.5 and m.loc["vid_b_1", "joy"] == 1.0
    assert (m.audio_path == "").all()
    assert m.loc["vid_a_0", "video_path"] == str(out / "media/it/vid_a.mkv")
    assert (out / "media/it/vid_a.mkv").read_bytes() == b"video vid_a"
    assert m.loc["vid_a_0", "shard"] == shard_of("vid_a", 3)
    per_video = m.groupby("video_id").split.agg(["first", "nunique"])
    assert (per_video["nunique"] == 1).all()  # split by video
    assert per_video["first"].value_counts().to_dict() == {"train": 8, "valid": 1, "test": 1}  # 10 videos
    assert len(pd.read_parquet(out / "qc.parquet")) == 0
    dl = pd.read_csv(out / "downloads.csv")
    assert dl.ok.all() and len(dl) == 10  # vid_c (pt) skipped


def test_given_split_and_transcript_files_are_used(tmp_path):
    (tmp_path / "tr").mkdir()
    (tmp_path / "tr/a.txt").write_text("  primera\n frase  \n", encoding="utf-8")
    rows = [
        ["a1", "vid_a", "es", "0", "1", "tr/a.txt", "1", "test"],
        ["b1", "vid_b", "es", "0", "1", "tr/a.txt", "0", "train"],
    ]
    header = ["segment_id", "clip", "lang", "start", "end", "transcript_path", "sentiment", "split"]
    path = _corpus(tmp_path, rows, header)
    cfg = {"manifest": str(path), "media_root": "media", "extensions": [".mkv"], "columns": {"video_id": "clip"}}
    table = folder.build(cfg, ["es"], 1, 2, tmp_path / "o.parquet", tmp_path / "q.parquet", tmp_path / "md")
    assert table.column("split").to_pylist() == ["test", "train"]
    assert table.column("transcript").to_pylist() == ["primera frase"] * 2


def test_validate_manifest_cli(tmp_path, capsys):
    path = _corpus(tmp_path, ROWS[:3], HEADER)
    df = pd.read_csv(path).rename(
        columns={
            "clip": "video_id",
            "language": "lang",
            "t0": "start",
            "t1": "end",
            "text": "transcript",
            "score": "sentiment",
        }
    )
    df.to_csv(tmp_path / "ok.csv", index=False)
    assert cli(["validate-manifest", str(tmp_path / "ok.csv"), "--media-root", "nowhere"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"2 problem(s) in the manifest {tmp_path}/ok.csv:"
    assert (
        out.splitlines()[1]
        == f"  {tmp_path}/ok.csv:2: media file not found: {tmp_path}/nowhere/vid_b{{.mp4,.mkv,.webm,.avi,.mov}}"
    )
    (tmp_path / "media/vid_a.mp4").write_bytes(b"x")
    (tmp_path / "media/vid_b.mp4").write_bytes(b"x")
    assert cli(["validate-manifest", str(tmp_path / "ok.csv"), "--media-root", "media", "--labels", "joy"]) == 0
    assert capsys.readouterr().out.strip() == f"{tmp_path}/ok.csv: 3 segment(s), 2 video(s), no problems"
    df.loc[1, "end"] = 0.1
    df.to_csv(tmp_path / "bad.csv", index=False)
    assert cli(["validate-manifest", str(tmp_path / "bad.csv"), "--media-root", "media"]) == 1
    assert capsys.readouterr().out.splitlines()[1] == f"  {tmp_path}/bad.csv:3: end 0.1 <= start 0.5"


def test_validate_manifest_cli_on_a_built_manifest(tmp_path, monkeypatch, capsys):
    # A built manifest stores media paths relative to the workflow root, not to its own folder.
    path = _corpus(tmp_path, ROWS[:3], HEADER)
    cfg = {
        "manifest": str(path),
        "media_root": "media",
        "extensions": [".mkv"],
        "columns": RENAMED_COLUMNS,
        "labels": ["joy"],
    }
    monkeypatch.chdir(tmp_path)
    built = tmp_path / "results/corpus/manifest.parquet"
    folder.build(cfg, ["it"], 1, 2, built, tmp_path / "q.parquet", "results/corpus/media")
    assert cli(["validate-manifest", str(built)]) == 0
    assert capsys.readouterr().out.strip().endswith("3 segment(s), 2 video(s), no problems")
    # taking the paths from the manifest's own folder finds nothing, and says which file
    assert cli(["validate-manifest", str(built), "--paths-relative-to", str(built.parent)]) == 1
    assert "media file not found: results/corpus/media/it/vid_" in capsys.readouterr().out


@pytest.mark.parametrize("cmd", ["moseas", "folder", "validate-manifest"])
def test_subcommands_registered(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        cli([cmd, "--help"])
    assert e.value.code == 0 and "usage: polysent " + cmd in capsys.readouterr().out


def test_folder_build_applies_the_schema_default_min_success_rate(tmp_path):
    """`polysent folder` (folder.build) and the workflow share corpus.folder's defaults: a video
    without media is a drop that min_success_rate 1.0 (the schema's) refuses."""
    import csv

    from polysent.config import schema_defaults
    from polysent.corpus.checks import ManifestError

    assert schema_defaults("corpus", "folder")["min_success_rate"] == 1.0
    (tmp_path / "media").mkdir()
    (tmp_path / "media/a.mp4").write_bytes(b"video a")
    with open(tmp_path / "m.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["video_id", "lang", "start", "end", "transcript", "sentiment"])
        w.writerows([["a", "fr", 0, 1, "bonjour", 0], ["b", "fr", 0, 1, "salut", 1]])
    cfg = {"manifest": str(tmp_path / "m.csv"), "on_invalid": "drop"}
    out = tmp_path / "res"
    with pytest.raises(ManifestError, match="fewer than min_success_rate 100%"):
        folder.build(cfg, ["fr"], 1, 1, out / "manifest.parquet", out / "qc.parquet", out / "media")
    assert not (out / "manifest.parquet").exists()
    table = folder.build(
        {**cfg, "min_success_rate": 0.5}, ["fr"], 1, 1, out / "manifest.parquet", out / "qc.parquet", out / "media"
    )
    assert table.column("video_id").to_pylist() == ["a"]
