"""Snakemake adapter: media stage of one shard (see polysent.media)."""

from polysent import runlog
from polysent.media import build_shard

log = runlog.start(snakemake.log[0])
build_shard(
    manifest=snakemake.input.manifest,
    shard=snakemake.wildcards.shard,
    out_dir=snakemake.output.wavs,
    qc_path=snakemake.output.qc,
    cfg=snakemake.params.cfg,
    threads=snakemake.threads,
)
