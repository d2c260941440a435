"""Snakemake adapter: the segments and the bundle's stage settings of one predict entry (see polysent.predict)."""

from polysent import runlog
from polysent.predict import write_corpus

log = runlog.start(snakemake.log[0])
out = snakemake.output
write_corpus(
    snakemake.input.bundle,
    snakemake.params.entry,
    snakemake.params.shards,
    snakemake.params.languages,
    out.manifest,
    out.settings,
    out.corpus,
    manifest=snakemake.input.get("manifest"),
    media=snakemake.input.get("media"),
)
