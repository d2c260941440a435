"""Media stage: ffmpeg WAV extraction, duration checks against the manifest, QC, CLI.

Also home of the small media corpus the feature-stage tests share (``feature_corpus``): real
espeak-ng speech muxed by ffmpeg with frames of scikit-image's astronaut photograph (a real face),
some frames blanked (no face), plus a hand-built manifest with deliberate faults: a video whose
file is missing and a segment that ends after its video.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from polysent import contracts, media
from polysent.cli import main as cli_main
from polysent.corpus.sharding import shard_of
from polysent.media import extract_wav, index_path, probe_duration, read_index, wav_path

N_SHARDS = 2


def speech(path: Path, text: str, voice: str = "fr") -> Path:
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
    return path


def face_frame(size: int) -> np.ndarray:
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((size, size), Image.BILINEAR))


def make_video(
    path: Path,
    wav: Path | None,
    seconds: float,
    fps: int = 10,
    size: int = 256,
    blank: set[int] = frozenset(),
    frames=None,
) -> Path:
    """An H.264/AAC mp4: ``frames`` (list of RGB arrays) or the astronaut, blank frames in ``blank``."""
    from polysent.corpus.demo.video import encode

    face = face_frame(size)
    n = int(round(seconds * fps))
    picture = (frames[k % len(frames)] if frames is not None else face for k in range(n))
    shown = (np.zeros_like(f) if k in blank else f for k, f in enumerate(picture))
    encode(path, wav, shown, size, fps, pad_audio_to=seconds)
    return path


def write_manifest(path: Path, rows: list[dict]) -> Path:
    full = []
    for r in rows:
        full.append(
            {
                "segment_id": r["segment_id"],
                "video_id": r["video_id"],
                "lang": "fr",
                "split": "train",
                "start": float(r["start"]),
                "end": float(r["end"]),
                "transcript": "bonjour",
                "sentiment": np.float32(r.get("sentiment", 0.0)),
                "video_path": r["video_path"],
                "audio_path": r.get("audio_path", ""),
                "shard": np.int32(shard_of(r["video_id"], N_SHARDS)),
            }
        )
    table = pa.Table.from_pylist(full, schema=contracts.manifest_schema([]))
    contracts.check(table, contracts.MANIFEST)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def corpus_folders(tmp_path_factory, name: str) -> tuple[Path, Path]:
    """A fresh root in the workflow's layout and its corpus media folder (results/corpus/media/fr)."""
    root = tmp_path_factory.mktemp(name)
    media = root / "results" / "corpus" / "media" / "fr"
    media.mkdir(parents=True)
    return root, media


@pytest.fixture(scope="session")
def feature_corpus(tmp_path_factory) -> Path:
    """A tiny corpus in the workflow's layout (results/corpus/...), manifest paths relative to it."""
    root, media = corpus_folders(tmp_path_factory, "feature_corpus")
    wav_a = speech(root / "a.wav", "Bonjour, je suis très content de cette vidéo.")
    wav_b = speech(root / "b.wav", "Ce film est vraiment mauvais, je ne le recommande pas.")
    make_video(media / "vid_a.mp4", wav_a, 3.0, blank=set(range(10, 15)))
    make_video(media / "vid_b.mp4", wav_b, 4.0)
    rel = "results/corpus/media/fr"
    rows = [
        {
            "segment_id": "vid_a_0",
            "video_id": "vid_a",
            "start": 0.0,
            "end": 1.6,
            "video_path": f"{rel}/vid_a.mp4",
        },
        {
            "segment_id": "vid_a_1",
            "video_id": "vid_a",
            "start": 1.6,
            "end": 2.9,
            "video_path": f"{rel}/vid_a.mp4",
        },
        {
            "segment_id": "vid_b_0",
            "video_id": "vid_b",
            "start": 0.2,
            "end": 2.2,
            "video_path": f"{rel}/vid_b.mp4",
        },
        {
            "segment_id": "vid_b_1",
            "video_id": "vid_b",
            "start": 2.2,
            "end": 9.0,
            "video_path": f"{rel}/vid_b.mp4",
        },
        {
            "segment_id": "gone_0",
            "video_id": "gone",
            "start": 0.0,
            "end": 1.0,
            "video_path": f"{rel}/gone.mp4",
        },
    ]
    write_manifest(root / "results" / "corpus" / "manifest.parquet", rows)
    return root


def shard_of_video(video_id: str) -> str:
    return f"{shard_of(video_id, N_SHARDS):03d}"


@pytest.fixture(scope="session")
def media_dirs(feature_corpus) -> dict[str, Path]:
    """The media stage run on every shard of the corpus (shared by the acoustic tests)."""
    import os

    cwd = os.getcwd()
    os.chdir(feature_corpus)  # manifest paths are relative to the working directory
    try:
        out = {}
        for shard in sorted({shard_of_video(v) for v in ("vid_a", "vid_b", "gone")}):
            out[shard] = feature_corpus / "results" / "media" / shard
            media.run_shard(
                "results/corpus/manifest.parquet",
                shard,
                f"results/media/{shard}",
                f"results/qc/media/{shard}.parquet",
                None,
                threads=2,
                progress=False,
            )
    finally:
        os.chdir(cwd)
    return out


def test_extract_wav_is_16k_mono_and_byte_deterministic(tmp_path, feature_corpus):
    video = feature_corpus / "results/corpus/media/fr/vid_a.mp4"
    tools = {"ffmpeg": "ffmpeg", "timeout": 600}
    d1 = extract_wav(video, tmp_path / "one.wav", 16000, **tools)
    extract_wav(video, tmp_path / "two.wav", 16000, **tools)
    info = sf.info(str(tmp_path / "one.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert abs(d1 - probe_duration(video, ffprobe="ffprobe", timeout=120)) < 0.1
    assert (tmp_path / "one.wav").read_bytes() == (tmp_path / "two.wav").read_bytes()
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


def test_extract_wavs_one_process_gives_each_rates_bytes_and_cleans_up(tmp_path, feature_corpus, monkeypatch):
    video = feature_corpus / "results/corpus/media/fr/vid_a.mp4"
    tools = {"ffmpeg": "ffmpeg", "timeout": 600}
    single = {rate: tmp_path / f"single/{rate}.wav" for rate in (16000, 22050)}
    durations = {rate: extract_wav(video, target, rate, **tools) for rate, target in single.items()}
    calls = []
    real_run = subprocess.run
    monkeypatch.setattr(media.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or real_run(cmd, **kw))
    joint = {rate: tmp_path / f"joint/{rate}.wav" for rate in (22050, 16000)}
    assert media.extract_wavs(video, joint, **tools) == [durations[22050], durations[16000]]
    assert len(calls) == 1  # one decode, one process start-up for every rate
    for rate in single:
        assert joint[rate].read_bytes() == single[rate].read_bytes()
        assert sf.info(str(joint[rate])).samplerate == rate
    # a failed decode leaves none of the rates (nor a temp file) behind
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    failed = {rate: tmp_path / f"failed/{rate}.wav" for rate in (16000, 22050)}
    with pytest.raises(RuntimeError, match="broken.mp4"):
        media.extract_wavs(bad, failed, **tools)
    assert not list((tmp_path / "failed").iterdir())


def test_extract_wav_bad_input_names_the_file(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(RuntimeError, match="broken.mp4"):
        extract_wav(bad, tmp_path / "x.wav", 16000, ffmpeg="ffmpeg", timeout=600)
    assert not (tmp_path / "x.wav").exists()


def test_shard_index_qc_and_duration_check(feature_corpus, media_dirs):
    qc = pq.read_table(feature_corpus / "results/qc/media" / f"{shard_of_video('vid_b')}.parquet")
    contracts.check(qc, contracts.QC)
    reasons = dict(zip(qc.column("segment_id").to_pylist(), qc.column("reason").to_pylist()))
    assert "vid_b_1" in reasons and "lasts" in reasons["vid_b_1"]  # ends at 9 s, audio ~3.8 s
    assert "vid_b_0" not in reasons
    gone_qc = pq.read_table(feature_corpus / "results/qc/media" / f"{shard_of_video('gone')}.parquet")
    assert (
        "missing" in dict(zip(gone_qc.column("segment_id").to_pylist(), gone_qc.column("reason").to_pylist()))["gone_0"]
    )

    index = read_index(media_dirs[shard_of_video("vid_a")]).to_pandas()  # checks MEDIA_INDEX
    a = index[index.video_id == "vid_a"].sort_values("sample_rate")
    assert list(a.sample_rate) == [16000, 22050]
    shard_dir = Path("results/media") / shard_of_video("vid_a")
    assert list(a.wav) == [str(wav_path(shard_dir, "vid_a", r)) for r in (16000, 22050)]
    assert Path(a.wav.iloc[0]).parts[-3:] == ("wav", "vid_a", "16000.wav")
    for row in a.itertuples():
        info = sf.info(str(feature_corpus / row.wav))
        assert info.samplerate == row.sample_rate and abs(info.duration - row.duration) < 1e-6
        assert row.source.endswith("vid_a.mp4") and row.source_duration > 2.5
    assert "gone" not in set(index.video_id)


def _index(**overrides) -> pa.Table:
    row = {
        "video_id": "vid_a",
        "sample_rate": 16000,
        "wav": "results/media/000/wav/vid_a/16000.wav",
        "duration": 3.0,
        "source": "vid_a.mp4",
        "source_duration": 3.0,
    }
    table = pa.Table.from_pylist([row], schema=contracts.MEDIA_INDEX.schema())
    for name, column in overrides.items():
        table = table.set_column(table.schema.get_field_index(name), name, column)
    return table


@pytest.mark.parametrize(
    "damage, message",
    [
        ("sample_rate", "column 'sample_rate' is int64, expected int32"),
        ("wav", "missing column 'wav' (string)"),
        ("truncate", "is corrupt or not a Parquet file"),
    ],
)
def test_the_media_index_reader_rejects_a_mismatched_or_corrupt_index_naming_it(tmp_path, damage, message):
    """read_index is the one reader of the media index (the acoustic stage reads it there too)."""
    from polysent.features import acoustic
    from polysent.io import CorruptFileError

    media_dir = tmp_path / "media" / "000"
    path = index_path(media_dir)
    if damage == "sample_rate":
        table = _index(sample_rate=pa.array([16000], pa.int64()))
    else:
        table = _index().drop_columns(["wav"]) if damage == "wav" else _index()
    media_dir.mkdir(parents=True)
    pq.write_table(table, path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    manifest = write_manifest(
        tmp_path / "manifest.parquet",
        [{"segment_id": "vid_a_0", "video_id": "vid_a", "start": 0, "end": 1, "video_path": "vid_a.mp4"}],
    )
    shard = shard_of("vid_a", N_SHARDS)
    error = CorruptFileError if damage == "truncate" else contracts.ContractError
    for read in (
        lambda: read_index(media_dir),
        lambda: acoustic.run_shard(
            manifest,
            shard,
            tmp_path / "a.parquet",
            tmp_path / "qc.parquet",
            None,
            threads=1,
            media_dir=media_dir,
            progress=False,
        ),
    ):
        with pytest.raises(error) as err:
            read()
        assert str(path) in str(err.value) and message in str(err.value)
    assert not (tmp_path / "a.parquet").exists()


def test_source_audio_path_is_preferred(tmp_path, feature_corpus):
    wav = speech(tmp_path / "src.wav", "Bonjour tout le monde.")
    manifest = write_manifest(
        tmp_path / "m.parquet",
        [
            {
                "segment_id": "s0",
                "video_id": "vid_a",
                "start": 0.0,
                "end": 1.0,
                "video_path": str(feature_corpus / "results/corpus/media/fr/vid_a.mp4"),
                "audio_path": str(wav),
            },
        ],
    )
    index = media.run_shard(
        manifest,
        shard_of_video("vid_a"),
        tmp_path / "out",
        tmp_path / "qc.parquet",
        {"sample_rates": [16000]},
        threads=1,
        progress=False,
    )
    assert index.column("source").to_pylist() == [str(wav)]
    assert abs(index.column("duration")[0].as_py() - sf.info(str(wav)).duration) < 0.01


def test_cli_single_file_and_help(tmp_path, feature_corpus, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main(["media", "--help"])
    assert exit_.value.code == 0
    assert "--manifest" in capsys.readouterr().out
    out = tmp_path / "cli.wav"
    assert (
        cli_main(
            [
                "media",
                str(feature_corpus / "results/corpus/media/fr/vid_b.mp4"),
                str(out),
                "--sr",
                "8000",
            ]
        )
        == 0
    )
    assert sf.info(str(out)).samplerate == 8000
