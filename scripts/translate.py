"""Snakemake adapter: translation of one language pair (see polysent.translate)."""

from polysent import runlog
from polysent.translate import run_translate

log = runlog.start(snakemake.log[0])
run_translate(
    manifest=snakemake.input.manifest,
    src=snakemake.wildcards.src,
    tgt=snakemake.wildcards.tgt,
    out=snakemake.output.table,
    qc_path=snakemake.output.qc,
    cfg=snakemake.params.cfg,
)
