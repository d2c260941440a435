"""Snakemake adapter: a bundle's predictions from the stores of one predict entry (see polysent.predict)."""

from polysent import runlog
from polysent.predict import write_predictions

log = runlog.start(snakemake.log[0])
inp = snakemake.input
stores = {key.removeprefix("store_"): path for key, path in inp.items() if key.startswith("store_")}
write_predictions(inp.bundle, inp.manifest, inp.corpus, stores, list(inp.qc), snakemake.output.csv)
