"""Snakemake adapter of rule `train_run`: one run folder of a training group -> results/runs/{exp}/seed{seed}/."""

from pathlib import Path

from polysent.rundirs import publish

source = snakemake.params.source  # noqa: F821 (snakemake is injected)
publish(source, list(snakemake.output))  # noqa: F821
Path(snakemake.log[0]).parent.mkdir(parents=True, exist_ok=True)  # noqa: F821
Path(snakemake.log[0]).write_text(f"linked from {source}\n")  # noqa: F821
