"""Snakemake adapter: one predict shard's words, with pseudo-words where a text-free bundle has no transcript."""

from polysent import runlog
from polysent.predict import write_words

log = runlog.start(snakemake.log[0])
write_words(
    snakemake.input.words,
    snakemake.input.manifest,
    snakemake.input.corpus,
    snakemake.wildcards.shard,
    snakemake.output.words,
)
