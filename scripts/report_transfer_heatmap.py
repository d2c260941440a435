"""Snakemake adapter: the transfer matrix's heatmap (Pearson r and MAE, source x target)."""

from polysent import runlog
from polysent.report import figures

log = runlog.start(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
figures.build_transfer_heatmap(
    snakemake.input.csv,  # noqa: F821
    snakemake.params.report,  # noqa: F821
    snakemake.output.png,  # noqa: F821
)
log.info("transfer heatmap from %s", snakemake.input.csv)  # noqa: F821
