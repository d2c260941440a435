"""Snakemake adapter of rule `train`: one experiment x seed -> results/runs/{exp}/seed{seed}/."""

from pathlib import Path

from polysent import runlog
from polysent.train import run_experiment

log = runlog.start(snakemake.log[0])  # noqa: F821 (snakemake is injected)
stores = {
    key.removeprefix("store_"): path
    for key, path in snakemake.input.items()  # noqa: F821
    if key.startswith("store_")
}
run_experiment(
    stores,
    snakemake.params.experiment,  # noqa: F821
    snakemake.params.train,  # noqa: F821
    seed=int(snakemake.wildcards.seed),  # noqa: F821
    out_dir=Path(snakemake.output.metrics).parent,  # noqa: F821
    exp_name=snakemake.wildcards.exp,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
)
