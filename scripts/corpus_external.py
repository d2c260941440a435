"""Snakemake adapter: corpus sources 'moseas' and 'folder' (see polysent.corpus.moseas/.folder)."""

from polysent import runlog
from polysent.corpus import folder, moseas

log = runlog.start(snakemake.log[0])
p, out = snakemake.params, snakemake.output
if p.source == "moseas":
    moseas.build(
        p.cfg,
        p.languages,
        p.seed,
        p.shards,
        out.manifest,
        out.qc,
        out.downloads,
        out.annotations,
        media_dir="results/corpus/media",
    )
else:
    folder.build(
        p.cfg,
        p.languages,
        p.seed,
        p.shards,
        out.manifest,
        out.qc,
        media_dir="results/corpus/media",
        out_downloads=out.downloads,
    )
