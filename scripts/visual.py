"""Snakemake adapter: visual frames of one shard (see polysent.features.visual)."""

from polysent import runlog
from polysent.features.visual import extract_shard

log = runlog.start(snakemake.log[0])
extract_shard(
    **runlog.shard_job(snakemake),
    out=snakemake.output.frames,
)
