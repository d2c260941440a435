"""Snakemake adapter: MMSA .pkl and CMU-SDK .csd exports of one feature store (polysent.export)."""

from polysent import runlog
from polysent.export import run_export

log = runlog.start(snakemake.log[0])
run_export(
    store_path=snakemake.input.store,
    align_paths=snakemake.input.align,
    pkl_out=snakemake.output.pkl,
    csd_dir=snakemake.output.csd,
    cfg=snakemake.params.cfg,
)
