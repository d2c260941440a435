# Config validation, wildcard constraints and the helpers that rules share.
import os
from pathlib import Path

from polysent.config import validate_config
from polysent.corpus.sharding import shard_ids
from polysent.translate import active_pairs
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


def lib(*modules):
    """Library files given as inputs, so that editing one re-runs the jobs using it.

    Snakemake does not track imports. Paths are relative to the working directory so that a
    moved or copied project does not see its inputs as changed.
    """
    root = Path(workflow.basedir) / "src" / "polysent"
    return [os.path.relpath(root / m) for m in modules]


def slice_of(*keys):
    """The plain config slice at ``keys`` (a params value, so editing it re-runs the rule)."""
    node = config
    for key in keys:
        node = node[key]
    return node


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
        pattern = strip_wildcard_constraints(str(r.output.qc))
        names = set(r.wildcard_names)
        if {"src", "tgt"} <= names:
            files += [apply_wildcards(pattern, dict(src=s, tgt=t)) for s, t in pairs]
        else:
            files += expand(pattern, **{k: values[k] for k in names})
    return sorted(set(files))
