"""Snakemake adapter of rule `predict`: one predict entry, run as `polysent predict` runs it (see polysent.predict)."""

from polysent import runlog
from polysent.predict import run_entry

log = runlog.start(snakemake.log[0])
run_entry(snakemake.input.bundle, snakemake.params.entry, snakemake.output.csv, snakemake.output.work, progress=False)
