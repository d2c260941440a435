# Config validation, wildcard constraints and the helpers that rules share.
from pathlib import Path

from polysent.config import validate_config
from polysent.corpus.sharding import shard_ids

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
    """Library files a rule depends on: editing one re-runs that rule (Snakemake does not track imports)."""
    return [str(Path(workflow.basedir) / "src" / "polysent" / m) for m in modules]


def slice_of(*keys):
    """The plain config slice at ``keys`` (a params value, so editing it re-runs the rule)."""
    node = config
    for key in keys:
        node = node[key]
    return node


# What `snakemake` builds with no target. Each stage file appends its final artifacts, so the
# default target is always the furthest stage that exists and no file edits another's list.
FINAL_TARGETS = []
