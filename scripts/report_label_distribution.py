"""Snakemake adapter: sentiment label distribution per language (paper Fig. 1)."""

from polysent import runlog
from polysent.report import figures

log = runlog.start(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
counts = figures.build_label_distribution(
    snakemake.input.manifest,  # noqa: F821
    snakemake.params.report,  # noqa: F821
    snakemake.output.png,  # noqa: F821
)
log.info("label distribution: %d segments", int(counts["count"].sum()))
