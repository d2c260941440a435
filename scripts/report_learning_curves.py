"""Snakemake adapter: learning curves of every reported run."""

from polysent import runlog
from polysent.report import figures

log = runlog.start(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
figures.build_learning_curves(
    list(snakemake.input.histories),  # noqa: F821
    list(snakemake.input.metrics),  # noqa: F821
    snakemake.params.experiments,  # noqa: F821
    snakemake.params.report,  # noqa: F821
    snakemake.output.png,  # noqa: F821
)
log.info("learning curves: %d runs", len(snakemake.input.histories))  # noqa: F821
