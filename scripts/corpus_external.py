"""Snakemake adapter: corpus sources 'moseas' and 'folder' (see polysent.corpus.moseas/.folder)."""

from polysent import runlog
from polysent.corpus import folder, moseas

log = runlog.start(snakemake.log[0])
p, out = snakemake.params, snakemake.output
media_dir = "results/corpus/media"  # downloads resume here: not a declared output (see corpus_external.smk)
if p.source == "moseas":
    moseas.build(
        p.cfg, p.languages, p.seed, p.shards, out.manifest, out.qc, out.downloads, out.annotations, media_dir=media_dir
    )
else:
    folder.build(
        p.cfg, p.languages, p.seed, p.shards, out.manifest, out.qc, out_downloads=out.downloads, media_dir=media_dir
    )
