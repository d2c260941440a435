"""Snakemake adapter: acoustic frames of one shard (see polysent.features.acoustic)."""

from polysent import runlog
from polysent.features.acoustic import extract_shard

log = runlog.start(snakemake.log[0])
extract_shard(
    **runlog.shard_job(snakemake),
    media_dir=snakemake.input.media,
    out=snakemake.output.frames,
)
