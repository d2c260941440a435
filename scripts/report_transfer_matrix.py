"""Snakemake adapter: the cross-lingual transfer matrix (csv + Markdown) from the transfer runs' metrics."""

from polysent import runlog
from polysent.report import transfer

log = runlog.start(snakemake.log[0])
table = transfer.build_transfer_matrix(
    list(snakemake.input.metrics),
    snakemake.params.experiments,
    snakemake.params.text_encoder,
    snakemake.output.csv,
    snakemake.output.md,
)
log.info("transfer matrix: %d cells from %d runs", len(table), len(snakemake.input.metrics))
