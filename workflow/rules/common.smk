# Config validation, wildcard constraints and the helpers that rules share.
import functools
import os
from pathlib import Path

from polysent.config import check_split_counts, load_schema, validate_config
from polysent.corpus import triggers
from polysent.corpus.moseas import release_files
from polysent.corpus.sharding import shard_ids
from polysent.experiments import ABLATION_STORE
from polysent.imports import ImportGraph
from polysent.features.acoustic import job_mem_mb as acoustic_job_mem_mb
from polysent.report import runs as report_runs
from polysent.translate import active_pairs, pair_from, translations_into
from snakemake.io import apply_wildcards, strip_wildcard_constraints

SCHEMA_DIR = Path(workflow.basedir) / "workflow" / "schemas"
validate_config(config, SCHEMA_DIR)
CONFIG_SCHEMA = load_schema(SCHEMA_DIR)  # read once; slice_of walks it for every rule's params

LANGS = config["languages"]
SHARDS = shard_ids(config["shards"])


wildcard_constraints:
    shard=r"\d{3}",
    lang=r"[a-z]{2}",
    src=r"[a-z]{2}",
    tgt=r"[a-z]{2}",
    seed=r"\d+",
    encoder="|".join(CONFIG_SCHEMA["properties"]["text"]["properties"]["encoder"]["enum"]),


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


def acoustic_mem_mb(media_dir, threads):
    """The acoustic job's mem_mb, from the WAVs of its shard (polysent.features.acoustic.job_mem_mb)."""
    return acoustic_job_mem_mb(media_dir, threads, config["acoustic"])


def slice_of(*keys):
    """The plain config slice at ``keys`` (a params value, so editing it re-runs the rule), without
    the sections of backends that are not selected (``triggers.selected``): editing a setting the
    rule does not read re-runs nothing."""
    node, schema = config, CONFIG_SCHEMA
    for key in keys:
        node, schema = node[key], schema.get("properties", {}).get(key, {})
    return triggers.selected(node, schema) if isinstance(node, dict) else node


def text_slice_with(encoder):
    """``slice_of("text")`` with another encoder selected (a text-encoder ablation's params)."""
    schema = CONFIG_SCHEMA["properties"]["text"]
    return triggers.selected({**config["text"], "encoder": encoder}, schema)


# The manifest, as the feature stages (media, acoustic, visual, align, translate, text) take it:
# ancient, so that a label or split edited in it re-runs none of them. Their `corpus` params
# (corpus_trigger) carry a digest of the columns they read instead, and CORPUS_DONE (the corpus
# job's QC file) re-runs them whenever the corpus job re-runs. See polysent.corpus.triggers.
MANIFEST = "results/corpus/manifest.parquet"
CORPUS_DONE = "results/qc/corpus/all.parquet"


def manifest_for_features():
    """The manifest as a feature stage's input (ancient: its labels and split are no trigger)."""
    return ancient(MANIFEST)


def corpus_trigger(by=None):
    """A feature rule's `corpus` params: a digest of the manifest's feature columns of the job's
    rows (``by``: the wildcard naming them, ``shard``, ``lang`` or ``src``; None: all rows).

    Read when the job is planned, from the manifest as it is. Behind a corpus job that re-runs in
    the same invocation the job is planned by CORPUS_DONE (Snakemake checks no params downstream
    of a job that re-runs) and its params are read when it runs, from the new manifest."""

    def corpus(wildcards):
        select = {}
        if by == "shard":
            select["shard"] = int(wildcards.shard)
        elif by in ("lang", "src"):
            select["lang"] = wildcards[by]
        return triggers.segments_digest(MANIFEST, **select)

    return corpus


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


# Word vectors per language: the configured encoder's, and a text-encoder ablation's (whose stores
# are polysent.experiments.ABLATION_STORE).
TEXT = "results/text/{lang}.parquet"
ABLATION_TEXT = "results/ablation/text_{encoder}/text/{lang}.parquet"

# Text encoders of the reported rows' ablations (an entry's `text_encoder`): their text and store
# stages (rules text_ablation, store_ablation) run for every language, and their QC files join
# the summary.
ABLATION_ENCODERS = sorted(
    {EXPERIMENTS[n]["text_encoder"] for n in REPORTED if EXPERIMENTS[n].get("text_encoder")}
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
    values = {
        "shard": SHARDS,
        "lang": LANGS,
        "pair": [f"{s}-{t}" for s, t in pairs],
        "encoder": ABLATION_ENCODERS,
    }
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


def store_input_files(text):
    """The store's inputs, its language's word vectors read from ``text``."""
    return dict(
        manifest="results/corpus/manifest.parquet",
        align=expand("results/align/{shard}.parquet", shard=SHARDS),
        acoustic=expand("results/acoustic/{shard}.parquet", shard=SHARDS),
        visual=expand("results/visual/{shard}.parquet", shard=SHARDS),
        text=text,
        # segments with a QC record of these stages stay out of the store (store.exclude_qc_from)
        prior_qc=expand(
            "results/qc/{stage}/{shard}.parquet",
            stage=config["store"]["exclude_qc_from"],
            shard=SHARDS,
        ),
        lib=lib_for("scripts/store.py"),
    )


def store_translation_inputs(wildcards):
    """The translated text and table a store of the job's language joins (none without a pair)."""
    pair = pair_from(config, wildcards.lang)
    if pair is None:
        return {}
    src, tgt = pair
    # a text-encoder ablation's store joins that ablation's text of the translations
    encoder = getattr(wildcards, "encoder", None)
    return {
        "text_tr": (ABLATION_TEXT if encoder else TEXT).format(lang=tgt, encoder=encoder),
        "translate": f"results/translate/{src}-{tgt}.parquet",
    }


def store_translation_language(wildcards):
    """The language a store's translated columns are in (None without a pair)."""
    return (pair_from(config, wildcards.lang) or (None, None))[1]
