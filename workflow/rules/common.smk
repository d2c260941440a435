# Config validation, wildcard constraints and the helpers that rules share.
import functools
import os
from pathlib import Path

from polysent.config import check_split_counts, validate_config
from polysent.corpus.moseas import release_files
from polysent.corpus.sharding import shard_ids
from polysent.imports import ImportGraph
from polysent.media import largest_wavs_mb
from polysent.report import runs as report_runs
from polysent.translate import active_pairs, pair_from, translations_into
from snakemake.io import apply_wildcards, strip_wildcard_constraints

validate_config(config, Path(workflow.basedir) / "workflow" / "schemas")

LANGS = config["languages"]
SHARDS = shard_ids(config["shards"])


wildcard_constraints:
    shard=r"\d{3}",
    lang=r"[a-z]{2}",
    src=r"[a-z]{2}",
    tgt=r"[a-z]{2}",
    seed=r"\d+",


LIBRARY = ImportGraph(Path(workflow.basedir) / "src" / "polysent")


@functools.cache
def _library_closure(script):
    return tuple(LIBRARY.closure(Path(workflow.basedir) / script))


def lib_for(script):
    """The library files that ``script`` (a path from the repository root) imports, directly or
    not, as inputs, so that editing any of them re-runs the jobs running it.

    Snakemake does not track imports; ``polysent.imports`` reads them from the code once per
    script at DAG build. Paths are relative to the working directory so that a moved or copied
    project does not see its inputs as changed.
    """
    root = LIBRARY.package_dir
    return [os.path.relpath(root / m) for m in _library_closure(script)]


def from_workflow(path):
    """``path`` (relative to the repository root) as seen from the working directory, so that
    `snakemake -s /path/to/Snakefile` run from another folder finds the workflow's own files; the
    same relative path as before when run from the repository root."""
    return os.path.relpath(Path(workflow.basedir) / path)


# Peak memory of the acoustic stage per MB of the WAVs it analyses at once (whole-WAV librosa
# analysis, the paper's settings), measured: docs/BENCHMARKS.md "Acoustic memory".
ACOUSTIC_MB_PER_WAV_MB = 64
ACOUSTIC_BASE_MB = 2000


def acoustic_mem_mb(media_dir, threads):
    """The acoustic job's mem_mb: the base, plus the measured rate times the ``threads`` largest
    WAVs of its shard (a 2-hour clip at 22.05 kHz, 318 MB, asks ~22 GB; a demo shard the base)."""
    return int(ACOUSTIC_BASE_MB + ACOUSTIC_MB_PER_WAV_MB * largest_wavs_mb(media_dir, threads))


def slice_of(*keys):
    """The plain config slice at ``keys`` (a params value, so editing it re-runs the rule)."""
    node = config
    for key in keys:
        node = node[key]
    return node


# The report selection: the experiments (config["experiments"]) that the report tabulates, and so
# the ones trained (train.smk) and read back (report.smk). Computed here once, at parse time; the
# selection logic is unit-tested in polysent.report.runs.
EXPERIMENTS = config.get("experiments") or {}
REPORT_TABLE1 = report_runs.select(EXPERIMENTS, config["report"], "table1")
REPORT_EMOTIONS = report_runs.select(EXPERIMENTS, config["report"], "emotions")
REPORTED = REPORT_TABLE1 + REPORT_EMOTIONS
# Once the corpus exists: a reported row whose evaluation language has no test segments (or
# training language no train/valid ones) stops the run here, not as a blank row after training.
check_split_counts(
    config,
    REPORTED,
    "results/corpus/manifest.parquet",
    release_files(config) if config["corpus"]["source"] != "demo" else [],
)


def reported_seeds(entry):
    """The seeds the report asks of one experiment entry."""
    return report_runs.seeds_of(entry, config["report"])


# Helpers of the report rules (report.smk).


def reported_run_files(names, filename):
    """``filename`` of every reported seed of the experiments ``names`` (a plain list: the
    selection is known at parse time)."""
    return report_runs.run_files(EXPERIMENTS, names, config["report"], filename, "results/runs")


def experiment_entries(names):
    """The experiment entries of ``names``, in their order (a params value)."""
    return {n: EXPERIMENTS[n] for n in names}


def report_table(path, caption, label):
    """``path`` as a table of the HTML report, captioned by workflow/report/<caption>.rst."""
    return report(
        path, caption=f"../report/{caption}.rst", category="Tables", labels={"table": label}
    )


def report_figure(path, caption, label):
    """``path`` as a figure of the HTML report, captioned by workflow/report/<caption>.rst."""
    return report(
        path, caption=f"../report/{caption}.rst", category="Figures", labels={"figure": label}
    )


def report_log(name):
    """The log of report rule ``report_<name>``."""
    return f"logs/report/{name}.log"


def outputs_of(*names):
    """Every output file of the rules ``names`` (so FINAL_TARGETS never repeats a path)."""
    return [str(f) for name in names for f in getattr(rules, name).output]


# What `snakemake` builds with no target. Each stage file appends its final artifacts, so the
# default target is always the furthest stage that exists and no file edits another's list.
FINAL_TARGETS = []


def all_qc_files():
    """Every concrete `qc` output of the workflow's rules, expanded over its wildcards.

    Called from qc.smk, which is included last, so every stage's rules are defined by then.
    """
    pairs = active_pairs(config)
    values = {"shard": SHARDS, "lang": LANGS, "pair": [f"{s}-{t}" for s, t in pairs]}
    files = []
    for r in workflow.rules:
        if r.name == "qc_summary" or "qc" not in r.output.keys():
            continue
        # a predict entry's stage jobs (predict.smk) check new videos, not the corpus
        if "name" in r.wildcard_names:
            continue
        pattern = strip_wildcard_constraints(str(r.output.qc))
        names = set(r.wildcard_names)
        if {"src", "tgt"} <= names:
            files += [apply_wildcards(pattern, dict(src=s, tgt=t)) for s, t in pairs]
        else:
            files += expand(pattern, **{k: values[k] for k in names})
    return sorted(set(files))


def translation_tables_into(wildcards):
    """Translation tables whose target is the job's language (text encodes their words)."""
    pairs = translations_into(config, wildcards.lang)
    return [f"results/translate/{src}-{tgt}.parquet" for src, tgt in pairs]


def store_translation_inputs(wildcards):
    """The translated text and table a store of the job's language joins (none without a pair)."""
    pair = pair_from(config, wildcards.lang)
    if pair is None:
        return {}
    src, tgt = pair
    return {
        "text_tr": f"results/text/{tgt}.parquet",
        "translate": f"results/translate/{src}-{tgt}.parquet",
    }


def store_translation_language(wildcards):
    """The language a store's translated columns are in (None without a pair)."""
    return (pair_from(config, wildcards.lang) or (None, None))[1]
