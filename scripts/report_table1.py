"""Snakemake adapter: Table 1 (+ Markdown) and the findings (paired bootstrap) from the runs' metrics and
test predictions."""

from polysent import runlog
from polysent.report import table1

log = runlog.start(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
table = table1.build_table1(
    list(snakemake.input.metrics),  # noqa: F821
    list(snakemake.input.predictions),  # noqa: F821
    snakemake.params.experiments,  # noqa: F821
    snakemake.params.report,  # noqa: F821
    snakemake.params.findings,  # noqa: F821
    snakemake.output.csv,  # noqa: F821
    snakemake.output.md,  # noqa: F821
    snakemake.output.findings,  # noqa: F821
)
log.info("Table 1: %d rows from %d runs", len(table), len(snakemake.input.metrics))  # noqa: F821
