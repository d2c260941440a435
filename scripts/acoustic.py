"""Snakemake adapter: acoustic frames of one shard (see polysent.features.acoustic)."""

from polysent import runlog
from polysent.features.acoustic import extract_shard

log = runlog.start(snakemake.log[0])
extract_shard(
    manifest=snakemake.input.manifest,
    media_dir=snakemake.input.media,
    shard=snakemake.wildcards.shard,
    out=snakemake.output.frames,
    qc_path=snakemake.output.qc,
    cfg=snakemake.params.cfg,
    threads=snakemake.threads,
)
