"""Snakemake adapter: acoustic frames of one shard (see polysent.features.acoustic)."""

from polysent import runlog
from polysent.features.acoustic import run_shard

log = runlog.start(snakemake.log[0])
run_shard(**runlog.shard_job(snakemake, snakemake.output.frames), media_dir=snakemake.input.media)
