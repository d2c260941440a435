"""Snakemake adapter: word alignment of one shard (see polysent.align)."""

from polysent import runlog
from polysent.align import run_shard

log = runlog.start(snakemake.log[0])
run_shard(**runlog.shard_job(snakemake, snakemake.output.words), media_dir=snakemake.input.media)
