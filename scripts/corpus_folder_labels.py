"""Snakemake adapter: the folder corpus's labels copied into the manifest (polysent.corpus.folder.relabel)."""

from polysent import runlog
from polysent.corpus import folder

log = runlog.start(snakemake.log[0])
folder.relabel(snakemake.params.cfg, snakemake.input.segments, snakemake.output.manifest, snakemake.output.qc)
