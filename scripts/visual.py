"""Snakemake adapter: visual frames of one shard (see polysent.features.visual)."""

from polysent import runlog
from polysent.features.visual import extract_shard

log = runlog.start(snakemake.log[0])
extract_shard(
    manifest=snakemake.input.manifest,
    shard=snakemake.wildcards.shard,
    out=snakemake.output.frames,
    qc_path=snakemake.output.qc,
    cfg=snakemake.params.cfg,
    threads=snakemake.threads,
)
