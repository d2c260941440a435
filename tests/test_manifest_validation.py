"""Bad manifests: each case must produce exactly the documented report line (file:line: message)."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from polysent.corpus import folder
from polysent.corpus.validate import ManifestError, check_id, safe_join

HEADER = ["segment_id", "video_id", "lang", "start", "end", "transcript", "sentiment", "happiness"]
GOOD = [
    ["s1", "v1", "fr", "0.0", "1.5", "bonjour à tous", "1.0", "1"],
    ["s2", "v1", "fr", "1.5", "3.0", "ce film est nul", "-2.0", "0"],
    ["s3", "v2", "es", "0.2", "2.0", "hola amigos", "0.333", "0"],
]


def _write(tmp_path, rows, header=HEADER, name="m.csv"):
    path = tmp_path / name
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    media = tmp_path / "media"
    media.mkdir(exist_ok=True)
    for vid in ("v1", "v2", "v3"):
        (media / f"{vid}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + vid.encode())
    return path


def _cfg(path, **kw):
    return {
        "manifest": str(path),
        "media_root": "media",
        "labels": ["happiness"],
        "on_invalid": "fail",
        "extensions": [".mp4"],
        **kw,
    }


def _report(tmp_path, rows, header=HEADER, **kw) -> str:
    path = _write(tmp_path, rows, header)
    with pytest.raises(ManifestError) as err:
        folder.build(
            _cfg(path, **kw),
            ["fr", "es"],
            1,
            2,
            tmp_path / "out.parquet",
            tmp_path / "qc.parquet",
            tmp_path / "res/media",
        )
    assert not (tmp_path / "out.parquet").exists()
    return str(err.value).replace(str(tmp_path) + "/", "")


def _one(tmp_path, rows, **kw) -> str:
    text = _report(tmp_path, rows, **kw)
    head, *lines = text.splitlines()
    assert head == f"{len(lines)} problem(s) in the folder manifest m.csv:", text
    assert len(lines) == 1, text
    return lines[0].strip()


def _edit(i, col, value):
    rows = [list(r) for r in GOOD]
    rows[i][HEADER.index(col)] = value
    return rows


CASES = [
    ("duplicate_id", _edit(1, "segment_id", "s1"), "m.csv:3: duplicate segment_id 's1' (first at m.csv:2)"),
    ("end_before_start", _edit(0, "start", "2.0"), "m.csv:2: end 1.5 <= start 2"),
    ("end_equals_start", _edit(2, "end", "0.2"), "m.csv:4: end 0.2 <= start 0.2"),
    ("negative_start", _edit(2, "start", "-0.5"), "m.csv:4: start -0.5 is negative"),
    ("start_not_number", _edit(1, "start", "1,5"), "m.csv:3: start is not a number: '1,5'"),
    ("end_missing", _edit(1, "end", ""), "m.csv:3: end is missing or not finite"),
    ("sentiment_nan", _edit(0, "sentiment", "NaN"), "m.csv:2: sentiment is missing (NaN)"),
    ("sentiment_range", _edit(2, "sentiment", "3.5"), "m.csv:4: sentiment 3.5 is outside [-3, 3]"),
    ("sentiment_text", _edit(0, "sentiment", "positive"), "m.csv:2: sentiment is not a number: 'positive'"),
    ("label_range", _edit(1, "happiness", "2"), "m.csv:3: happiness 2 is outside [0, 1]"),
    ("label_nan", _edit(1, "happiness", ""), "m.csv:3: happiness is missing (NaN)"),
    (
        "unknown_lang",
        _edit(2, "lang", "xx"),
        "m.csv:4: unknown language code 'xx' (expected an ISO 639-1 code such as 'fr')",
    ),
    (
        "uppercase_lang",
        _edit(2, "lang", "ES"),
        "m.csv:4: unknown language code 'ES' (expected an ISO 639-1 code such as 'fr')",
    ),
    ("video_two_langs", _edit(1, "lang", "es"), "m.csv:3: video 'v1' is 'es' here but 'fr' at m.csv:2"),
    ("empty_transcript", _edit(2, "transcript", "   "), "m.csv:4: transcript is empty"),
    (
        "path_escape_video",
        _edit(2, "video_id", "../../etc"),
        "m.csv:4: video_id '../../etc' is not a safe id (letters, digits, '_', '-', '.'; at most 128 "
        "characters; no '/', no '..', no leading '.')",
    ),
    (
        "slash_segment",
        _edit(0, "segment_id", "a/b"),
        "m.csv:2: segment_id 'a/b' is not a safe id (letters, digits, '_', '-', '.'; at most 128 "
        "characters; no '/', no '..', no leading '.')",
    ),
    ("missing_media", _edit(2, "video_id", "v9"), "m.csv:4: media file not found: media/v9{.mp4}"),
    ("short_row", [GOOD[0], GOOD[1][:5], GOOD[2]], "m.csv:3: has 5 fields, the header has 8"),
]


@pytest.mark.parametrize("rows,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_single_problem_exact_message(tmp_path, rows, expected):
    assert _one(tmp_path, rows) == expected


def test_invalid_split_value(tmp_path):
    rows = [r + [s] for r, s in zip(GOOD, ["train", "dev", "test"])]
    assert _one(tmp_path, rows, header=HEADER + ["split"]) == "m.csv:3: split 'dev' is not one of train, valid, test"


def test_missing_columns_are_listed(tmp_path):
    header = [h for h in HEADER if h not in ("sentiment", "happiness")]
    rows = [[v for h, v in zip(HEADER, r) if h in header] for r in GOOD]
    text = _report(tmp_path, rows, header=header)
    assert text.splitlines()[1:] == ["  m.csv:1: missing column 'sentiment'", "  m.csv:1: missing column 'happiness'"]


def test_missing_transcript_column(tmp_path):
    header = [h for h in HEADER if h != "transcript"]
    rows = [[v for h, v in zip(HEADER, r) if h != "transcript"] for r in GOOD]
    text = _report(tmp_path, rows, header=header)
    assert text.splitlines()[1:] == ["  m.csv:1: missing column 'transcript' (or 'transcript_path')"]


def test_manifest_not_utf8(tmp_path):
    path = _write(tmp_path, GOOD)
    path.write_bytes(path.read_bytes().replace("à".encode(), b"\xe0"))
    with pytest.raises(ManifestError) as err:
        folder.build(_cfg(path), ["fr", "es"], 1, 2, tmp_path / "o.parquet", tmp_path / "q.parquet", tmp_path / "md")
    lines = str(err.value).replace(str(tmp_path) + "/", "").splitlines()
    assert lines[1] == "  m.csv:2: not valid UTF-8 (byte b'\\xe0' at offset 92); re-encode the file as UTF-8"


def test_transcript_file_encoding_and_missing(tmp_path):
    header = [h if h != "transcript" else "transcript_path" for h in HEADER]
    (tmp_path / "tr").mkdir()
    (tmp_path / "tr/s1.txt").write_text("bonjour à tous\n", encoding="utf-8")
    (tmp_path / "tr/s2.txt").write_bytes("première ligne\n".encode() + "d\xe9cevant\n".encode("latin-1"))
    rows = [_edit(i, "transcript", f"tr/s{i + 1}.txt")[i] for i in range(3)]
    text = _report(tmp_path, rows, header=header)
    assert text.splitlines()[1:] == [
        "  m.csv:4: cannot read transcript tr/s3.txt: No such file or directory",
        "  m.csv:4: transcript is empty",
        "  tr/s2.txt:2: not valid UTF-8 (byte b'\\xe9' at offset 17); re-encode the file as UTF-8",
    ]


def test_every_problem_in_one_report_sorted(tmp_path):
    rows = [list(r) for r in GOOD]
    rows[0][HEADER.index("sentiment")] = "9"
    rows[2][HEADER.index("lang")] = "zz"
    rows[2][HEADER.index("end")] = "0.1"
    text = _report(tmp_path, rows)
    assert text.splitlines() == [
        "3 problem(s) in the folder manifest m.csv:",
        "  m.csv:2: sentiment 9 is outside [-3, 3]",
        "  m.csv:4: unknown language code 'zz' (expected an ISO 639-1 code such as 'fr')",
        "  m.csv:4: end 0.1 <= start 0.2",
    ]


def test_drop_mode_records_each_segment_in_qc(tmp_path):
    rows = [list(r) for r in GOOD] + [
        ["s4", "v3", "es", "0", "1", "otra", "0", "0"],
        ["s5", "v9", "es", "0", "1", "sin video", "0", "0"],
    ]
    rows[0][HEADER.index("sentiment")] = "9"
    path = _write(tmp_path, rows)
    table = folder.build(
        _cfg(path, on_invalid="drop", min_success_rate=0.0),
        ["fr", "es"],
        1,
        2,
        tmp_path / "out.parquet",
        tmp_path / "qc.parquet",
        tmp_path / "res/media",
    )
    assert table.column("segment_id").to_pylist() == ["s2", "s3", "s4"]
    qc = pd.read_parquet(tmp_path / "qc.parquet")
    assert qc.segment_id.tolist() == ["s1", "s5"]
    assert qc.reason[0] == f"invalid manifest: {path}:2: sentiment 9 is outside [-3, 3]"
    assert qc.reason[1] == f"invalid manifest: {path}:6: media file not found: {tmp_path}/media/v9{{.mp4}}"


def test_drop_mode_still_fails_on_file_level_problems(tmp_path):
    header = [h for h in HEADER if h != "sentiment"]
    rows = [[v for h, v in zip(HEADER, r) if h != "sentiment"] for r in GOOD]
    text = _report(tmp_path, rows, header=header, on_invalid="drop")
    assert text.splitlines()[1:] == ["  m.csv:1: missing column 'sentiment'"]


def test_parquet_manifest_rows_are_numbered(tmp_path):
    frame = pd.DataFrame(GOOD, columns=HEADER)
    for c in ("start", "end", "sentiment", "happiness"):
        frame[c] = frame[c].astype(float)
    frame.loc[1, "end"] = 0.5
    frame.to_parquet(tmp_path / "m.parquet")
    _write(tmp_path, [], name="unused.csv")  # media files
    with pytest.raises(ManifestError) as err:
        folder.build(
            _cfg(tmp_path / "m.parquet"),
            ["fr", "es"],
            1,
            2,
            tmp_path / "o.parquet",
            tmp_path / "q.parquet",
            tmp_path / "md",
        )
    assert str(err.value).replace(str(tmp_path) + "/", "").splitlines()[1] == "  m.parquet:2: end 0.5 <= start 1.5"


def test_ids_and_paths_cannot_escape(tmp_path):
    assert check_id("-abc_DEF-12") is None
    for bad in ("..", "../x", "a/b", ".hidden", "a\\b", "x" * 129, "", "a b", "a\x00b"):
        assert check_id(bad) is not None, bad
    assert safe_join(tmp_path, "fr", "v.mp4") == tmp_path / "fr" / "v.mp4"
    with pytest.raises(ValueError, match="escapes"):
        safe_join(tmp_path, "..", "etc")
