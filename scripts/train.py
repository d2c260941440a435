"""Snakemake adapter of rule `train`: one training group -> results/train_groups/{group}/.

Every seed of the group is trained once in this one process and evaluated for each member
experiment (polysent.train.run_group); rule `train_run` links the run folders to results/runs/.
"""

from polysent import runlog
from polysent.train import run_group

log = runlog.start(snakemake.log[0])  # noqa: F821 (snakemake is injected)
stores = {
    key.removeprefix("store_"): path
    for key, path in snakemake.input.items()  # noqa: F821
    if key.startswith("store_")
}
params = snakemake.params  # noqa: F821
run_group(stores, params.members, params.train, params.runs, threads=snakemake.threads)  # noqa: F821
