"""Corpus source ``moseas``: CMU-MOSEAS as actually released (no SDK files exist for it).

The release (``http://immortal.multicomp.cs.cmu.edu/cache/multilingual/``) has, per language
and annotation batch:

* MTurk batch result CSVs (``Batch_<n>_batch_results.csv``), one row per annotator and segment:
  ``Input.VIDEO_ID`` is a server path ending in ``<video id>_<segment index>…``
  (``/cache/multilingual/french/data/FR_B1_B2/HfTLQqNNsnM_3_…``), ``Answer.sentiment`` a Likert
  integer in −3…+3, ``Answer.<attribute>`` a checkbox per attribute (set when '1', 'checked' or
  'yes'), ``Answer.secret_word1..3`` the attention check;
* timestamped transcripts ``Transcript/Transcript_timestamped_sentences/<vid>.txt``, one
  sentence per line as ``<vid>___<start>___<end>___<sentence>``; the segment key is
  ``<vid>_<line index>`` (0-based, every physical line counts, as in the paper's notebooks);
* raw videos, fetched here from a local folder, the HTTP cache, or YouTube (``yt-dlp``).

Aggregation follows the paper's preprocessing: sentiment = mean over annotators; an attribute is
1 when more than one annotator ticked it (``attribute_min_votes``, default 2), else 0. Every
annotation row, with its attention-check answers, is kept in ``annotations`` for QC.

YouTube ids are 11 characters and may contain ``_``, so ``Input.VIDEO_ID`` is parsed as the
first ``video_id_length`` characters of the file name, then ``_<digits>``; the transcript's
video id comes from its file name and must match each line's first field.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa

from polysent import languages
from polysent.corpus.checks import evidence_path, unusable_languages
from polysent.corpus.download import Fetcher, Job, TooManyFailures, check_success_rate
from polysent.corpus.folder import finish_manifest
from polysent.corpus.splits import split_frame
from polysent.corpus.validate import (
    ManifestError,
    Problem,
    check_id,
    decode_text,
    missing_columns,
    read_csv_records,
    resolve,
    safe_join,
    validate_rows,
)
from polysent.io import write_csv, write_parquet
from polysent.qc import QCLog

log = logging.getLogger("polysent.corpus.moseas")

ATTRIBUTES = (
    "anger",
    "confident",
    "disgust",
    "dominant",
    "eloquent",
    "entertaining",
    "fear",
    "gender",
    "happiness",
    "humorous",
    "is_opinion",
    "narcissist",
    "nervous",
    "passionate",
    "persuasive",
    "relaxed",
    "reserved",
    "sadness",
    "sarcastic",
    "surprise",
)
LANGUAGE_NAMES = languages.table("moseas")
TICKED = {"1", "checked", "yes", "true", "on"}
UNTICKED = {"", "0", "no", "false", "unchecked", "off", "nan", "{}"}
VIDEO_COL, SENTIMENT_COL = "Input.VIDEO_ID", "Answer.sentiment"
ATTENTION_COLS = ("Answer.secret_word1", "Answer.secret_word2", "Answer.secret_word3")


# --------------------------------------------------------------------------- labels


def parse_video_field(value: str, id_length: int = 11) -> tuple[str, int, str] | None:
    """``(video_id, segment_index, batch)`` from an ``Input.VIDEO_ID`` value, or None.

    >>> parse_video_field("/cache/multilingual/french/data/FR_B1_B2/a_b-cdEfgh_12_0:00:31.mp4")
    ('a_b-cdEfgh', 12, 'FR_B1_B2')
    """
    value = value.strip().rstrip("/")
    parent, _, name = value.rpartition("/")
    m = re.match(rf"^(?P<vid>[A-Za-z0-9_-]{{{id_length}}})_(?P<seg>\d+)(?:[_.].*)?$", name)
    if not m:
        return None
    return m["vid"], int(m["seg"]), parent.rpartition("/")[2]


def parse_sentiment(value: str) -> float | None:
    try:
        v = float(str(value).strip())
    except ValueError:
        return None
    return v if math.isfinite(v) and v == round(v) and -3 <= v <= 3 else None


def read_labels(
    paths: Sequence[str], lang: str, attributes: Sequence[str], id_length: int = 11
) -> tuple[pd.DataFrame, list[Problem]]:
    """Annotation rows of MTurk batch CSVs (one per annotator and segment) and their problems."""
    rows, problems = [], []
    for path in paths:
        file = str(path)
        header, records, probs = read_csv_records(path)
        problems += probs
        need = [VIDEO_COL, SENTIMENT_COL, *[f"Answer.{a}" for a in attributes]]
        miss = missing_columns(header, need, file)
        if miss:
            problems += miss
            continue
        for line, rec in records:
            if rec.get("AssignmentStatus", "").strip().lower() == "rejected":
                continue  # MTurk requester rejected this work: not an annotation
            parsed = parse_video_field(rec[VIDEO_COL], id_length)
            if parsed is None:
                problems.append(
                    Problem(
                        file,
                        line,
                        f"cannot parse {VIDEO_COL} {rec[VIDEO_COL]!r}: expected "
                        f"'…/<{id_length}-character video id>_<segment index>…'",
                    )
                )
                continue
            vid, idx, batch = parsed
            seg = f"{vid}_{idx}"
            row = {
                "segment_id": seg,
                "video_id": vid,
                "lang": lang,
                "batch": batch,
                "worker": rec.get("WorkerId", ""),
                "_file": file,
                "_line": line,
            }

            def bad(msg):
                problems.append(Problem(file, line, msg, segment_id=seg, video_id=vid))

            s = parse_sentiment(rec[SENTIMENT_COL])
            if s is None:
                bad(f"{SENTIMENT_COL} {rec[SENTIMENT_COL]!r} is not an integer in -3..3")
            row["sentiment"] = s
            for a in attributes:
                raw = rec[f"Answer.{a}"].strip().lower()
                if raw in TICKED:
                    row[a] = 1
                elif raw in UNTICKED:
                    row[a] = 0
                else:
                    bad(
                        f"Answer.{a} {rec[f'Answer.{a}']!r} is not a checkbox value "
                        "('1'/'checked'/'yes' or '0'/'no'/empty)"
                    )
                    row[a] = None
            for c in ATTENTION_COLS:
                row[c.removeprefix("Answer.")] = rec.get(c, "")
            rows.append(row)
    cols = [
        "segment_id",
        "video_id",
        "lang",
        "batch",
        "worker",
        "sentiment",
        *attributes,
        *[c.removeprefix("Answer.") for c in ATTENTION_COLS],
        "_file",
        "_line",
    ]
    return pd.DataFrame(rows, columns=cols), problems


def aggregate(annotations: pd.DataFrame, attributes: Sequence[str], min_votes: int = 2) -> pd.DataFrame:
    """One row per segment: mean sentiment, attribute = 1 when ticked by ``min_votes`` annotators."""
    if annotations.empty:
        return pd.DataFrame(
            columns=[
                "segment_id",
                "video_id",
                "lang",
                "batch",
                "sentiment",
                "n_annotators",
                *attributes,
                "label_file",
                "label_line",
            ]
        )
    g = annotations.groupby("segment_id", sort=True)
    out = g.agg(
        video_id=("video_id", "first"),
        lang=("lang", "first"),
        batch=("batch", "first"),
        sentiment=("sentiment", "mean"),
        n_annotators=("sentiment", "size"),
        label_file=("_file", "first"),
        label_line=("_line", "first"),
    )
    for a in attributes:
        out[a] = (g[a].sum(min_count=1) >= min_votes).astype(float)
    return out.reset_index()


# --------------------------------------------------------------------------- transcripts


def read_transcripts(paths: Sequence[str]) -> tuple[pd.DataFrame, list[Problem]]:
    """Transcript lines as rows (``segment_id`` = ``<vid>_<line index>``) and their problems."""
    rows, problems, seen = [], [], {}
    for path in sorted(paths):
        file, vid = str(path), Path(path).stem
        why = check_id(vid, "video id (transcript file name)")
        if why:
            problems.append(Problem(file, None, why))
            continue
        if vid in seen:
            problems.append(
                Problem(file, None, f"second transcript for video '{vid}' (first: {seen[vid]})", video_id=vid)
            )
            continue
        seen[vid] = file
        try:
            raw = Path(path).read_bytes()
        except OSError as err:
            problems.append(Problem(file, None, f"cannot read transcript: {err.strerror}", video_id=vid))
            continue
        text, probs = decode_text(raw, file)
        problems += [Problem(p.file, p.line, p.message, video_id=vid) for p in probs]
        for idx, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            seg = f"{vid}_{idx}"
            fields = line.strip().split("___", 3)
            if len(fields) != 4:
                problems.append(
                    Problem(
                        file,
                        idx + 1,
                        f"expected '<vid>___<start>___<end>___<sentence>', found {len(fields)} field(s)",
                        segment_id=seg,
                        video_id=vid,
                    )
                )
                continue
            if fields[0] != vid:
                problems.append(
                    Problem(
                        file,
                        idx + 1,
                        f"line names video '{fields[0]}' but the file is for '{vid}'",
                        segment_id=seg,
                        video_id=vid,
                    )
                )
                continue
            rows.append(
                {
                    "segment_id": seg,
                    "video_id": vid,
                    "start": fields[1],
                    "end": fields[2],
                    "transcript": " ".join(fields[3].split()),
                    "_file": file,
                    "_line": idx + 1,
                }
            )
    return pd.DataFrame(
        rows, columns=["segment_id", "video_id", "start", "end", "transcript", "_file", "_line"]
    ), problems


# --------------------------------------------------------------------------- assembling


def _expand(root: Path, patterns: Sequence[str], lang: str) -> list[str]:
    fields = {"lang": lang, "language": LANGUAGE_NAMES.get(lang, lang)}
    out = []
    for pat in patterns:
        pat = pat.format(**fields)
        full = pat if os.path.isabs(pat) else str(root / pat)
        out += glob.glob(full, recursive=True)
    return sorted(set(out))


def _shown(root: Path, patterns: Sequence[str], lang: str) -> str:
    fields = {"lang": lang, "language": LANGUAGE_NAMES.get(lang, lang)}
    return ", ".join(p.format(**fields) if os.path.isabs(p) else str(root / p.format(**fields)) for p in patterns)


def collect(cfg: dict, languages: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame, list[Problem]]:
    """Candidate manifest (labels joined to transcript lines), annotation rows, and all problems."""
    root = Path(cfg["root"])
    attributes = list(cfg["attributes"])
    frames, anns, problems = [], [], []
    for lang in languages:
        spec = cfg["languages"].get(lang)
        if spec is None:
            problems.append(Problem("config", None, f"corpus.moseas.languages has no entry for '{lang}'"))
            continue
        label_files = _expand(root, spec["labels"], lang)
        tr_files = _expand(root, spec["transcripts"], lang)
        if not label_files:
            problems.append(
                Problem(
                    str(root),
                    None,
                    f"no label CSV for '{lang}' matches "
                    f"{_shown(root, spec['labels'], lang)} (see docs/MOSEAS.md, step 1)",
                )
            )
        if not tr_files:
            problems.append(
                Problem(
                    str(root),
                    None,
                    f"no transcript file for '{lang}' matches "
                    f"{_shown(root, spec['transcripts'], lang)} (see docs/MOSEAS.md, step 1)",
                )
            )
        ann, p1 = read_labels(label_files, lang, attributes, int(cfg["video_id_length"]))
        tr, p2 = read_transcripts(tr_files)
        problems += p1 + p2
        anns.append(ann)
        seg = aggregate(ann, attributes, int(cfg["attribute_min_votes"]))
        merged = seg.merge(tr.drop(columns="video_id"), on="segment_id", how="left")
        have_video = set(tr["video_id"])
        for row in merged.loc[merged["_file"].isna()].itertuples(index=False):
            if row.video_id in have_video:
                msg = f"no transcript line for segment '{row.segment_id}' in {row.video_id}.txt"
            else:
                msg = f"no transcript file {row.video_id}.txt for labelled segment '{row.segment_id}'"
            problems.append(
                Problem(row.label_file, int(row.label_line), msg, segment_id=row.segment_id, video_id=row.video_id)
            )
        unlabelled = len(set(tr["segment_id"]) - set(seg["segment_id"]))
        if unlabelled:
            log.info("%s: %d transcript line(s) have no MTurk labels and are not used", lang, unlabelled)
        # Reported above; left out so that validation does not add consequential errors.
        merged = merged.loc[merged["_file"].notna()].reset_index(drop=True)
        frames.append(merged)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    ann = pd.concat(anns, ignore_index=True) if anns else pd.DataFrame()
    return frame, ann, problems


def release_files(config: dict) -> list[str]:
    """Input files of the external corpus rule (label CSVs + transcripts, or the folder manifest).

    Listed as rule inputs so that editing or adding a release file re-runs the corpus stage.
    """
    source = config["corpus"]["source"]
    cfg = config["corpus"][source]
    if source == "folder":
        # Missing, it would be a missing input that Snakemake ignores while the old manifest exists.
        if not Path(cfg["manifest"]).is_file():
            raise FileNotFoundError(
                f"corpus.folder.manifest: {cfg['manifest']} does not exist "
                f"(relative paths start from the working directory, {Path.cwd()})"
            )
        return [cfg["manifest"]]
    files: list[str] = []
    for lang in config["languages"]:
        spec = cfg["languages"].get(lang)
        if spec:  # the schema requires both lists; a language without an entry has no release files
            files += _expand(Path(cfg["root"]), spec["labels"] + spec["transcripts"], lang)
    return sorted(set(files))


def _template(text: str, **fields) -> str:
    try:
        return text.format(**fields)
    except KeyError as err:
        raise ValueError(f"unknown field {err} in template {text!r}; available: {sorted(fields)}") from None


def media_jobs(frame: pd.DataFrame, cfg: dict, media_dir: Path) -> list[Job]:
    """One :class:`Job` per video with its sources in the configured order."""
    media = cfg["media"]
    sums = load_checksums(media.get("checksums"))
    jobs = []
    ext = media["extension"]
    for (lang, vid), part in frame.groupby(["lang", "video_id"], sort=True):
        fields = {
            "root": cfg["root"],
            "lang": lang,
            "language": LANGUAGE_NAMES.get(lang, lang),
            "video_id": vid,
            "batch": part["batch"].iloc[0],
            "ext": ext,
        }
        dest = safe_join(media_dir, lang, f"{vid}{ext}")
        sources = []
        for kind in media["order"]:
            if kind == "local":
                sources.append({"kind": "local", "location": _template(media["local"]["path"], **fields)})
            elif kind == "http":
                sources.append({"kind": "http", "location": _template(media["http"]["url"], **fields)})
            elif kind == "youtube":
                yt = media["youtube"]
                src = {"kind": "youtube", "location": _template(yt["url"], **fields), "options": yt}
                if yt["sections"] == "span":
                    start = max(0.0, float(part["start"].min()) - float(yt["pad_s"]))
                    src["section"] = (start, float(part["end"].max()) + float(yt["pad_s"]))
                sources.append(src)
        name = f"{vid}{ext}"
        jobs.append(Job(key=vid, dest=str(dest), sources=sources, sha256=sums.get(name) or sums.get(vid)))
    return jobs


def load_checksums(path: str | None) -> dict[str, str]:
    """``sha256sum``-format file (``<hex>  <name>``) → {basename: hex}; empty when not configured."""
    if not path:
        return {}
    out = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2:
            out[Path(parts[1].lstrip("*")).name] = parts[0]
    return out


def build(
    cfg: dict,
    languages: Sequence[str],
    seed: int,
    shards: int,
    out_manifest: str | os.PathLike,
    out_qc: str | os.PathLike,
    out_downloads: str | os.PathLike,
    out_annotations: str | os.PathLike,
    media_dir: str | os.PathLike = "results/corpus/media",
    sleep=None,
) -> pa.Table:
    """The whole source: parse, validate, fetch media, write manifest, QC and reports."""
    qc = QCLog("corpus")
    attributes = list(cfg["attributes"])
    frame, annotations, problems = collect(cfg, languages)
    if not frame.empty:
        problems += validate_rows(frame, attributes, (0.0, 1.0), source="moseas")
    frame = resolve(frame, problems, cfg["on_invalid"], qc, title=f"CMU-MOSEAS release at {cfg['root']}")
    if frame.empty:
        raise ManifestError(
            [Problem(str(cfg["root"]), None, "no labelled segment with a transcript found")],
            title=f"CMU-MOSEAS release at {cfg['root']}",
        )
    for c in ("start", "end"):
        frame[c] = pd.to_numeric(frame[c])
    # Split before fetching: a video that fails to download today must not move others between
    # splits when it arrives tomorrow.
    frame["split"] = split_frame(frame, seed, cfg["splits"])

    jobs = media_jobs(frame, cfg, Path(media_dir))
    fetcher = Fetcher(cfg["download"], seed=seed, **({"sleep": sleep} if sleep else {}))
    outcomes = fetcher.run(
        jobs,
        progress=lambda o: log.log(
            logging.INFO if o.ok else logging.WARNING,
            "media %s: %s via %s (%s)",
            o.key,
            "ok" if o.ok else "FAILED",
            o.source or "-",
            o.reason or f"{o.bytes} B",
        ),
    )
    report = pd.DataFrame([o.row() for o in outcomes], columns=list(_outcome_columns()))
    write_csv(out_downloads, report)
    by_video = {o.key: o for o in outcomes}
    for vid, segs in frame.groupby("video_id")["segment_id"]:
        o = by_video[vid]
        if not o.ok:
            kind = "permanent" if o.permanent else "gave up"
            for s in segs:
                qc.add(f"media unavailable ({kind}): {o.reason}", segment_id=s, video_id=vid)
    ok = {o.key for o in outcomes if o.ok}
    dests = {o.key: o.dest for o in outcomes}
    # Videos cut to a span by yt-dlp start at the span start: shift segment times onto the file.
    for o in outcomes:
        if o.ok and o.section is not None:
            m = frame["video_id"] == o.key
            frame.loc[m, "start"] -= o.section[0]
            frame.loc[m, "end"] -= o.section[0]
    qc.write(out_qc)
    ann = annotations.rename(columns={"_file": "file", "_line": "line"})
    write_parquet(
        out_annotations,
        pa.Table.from_pandas(ann, preserve_index=False),
        provenance={"source": "moseas", "what": "one row per MTurk annotation, attention-check answers kept"},
    )
    try:
        check_success_rate(outcomes, float(cfg["download"]["min_success_rate"]))
    except TooManyFailures as err:
        qc.write(evidence_path(out_qc))  # out_qc and the report go with the failed job's outputs
        raise TooManyFailures(f"{err} Every failed segment: {evidence_path(out_qc)}") from None
    frame = frame.loc[frame["video_id"].isin(ok)].copy()
    # A language whose segments were all dropped (invalid rows, media unavailable): stop here,
    # with the dropped rows' QC where the failed job's outputs are not deleted.
    if unusable := unusable_languages(frame, languages, str(cfg["root"]), out_qc):
        qc.write(evidence_path(out_qc))
        raise ManifestError(unusable, title=f"CMU-MOSEAS release at {cfg['root']}")
    frame["video_path"] = [dests[v] for v in frame["video_id"]]
    frame["audio_path"] = ""
    frame["_idx"] = frame["segment_id"].str.rsplit("_", n=1).str[1].astype(int)
    frame = frame.sort_values(["lang", "video_id", "_idx"]).reset_index(drop=True)
    table = finish_manifest(frame, attributes, seed, shards, cfg["splits"], where=str(out_manifest))
    write_parquet(
        out_manifest,
        table,
        provenance={
            "source": "moseas",
            "root": str(cfg["root"]),
            "languages": list(languages),
            "attributes": attributes,
            "media_sources": dict(Counter(o.source for o in outcomes if o.ok)),
        },
    )
    return table


def _outcome_columns():
    from polysent.corpus.download import Outcome

    return list(Outcome(key="", dest="", ok=False).row())


# --------------------------------------------------------------------------- CLI


def add_cli(sub) -> None:
    p = sub.add_parser("moseas", help="build the manifest from a CMU-MOSEAS release (labels, transcripts, media)")
    p.add_argument("--config", default="config/moseas.yaml", help="workflow config with corpus.moseas")
    p.add_argument("--results", default="results")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    from polysent.config import load_config

    schema_dir = Path(__file__).resolve().parents[3] / "workflow" / "schemas"
    config = load_config(args.config, schema_dir)
    r = Path(args.results)
    table = build(
        config["corpus"]["moseas"],
        config["languages"],
        config["seed"],
        config["shards"],
        r / "corpus/manifest.parquet",
        r / "qc/corpus/all.parquet",
        r / "corpus/downloads.csv",
        r / "corpus/moseas_annotations.parquet",
        r / "corpus/media",
    )
    print(f"wrote {r / 'corpus/manifest.parquet'}: {table.num_rows} segments")
    return 0
