"""Snakemake adapter: word alignment of one shard (see polysent.align)."""

from polysent import runlog
from polysent.align import run_align

log = runlog.start(snakemake.log[0])
run_align(
    manifest=snakemake.input.manifest,
    media_dir=snakemake.input.media,
    shard=snakemake.wildcards.shard,
    out=snakemake.output.words,
    qc_path=snakemake.output.qc,
    cfg=snakemake.params.cfg,
    threads=snakemake.threads,
)
