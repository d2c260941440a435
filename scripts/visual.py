"""Snakemake adapter: visual frames of one shard (see polysent.features.visual)."""

from polysent import runlog
from polysent.features.visual import run_shard

log = runlog.start(snakemake.log[0])
run_shard(**runlog.shard_job(snakemake, snakemake.output.frames))
