"""Snakemake adapter: the cross-lingual transfer matrix (csv + Markdown) from the transfer runs' metrics."""

from polysent import runlog
from polysent.report import transfer

log = runlog.start(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
table = transfer.build_transfer_matrix(
    list(snakemake.input.metrics),  # noqa: F821
    snakemake.params.experiments,  # noqa: F821
    snakemake.params.text_encoder,  # noqa: F821
    snakemake.output.csv,  # noqa: F821
    snakemake.output.md,  # noqa: F821
)
log.info("transfer matrix: %d cells from %d runs", len(table), len(snakemake.input.metrics))  # noqa: F821
