"""Snakemake adapter of rule `train_run`: one run folder of a training group -> results/runs/{exp}/seed{seed}/."""

from polysent.rundirs import publish

publish(snakemake.params.source, list(snakemake.output), log=snakemake.log[0])  # noqa: F821 (snakemake is injected)
