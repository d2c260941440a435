"""Snakemake adapter: emotion detection precision / recall / F1 over seeds."""

from polysent import runlog
from polysent.report import emotions

log = runlog.start(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
table = emotions.build_emotions(
    list(snakemake.input.metrics),  # noqa: F821
    snakemake.params.experiments,  # noqa: F821
    snakemake.output.csv,  # noqa: F821
)
log.info("emotions: %d rows", len(table))
