"""Snakemake adapter: emotion label counts per emotion and language (the paper's Table 2)."""

from polysent import runlog
from polysent.report import table2

log = runlog.start(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
table = table2.build_table2(
    snakemake.input.manifest,  # noqa: F821
    snakemake.params.report,  # noqa: F821
    snakemake.output.csv,  # noqa: F821
)
log.info("Table 2: %d emotion x language rows", len(table))
