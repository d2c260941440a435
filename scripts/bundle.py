"""Snakemake adapter: the self-contained model bundle of one run (see polysent.bundle)."""

from polysent import runlog
from polysent.bundle import make_bundle

log = runlog.start(snakemake.log[0])
stores = {key.removeprefix("store_"): path for key, path in snakemake.input.items() if key.startswith("store_")}
make_bundle(snakemake.params.run_dir, stores, snakemake.output.bundle)
