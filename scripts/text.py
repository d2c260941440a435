"""Snakemake adapter: word vectors of one language (see polysent.text)."""

from polysent import runlog
from polysent.text import run_text

log = runlog.start(snakemake.log[0])
run_text(
    manifest=snakemake.input.manifest,
    align_paths=snakemake.input.align,
    translate_paths=snakemake.input.translate,
    lang=snakemake.wildcards.lang,
    out=snakemake.output.vectors,
    qc_path=snakemake.output.qc,
    cfg=snakemake.params.cfg,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
)
