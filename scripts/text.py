"""Snakemake adapter: word vectors of one language (see polysent.text)."""

from polysent import runlog
from polysent.text import run_language

log = runlog.start(snakemake.log[0])
run_language(
    **runlog.language_job(snakemake, snakemake.output.vectors),
    threads=snakemake.threads,
    seed=snakemake.params.seed,
    align_paths=snakemake.input.align,
    translate_paths=snakemake.input.translate,
)
