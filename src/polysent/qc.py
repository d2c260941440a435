"""Quality-control records: what a stage could not process, and why.

Each stage writes one QC Parquet file per job (possibly empty) with the columns of
:data:`QC_SCHEMA`. Nothing is dropped silently: a segment missing from a later store must appear
here with a reason. :func:`summarise` counts them and :func:`check_threshold` fails the run only
when the configured failure rate is crossed.

The plausibility checks at the end (:func:`audio_problems`, :func:`alignment_problems`) say, with
the numbers, why a segment's transcript and audio cannot belong together; the align stage runs them.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from polysent import contracts
from polysent.errors import PolysentError, raise_if_environment
from polysent.io import write_csv, write_parquet

QC_SCHEMA = contracts.QC.schema()


class QCThresholdExceeded(PolysentError, RuntimeError):
    """More segments failed in a stage than the configured maximum rate allows."""


@dataclass
class QCLog:
    """Collects QC records for one stage and job; write with :meth:`write`."""

    stage: str
    records: list[dict] = field(default_factory=list)

    def add(
        self, reason: str, segment_id: str | None = None, video_id: str | None = None, detail: str | None = None
    ) -> None:
        """Record one segment's (or video's) data problem.

        An environment error is never a data problem: called while handling one (disk full, read-only,
        I/O error, too many open files, quota), or with a tool's message naming one, this raises
        :class:`polysent.errors.EnvironmentFailure` instead, so the job fails and nothing is recorded.
        """
        raise_if_environment(sys.exc_info()[1], f"{reason} {detail or ''}")
        self.records.append(
            {"segment_id": segment_id, "video_id": video_id, "stage": self.stage, "reason": reason, "detail": detail}
        )

    def __len__(self) -> int:
        return len(self.records)

    def failed_segments(self) -> set[str]:
        return {r["segment_id"] for r in self.records if r["segment_id"] is not None}

    def failed_videos(self) -> set[str]:
        return {r["video_id"] for r in self.records if r["video_id"] is not None}

    def to_table(self) -> pa.Table:
        return pa.Table.from_pylist(self.records, schema=QC_SCHEMA)

    def write(self, path: str | os.PathLike) -> None:
        write_parquet(path, self.to_table(), provenance={"stage": self.stage})


def read_qc(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    frames = [contracts.read(p, contracts.QC).to_pandas() for p in paths]
    frames = [f for f in frames if len(f)]
    if not frames:
        return QC_SCHEMA.empty_table().to_pandas()
    return pd.concat(frames, ignore_index=True)


def summarise(qc: pd.DataFrame, totals: dict[str, int]) -> pd.DataFrame:
    """One row per stage: failures, total segments, rate, and the most common reason."""
    rows = []
    for stage in sorted(set(totals) | set(qc["stage"].unique())):
        part = qc[qc["stage"] == stage]
        total = totals.get(stage, 0)
        n = int(part["segment_id"].nunique()) if len(part) else 0
        top = part["reason"].value_counts().index[0] if len(part) else ""
        rows.append(
            {
                "stage": stage,
                "failed": n,
                "total": total,
                "rate": (n / total) if total else 0.0,
                "top_reason": top,
            }
        )
    return pd.DataFrame(rows, columns=["stage", "failed", "total", "rate", "top_reason"])


def write_summary(path: str | os.PathLike, summary: pd.DataFrame) -> None:
    write_csv(path, summary)


def check_threshold(summary: pd.DataFrame, max_failure_rate: float) -> None:
    """Raise :class:`QCThresholdExceeded` naming each stage over ``max_failure_rate``."""
    bad = summary[summary["rate"] > max_failure_rate]
    if len(bad):
        lines = "\n".join(
            f"  {r.stage}: {r.failed}/{r.total} failed ({r.rate:.1%}), most often: {r.top_reason}"
            for r in bad.itertuples()
        )
        raise QCThresholdExceeded(
            f"QC failure rate above {max_failure_rate:.1%} (config qc.max_failure_rate):\n{lines}"
        )


def qc_path(results: str | os.PathLike, stage: str, key: str) -> Path:
    return Path(results) / "qc" / stage / f"{key}.parquet"


def summarise_run(
    manifest_path: str | os.PathLike,
    qc_paths: Iterable[str | os.PathLike],
    summary_path: str | os.PathLike,
    records_path: str | os.PathLike,
    max_failure_rate: float,
) -> pd.DataFrame:
    """Gather every stage's QC files into one table and a per-stage summary, then apply the threshold.

    The rate of a stage is its failed segments over the segments it was given: the manifest's
    segments, plus (for the corpus stage) those it dropped before the manifest was written. When
    the threshold stops the run, the records are also left in ``<records>.rejected.csv``, which
    Snakemake does not delete with the failed job's outputs, and the message names it.
    """
    manifest = contracts.read(manifest_path, contracts.MANIFEST, columns=["segment_id", "video_id"]).to_pandas()
    qc = read_qc(qc_paths)
    n = len(manifest)
    stages = set(qc["stage"].unique())
    totals = {stage: n for stage in stages}
    if "corpus" in totals:
        dropped = qc.loc[qc["stage"] == "corpus", "segment_id"].dropna().nunique()
        totals["corpus"] = n + dropped
    # A video-level failure (no segment id) counts every segment of that video.
    video_level = qc["segment_id"].isna() & qc["video_id"].notna()
    if video_level.any():
        per_video = manifest.groupby("video_id")["segment_id"].apply(list)
        expanded = [
            {**row, "segment_id": seg}
            for row in qc[video_level].to_dict("records")
            for seg in per_video.get(row["video_id"], [])
        ]
        qc = pd.concat([qc[~video_level], pd.DataFrame(expanded, columns=qc.columns)], ignore_index=True)
    summary = summarise(qc, totals)
    records = qc.sort_values(["stage", "segment_id"], na_position="last")
    write_csv(records_path, records)
    write_summary(summary_path, summary)
    try:
        check_threshold(summary, max_failure_rate)
    except QCThresholdExceeded as err:
        # Snakemake deletes a failed job's outputs (both files above): the evidence the message
        # points to is written again under names that are not outputs.
        kept = Path(records_path).with_name(f"{Path(records_path).stem}.rejected.csv")
        write_csv(kept, records)
        raise QCThresholdExceeded(f"{err}\n  every record: {kept}") from None
    return summary


# --------------------------------------------------------------------------- plausibility
# Checks of one segment whose numbers say the transcript and the audio cannot belong together.
# The align stage runs them (``align.plausibility`` in the config; a None bound is
# off) and leaves a failing segment out of its store, so it reaches QC instead of training.

ZERO_LENGTH = 1e-3  # s: below one MFCC shift, a word "aligned" to a point


def loudness_dbfs(samples: np.ndarray) -> float:
    """RMS level of float samples in [-1, 1], in dB full scale (-inf for digital silence)."""
    x = np.asarray(samples, np.float64)
    rms = float(np.sqrt(np.mean(x * x))) if x.size else 0.0
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def _bound(cfg: dict, key: str) -> str:
    return f"align.plausibility.{key} = {cfg[key]}"


def audio_problems(n_words: int, duration: float, dbfs: float, cfg: dict) -> list[str]:
    """Before aligning: too many words for the segment's duration, or (near-)silent audio."""
    out = []
    wps, limit = n_words / duration if duration > 0 else math.inf, cfg.get("max_words_per_second")
    if limit is not None and wps > limit:
        out.append(
            f"implausible transcript: {wps:.1f} words per second ({n_words} words in "
            f"{duration:.2f} s; bound {_bound(cfg, 'max_words_per_second')})"
        )
    floor = cfg.get("min_loudness_dbfs")
    if floor is not None and dbfs < floor:
        what = "digital silence" if dbfs == -math.inf else "near-silent audio"
        out.append(f"{what}: RMS {dbfs:.1f} dBFS over {duration:.2f} s (bound {_bound(cfg, 'min_loudness_dbfs')})")
    return out


def alignment_problems(n_words: int, words: list[tuple[str, float, float]], cfg: dict) -> list[str]:
    """After aligning: most words of zero length, or many transcript words missing from the output."""
    out = []
    zero = sum(1 for _, s, e in words if e - s < ZERO_LENGTH)
    limit = cfg.get("max_zero_length_share")
    if limit is not None and words and zero / len(words) > limit:
        out.append(
            f"implausible alignment: {zero} of {len(words)} words aligned to zero length "
            f"({zero / len(words):.0%}; bound {_bound(cfg, 'max_zero_length_share')})"
        )
    missing, limit = max(n_words - len(words), 0), cfg.get("max_missing_word_share")
    if limit is not None and n_words and missing / n_words > limit:
        out.append(
            f"implausible alignment: {len(words)} of {n_words} transcript words aligned "
            f"({missing / n_words:.0%} missing; bound {_bound(cfg, 'max_missing_word_share')})"
        )
    return out


def screen_audio(segments: list, cfg: dict, qc: QCLog) -> list:
    """The segments (``.wav`` clip, ``.words``, ``.duration``) that pass :func:`audio_problems`;
    each other one gets its QC record (one line, every failed check with its numbers)."""
    import soundfile as sf

    kept = []
    for seg in segments:
        why = audio_problems(len(seg.words), seg.duration, loudness_dbfs(sf.read(seg.wav, dtype="float32")[0]), cfg)
        if why:
            qc.add("; ".join(why), seg.segment_id, seg.video_id)
        else:
            kept.append(seg)
    return kept
