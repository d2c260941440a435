"""OpenFace 2 backend: CSV parsing (both header variants), segment cutting, command line, errors.

The CSV fixtures in tests/fixtures/openface/ are built from OpenFace's documented header and
number format by make_fixtures.py (OpenFace itself is not installable here).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from polysent import contracts
from polysent.features import Segment, frames_table, openface as of, visual
from polysent.io import read_provenance
from test_media import write_manifest

FIXTURES = Path(__file__).parent / "fixtures" / "openface"


def test_fixture_headers_are_the_documented_ones():
    windows = (FIXTURES / "aus_windows.csv").read_text().splitlines()[0]
    assert windows.startswith("frame, face_id, timestamp, confidence, success, AU01_r,")
    assert windows.count(",") == 39  # -aus only: 5 + 17 + 18 columns
    linux = (FIXTURES / "all_linux.csv").read_text().splitlines()[0].split(",")
    assert len(linux) == 714 and linux[-35:] == of.AU_COLUMNS and " " not in "".join(linux)


@pytest.mark.parametrize("name", ["aus_windows.csv", "all_linux.csv"])
def test_read_csv_strips_leading_spaces(name):
    df = of.read_csv(FIXTURES / name)
    assert all(c in df.columns for c in of.AU_COLUMNS + ["timestamp", "confidence", "success"])
    assert len(of.AU_COLUMNS) == 35 and of.AU_COLUMNS[16] == "AU45_r" and "AU28_c" in of.AU_COLUMNS
    assert len(df) == 60 and df["timestamp"].iloc[1] == pytest.approx(0.033)


def test_both_variants_give_the_same_frames():
    segs = [Segment("s", "v", 0.5, 1.5, "v.mp4", "")]
    a, _ = of.segment_frames(of.read_csv(FIXTURES / "aus_windows.csv"), segs)
    b, _ = of.segment_frames(of.read_csv(FIXTURES / "all_linux.csv"), segs)
    np.testing.assert_array_equal(a[0].features, b[0].features)


def test_failed_frames_are_kept_with_nan_aus_and_segments_cut_by_timestamp():
    df = of.read_csv(FIXTURES / "aus_windows.csv")
    segs = [
        Segment("s0", "v", 0.0, 1.0, "v.mp4", ""),
        Segment("s1", "v", 1.0, 2.0, "v.mp4", ""),
        Segment("late", "v", 5.0, 6.0, "v.mp4", ""),
    ]
    frames, failures = of.segment_frames(df, segs)
    assert [f.segment_id for f in frames] == ["s0", "s1"]
    s1 = frames[1]
    assert s1.time[0] == pytest.approx(0.0) and len(s1.time) == 30  # frames 31..60, ts 1.000..1.967
    lost = ~s1.success
    assert lost.sum() == 6 and np.isnan(s1.features[lost]).all()  # frames 31-36: success = 0
    assert not np.isnan(s1.features[~lost]).any() and (s1.confidence[lost] < 0.2).all()
    assert failures[0][0] == "late" and "no OpenFace frame" in failures[0][1]
    table = frames_table(frames, of.AU_COLUMNS, visual=True)
    contracts.check(table, contracts.VISUAL_FRAMES)
    assert table.num_rows == 60 and table.schema.field("AU12_r").type == "float"


def test_csv_without_aus_is_a_clear_error(tmp_path):
    bad = tmp_path / "pose_only.csv"
    bad.write_text("frame, face_id, timestamp, confidence, success, pose_Tx\n1, 0, 0.000, 0.98, 1, 3.1\n")
    with pytest.raises(of.OpenFaceError, match="pose_only.csv.*-aus"):
        of.read_csv(bad)


def test_missing_binary_says_how_to_provide_it(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(of.OpenFaceNotFound) as err:
        of.check_available({"binary": "FeatureExtraction"})
    msg = str(err.value)
    assert "visual.openface.binary" in msg and "visual.openface.container" in msg and "landmarks" in msg
    with pytest.raises(of.OpenFaceNotFound, match="apptainer, singularity or docker"):
        of.check_available({"container": "docker://algebr/openface:latest"})


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_command_lines(tmp_path, monkeypatch):
    binary = _executable(tmp_path / "FeatureExtraction", "#!/bin/sh\n")
    cmd = of.command({"binary": str(binary)}, tmp_path / "in" / "v.mp4", tmp_path / "out", "v")
    assert cmd == [
        str(binary),
        "-f",
        str(tmp_path / "in/v.mp4"),
        "-out_dir",
        str(tmp_path / "out"),
        "-of",
        "v",
        "-aus",
    ]
    _executable(tmp_path / "apptainer", "#!/bin/sh\n")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    cmd = of.command(
        {"container": "docker://algebr/openface:latest", "extra_args": ["-au_static"]},
        tmp_path / "in" / "v.mp4",
        tmp_path / "out",
        "v",
    )
    assert cmd[:5] == [
        "apptainer",
        "exec",
        "--bind",
        f"{tmp_path / 'in'},{tmp_path / 'out'}",
        "docker://algebr/openface:latest",
    ]
    assert cmd[5] == "/home/openface-build/build/bin/FeatureExtraction" and cmd[-2:] == [
        "-aus",
        "-au_static",
    ]


def test_shard_with_a_test_double_binary(tmp_path):
    """Wiring test: a *test double* of FeatureExtraction (it copies the fixture CSV where OpenFace
    would write it, honouring -out_dir/-of) so the shard path runs end to end; a second video makes
    the double fail without a CSV, as OpenFace does on unreadable input (exit code 0)."""
    fixture = FIXTURES / "aus_windows.csv"
    double = _executable(
        tmp_path / "FeatureExtraction",
        f"""#!/bin/sh
while [ $# -gt 0 ]; do case "$1" in -f) f="$2"; shift;; -out_dir) o="$2"; shift;; -of) n="$2"; shift;; esac; shift; done
case "$f" in *bad*) echo "Could not open $f" >&2; exit 0;; esac
mkdir -p "$o" && cp "{fixture}" "$o/$n.csv"
""",
    )
    for name in ("good.mp4", "bad.mp4"):
        (tmp_path / name).write_bytes(b"")
    manifest = write_manifest(
        tmp_path / "m.parquet",
        [
            {
                "segment_id": "g0",
                "video_id": "good",
                "start": 0.0,
                "end": 1.0,
                "video_path": str(tmp_path / "good.mp4"),
            },
            {
                "segment_id": "g1",
                "video_id": "good",
                "start": 1.0,
                "end": 2.0,
                "video_path": str(tmp_path / "good.mp4"),
            },
            {
                "segment_id": "b0",
                "video_id": "bad",
                "start": 0.0,
                "end": 1.0,
                "video_path": str(tmp_path / "bad.mp4"),
            },
        ],
    )
    cfg = {"backend": "openface", "openface": {"binary": str(double)}}
    frames_by_shard, qc = {}, {}
    for shard in ("000", "001"):
        t = visual.run_shard(
            manifest,
            shard,
            tmp_path / f"{shard}.parquet",
            tmp_path / f"qc{shard}.parquet",
            cfg,
            threads=1,
            progress=False,
        )
        frames_by_shard[shard] = t
        qc |= {
            r["segment_id"]: r["reason"]
            for r in contracts.read(tmp_path / f"qc{shard}.parquet", contracts.QC).to_pylist()
        }
    ids = set().union(*(set(t.column("segment_id").to_pylist()) for t in frames_by_shard.values()))
    assert ids == {"g0", "g1"} and set(qc) == {"b0"} and "produced no CSV" in qc["b0"]
    prov = read_provenance(tmp_path / "000.parquet")
    assert prov["backend"] == "openface" and prov["feature_names"] == of.AU_COLUMNS
