"""Running the stages: media → acoustic / visual → align per shard, then text → store per
language, with the stage functions the workflow's rules call, into one work folder. This is the
only copy of the feature DAG for new videos: ``polysent predict`` and the workflow's rule
``predict`` both run it."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from polysent import io
from polysent.predict.common import plural
from polysent.predict.segments import add_pseudo_words
from polysent.predict.settings import shard_stage_configs

log = logging.getLogger("polysent.predict")


def _align(manifest: Path, frame: pd.DataFrame, shard: int, work: Path, qc: Path, cfg: dict, threads: int, pseudo):
    """Align one shard's transcribed segments; segments without a transcript (text-free bundle)
    take pseudo-words instead, and a shard with none to align does not start the aligner."""
    from polysent import align
    from polysent.qc import QCLog

    out = work / "align" / f"{shard}.parquet"
    in_shard = frame[frame["shard"] == shard]
    pseudo_ids, window = pseudo
    pooled = [s for s in pseudo_ids if s in set(in_shard["segment_id"])]
    to_align = len(in_shard) - len(pooled)
    if pooled:
        log.info(
            "align shard %s: %s without a transcript take pseudo-words of ~%g s (text-free bundle); "
            "aligning the %s with one",
            shard,
            plural(len(pooled), "segment"),
            window,
            plural(to_align, "other"),
        )
    if to_align:
        align.run_shard(manifest, shard, out, qc, cfg, threads=threads, media_dir=work / "media" / str(shard))
    else:
        io.write_parquet(out, align.words_table([]), provenance=align.provenance(cfg))
        QCLog("align").write(qc)
    if pooled:
        add_pseudo_words(out, frame, pooled, window)


def run_features(
    manifest: Path,
    frame: pd.DataFrame,
    cfgs_by_lang: dict[str, dict],
    work: Path,
    *,
    threads: int,
    pseudo: tuple[list[str], float],
    text_seeds: dict[str, int],
    progress: bool = True,
) -> tuple[dict[str, Path], list[Path]]:
    """The stages for every segment of ``manifest`` (``frame``: the same rows), into ``work``:
    returns the stores by language and the QC files in stage order (the first stage's reason of
    a segment wins). ``pseudo`` = (segment ids, window): segments without a transcript
    (text-free bundle) get pseudo-words instead of aligned words. ``text_seeds``: the text
    stage's seed per language."""
    # BLAS/OpenMP threads decide the order of float sums (the last bit of acoustic features): the
    # same count in this process as in a workflow job of `threads` threads
    with threadpool_limits(limits=threads):
        return _run(manifest, frame, cfgs_by_lang, work, threads, progress, pseudo, text_seeds)


def _run(manifest, frame, cfgs_by_lang, work, threads, progress, pseudo, text_seeds):
    from polysent import media, store, text
    from polysent.features import acoustic, visual

    first = shard_stage_configs(cfgs_by_lang)  # shard stages run once for every language
    shards = sorted(int(s) for s in frame["shard"].unique())
    steps = [("media", s) for s in shards] + [(st, s) for s in shards for st in ("acoustic", "visual", "align")]
    steps += [(st, lang) for lang in sorted(cfgs_by_lang) for st in ("text", "store")]
    qc_paths = []
    bar = tqdm(steps, desc="predict", disable=not progress)
    for stage, key in bar:
        bar.set_postfix_str(f"{stage} {key}")
        qc = work / "qc" / stage / f"{key}.parquet"
        qc_paths.append(qc)
        if stage == "media":
            media.run_shard(
                manifest, key, work / "media" / str(key), qc, first["media"], threads=threads, progress=False
            )
        elif stage == "acoustic":
            acoustic.run_shard(
                manifest,
                key,
                work / "acoustic" / f"{key}.parquet",
                qc,
                first["acoustic"],
                threads=threads,
                media_dir=work / "media" / str(key),
                progress=False,
            )
        elif stage == "visual":
            visual.run_shard(
                manifest, key, work / "visual" / f"{key}.parquet", qc, first["visual"], threads=threads, progress=False
            )
        elif stage == "align":
            _align(manifest, frame, key, work, qc, first["align"], threads, pseudo)
        elif stage == "text":
            with threadpool_limits(limits=1):  # the text rule's one thread, as training's text stage ran
                text.run_language(
                    manifest,
                    key,
                    work / "text" / f"{key}.parquet",
                    qc,
                    cfgs_by_lang[key]["text"],
                    threads=1,
                    seed=text_seeds[key],
                    align_paths=[work / "align" / f"{s}.parquet" for s in shards],
                    translate_paths=[],
                )
        else:  # no translation columns: they only serve training-time augmentation
            store.run_language(
                manifest,
                key,
                work / "store" / f"{key}.parquet",
                qc,
                cfgs_by_lang[key]["store"],
                align_paths=[work / "align" / f"{s}.parquet" for s in shards],
                acoustic_paths=[work / "acoustic" / f"{s}.parquet" for s in shards],
                visual_paths=[work / "visual" / f"{s}.parquet" for s in shards],
                text_path=work / "text" / f"{key}.parquet",
            )
    return {lang: work / "store" / f"{lang}.parquet" for lang in cfgs_by_lang}, qc_paths
