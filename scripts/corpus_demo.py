"""Snakemake adapter of rule corpus_demo: synthesize the demo corpus (polysent.corpus.demo)."""

from pathlib import Path

from polysent import runlog
from polysent.corpus.demo import build_demo_corpus

log = runlog.start(snakemake.log[0])
out = snakemake.output
build_demo_corpus(
    cfg=snakemake.params.cfg,
    languages=list(snakemake.params.languages),
    seed=int(snakemake.params.seed),
    shards=int(snakemake.params.shards),
    resources_dir=Path(snakemake.input.lexicon[0]).parent,
    manifest_path=out.manifest,
    word_truth_path=out.word_truth,
    truth_path=out.truth,
    cutaways_path=out.cutaways,
    media_dir=out.media,
    qc_path=out.qc,
    workers=snakemake.threads,
)
