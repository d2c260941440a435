"""Snakemake adapter: AdaMML modality utilisation rates per setting (paper Fig. 4)."""

from polysent import runlog
from polysent.report import figures

log = runlog.start(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
util = figures.build_modality_utilisation(
    list(snakemake.input.decisions),  # noqa: F821
    snakemake.params.experiments,  # noqa: F821
    snakemake.params.report,  # noqa: F821
    snakemake.output.png,  # noqa: F821
    snakemake.output.csv,  # noqa: F821
)
log.info("modality utilisation: %d experiments", util["experiment"].nunique())
