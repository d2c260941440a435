# Stage 'train': results/runs/{exp}/seed{seed}/ holds metrics.json, predictions.parquet,
# history.csv, model.safetensors + model.json (the selected weights and the spec that rebuilds
# the model, polysent.checkpoint) and decisions.parquet (AdaMML policy decisions on the eval set;
# empty for models without a policy).
#
# Rows that differ only in `eval` (and label/paper/group/seeds) train the same model, so the
# reported experiments (config["report"]) are grouped by their training-relevant keys
# (polysent.experiments.training_key). Rule `train` runs ONE training group in one job and one process
# (polysent.train.run_group): each seed is trained once and evaluated for every member, and the
# run folders (byte-identical to one training per folder) go to results/train_groups/{group}/;
# rule `train_run` (workflow/rules/runs.smk, local, no torch) links each to results/runs/.
# A group is named after its first member (sorted); any other run folder asked for (a seed or an
# experiment outside the report) is a group of one, named "{exp}.seed{seed}". The group's params
# are its members' run entries (polysent.experiments.run_entry: no label/paper/group/seeds), so editing
# a label re-runs no training and editing one experiment re-runs only its group.
# The report stage asks for the runs it tabulates, so nothing is added to FINAL_TARGETS here.
# SLURM: one group is one job; `resources: gpu` comes from train.gpus (0 on the demo);
# profiles/slurm raises it (set-resources: train: {gpu: 1}) together with `train.device: cuda`.
from polysent import experiments as polysent_experiments
from polysent.config import check_experiments as _check_experiments

# What is trained is what the report selects (REPORTED and reported_seeds, common.smk).
_check_experiments(config, REPORTED)
TRAIN_GROUPS = polysent_experiments.training_groups(EXPERIMENTS, REPORTED, reported_seeds)
TRAIN_GROUP_DIR = "results/train_groups/{group}"


wildcard_constraints:
    exp=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",
    group=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",


rule train:
    input:
        # store_<lang>: the feature stores of the members' training and evaluation languages
        unpack(
            lambda w: polysent_experiments.group_store_inputs(
                EXPERIMENTS,
                polysent_experiments.resolve_group(TRAIN_GROUPS, EXPERIMENTS, w.group),
            )
        ),
        lib=lib_for("scripts/train.py"),
    output:
        directory(TRAIN_GROUP_DIR),
    log:
        "logs/train/{group}.log",
    benchmark:
        "benchmarks/train/{group}.tsv"
    # longest groups first (estimated work), so that the last jobs are short and no core idles
    priority:
        lambda w: polysent_experiments.group_work(
            polysent_experiments.resolve_group(TRAIN_GROUPS, EXPERIMENTS, w.group)
        )
    conda:
        "../../envs/polysent.yaml"
    threads: config["train"]["threads"]
    resources:
        mem_mb=config["train"]["mem_mb"],
        # train.runtime is per training run; a group trains each of its seeds once
        runtime=lambda w: config["train"]["runtime"]
        * len(
            polysent_experiments.group_seeds(
                polysent_experiments.resolve_group(TRAIN_GROUPS, EXPERIMENTS, w.group)
            )
        ),
        gpu=config["train"]["gpus"],
    params:
        members=lambda w: {
            name: polysent_experiments.run_entry(EXPERIMENTS[name])
            for name in polysent_experiments.resolve_group(TRAIN_GROUPS, EXPERIMENTS, w.group)[
                "members"
            ]
        },
        runs=lambda w: polysent_experiments.group_runs(
            polysent_experiments.resolve_group(TRAIN_GROUPS, EXPERIMENTS, w.group),
            TRAIN_GROUP_DIR.format(group=w.group),
        ),
        train=slice_of("train"),
    script:
        "../../scripts/train.py"
