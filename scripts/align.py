"""Snakemake adapter: word alignment of one shard (see polysent.align)."""

from polysent import runlog
from polysent.align import run_align

log = runlog.start(snakemake.log[0])
run_align(
    **runlog.shard_job(snakemake),
    media_dir=snakemake.input.media,
    out=snakemake.output.words,
)
