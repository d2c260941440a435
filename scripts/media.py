"""Snakemake adapter: media stage of one shard (see polysent.media)."""

from polysent import runlog
from polysent.media import build_shard

log = runlog.start(snakemake.log[0])
build_shard(
    **runlog.shard_job(snakemake),
    out_dir=snakemake.output.wavs,
)
