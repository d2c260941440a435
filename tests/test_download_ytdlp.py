"""yt-dlp integration through its generic extractor on a loopback URL (no internet)."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest

from polysent.config import complete
from polysent.corpus import moseas
from polysent.corpus.download import DownloadFailed, fetch_youtube
from test_moseas_support import VIDEOS, FaultServer, make_mp4, moseas_config, write_fake_moseas

S = {
    **complete({}, "corpus", "moseas", "download"),
    "retries": 2,
    "backoff_base_s": 0.0,
    "backoff_max_s": 0.0,
    "read_timeout_s": 1.0,
}


def _duration(path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_mp4(tmp_path_factory.mktemp("yt") / "src.mp4", seconds=4.0).read_bytes()


def test_full_download_after_a_server_error_is_identical(tmp_path, clip):
    with FaultServer({"/v.mp4": clip}, faults={"/v.mp4": ["500"]}) as srv:
        attempts = fetch_youtube(srv.url("/v.mp4"), tmp_path / "out.mp4", {}, S)
    assert attempts == 2 and (tmp_path / "out.mp4").read_bytes() == clip
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no yt-dlp leftovers


def test_download_sections_cuts_the_requested_range(tmp_path, clip):
    with FaultServer({"/v.mp4": clip}) as srv:
        fetch_youtube(srv.url("/v.mp4"), tmp_path / "cut.mp4", {"force_keyframes_at_cuts": True}, S, section=(1.0, 2.5))
    assert _duration(tmp_path / "cut.mp4") == pytest.approx(1.5, abs=0.15)


def test_missing_video_is_a_permanent_failure(tmp_path):
    with FaultServer({}) as srv:
        with pytest.raises(DownloadFailed) as err:
            fetch_youtube(srv.url("/gone.mp4"), tmp_path / "x.mp4", {}, S)
        assert srv.count("/gone.mp4") == 1
    assert err.value.permanent and "HTTP Error 404" in err.value.reason


def test_moseas_youtube_span_shifts_segment_times(tmp_path):
    root = tmp_path / "moseas"
    truth = write_fake_moseas(root)
    files = {
        f"/watch/{v}.mp4": make_mp4(tmp_path / "src" / f"{v}.mp4", seconds=3.0, freq=200 + 40 * i).read_bytes()
        for i, v in enumerate(v for vids in VIDEOS.values() for v, _ in vids)
    }
    with FaultServer(files, status={"/watch/Zz_9-8_7xYw.mp4": 404}) as srv:
        cfg = moseas_config(root, "unused", order=("youtube",), min_success_rate=0.5)
        cfg["media"]["youtube"].update(url=srv.base + "/watch/{video_id}.mp4", pad_s=0.0)
        out = tmp_path / "results"
        table = moseas.build(
            cfg,
            ["fr", "es"],
            1,
            2,
            out / "manifest.parquet",
            out / "qc.parquet",
            out / "downloads.csv",
            out / "ann.parquet",
            out / "media",
        )
    m = table.to_pandas().set_index("segment_id")
    # HfTLQqNN_nM segments span 0.06-1.8 s: the cut file starts at 0.06, times move by -0.06.
    assert m.loc["HfTLQqNN_nM_0", "start"] == pytest.approx(0.0)
    assert m.loc["HfTLQqNN_nM_1", "end"] == pytest.approx(truth["HfTLQqNN_nM_1"]["end"] - 0.06)
    dur = _duration(out / "media/fr/HfTLQqNN_nM.mp4")
    assert dur == pytest.approx(1.8 - 0.06, abs=0.15)
    qc = pd.read_parquet(out / "qc.parquet")
    assert list(qc.segment_id) == ["Zz_9-8_7xYw_0"] and "HTTP Error 404" in qc.reason[0]
    assert "(permanent)" in qc.reason[0]


def test_rerun_reuses_cut_file_and_keeps_the_shift(tmp_path):
    """A second run finds the span cut on disk (sidecar records the section) and shifts again."""
    root = tmp_path / "moseas"
    write_fake_moseas(root)
    files = {
        f"/watch/{v}.mp4": make_mp4(tmp_path / "src" / f"{v}.mp4", seconds=3.0).read_bytes() for v in ("HfTLQqNN_nM",)
    }
    out = tmp_path / "results"
    with FaultServer(files) as srv:
        cfg = moseas_config(root, "unused", order=("youtube",), min_success_rate=0.0)
        cfg["media"]["youtube"].update(url=srv.base + "/watch/{video_id}.mp4", pad_s=0.0)
        runs = []
        for _ in range(2):  # fr only: no es video is served (a language left empty stops the build)
            t = moseas.build(
                cfg,
                ["fr"],
                1,
                2,
                out / "manifest.parquet",
                out / "qc.parquet",
                out / "downloads.csv",
                out / "ann.parquet",
                out / "media",
            )
            runs.append((t, pd.read_csv(out / "downloads.csv").set_index("key"), srv.count("/watch/HfTLQqNN_nM.mp4")))
    assert runs[1][1].loc["HfTLQqNN_nM", "source"] == "existing"
    assert runs[1][1].loc["HfTLQqNN_nM", "section_start"] == pytest.approx(0.06)
    assert runs[0][0].equals(runs[1][0])
    assert runs[0][0].to_pandas().start.min() == pytest.approx(0.0)
    assert runs[0][2] >= 1 and runs[1][2] == runs[0][2]  # nothing fetched the second time
