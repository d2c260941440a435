"""Snakemake adapter: media stage of one shard (see polysent.media)."""

from polysent import runlog
from polysent.media import run_shard

log = runlog.start(snakemake.log[0])
run_shard(**runlog.shard_job(snakemake, snakemake.output.wavs))
