"""Snakemake adapter: predicted vs true sentiment per Table 1 row."""

from polysent import runlog
from polysent.report import figures

log = runlog.start(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
figures.build_scatter(
    list(snakemake.input.predictions),  # noqa: F821
    snakemake.input.table1,  # noqa: F821
    snakemake.params.report,  # noqa: F821
    snakemake.output.png,  # noqa: F821
)
log.info("scatter: %d runs", len(snakemake.input.predictions))  # noqa: F821
