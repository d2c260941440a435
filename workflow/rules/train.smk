# Stage 'train': one run per experiment x seed (polysent.train.run_experiment).
# results/runs/{exp}/seed{seed}/ holds metrics.json, predictions.parquet, history.csv, model.pt and
# decisions.parquet (AdaMML policy decisions on the eval set; empty for models without a policy).
# The report stage asks for the runs it tabulates, so nothing is added to FINAL_TARGETS here.
# SLURM: `resources: gpu` comes from train.gpus (0 on the demo); profiles/slurm can raise it per
# rule (set-resources: train: {gpu: 1}) together with `train.device: cuda`.
from polysent import train as polysent_train


wildcard_constraints:
    exp=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",


rule train:
    input:
        # store_<lang>: the feature stores of the experiment's training and evaluation languages
        unpack(lambda w: polysent_train.store_inputs(config.get("experiments"), w.exp)),
        lib=lib_for("scripts/train.py"),
    output:
        metrics="results/runs/{exp}/seed{seed}/metrics.json",
        predictions="results/runs/{exp}/seed{seed}/predictions.parquet",
        history="results/runs/{exp}/seed{seed}/history.csv",
        model="results/runs/{exp}/seed{seed}/model.pt",
        decisions="results/runs/{exp}/seed{seed}/decisions.parquet",
    log:
        "logs/train/{exp}/seed{seed}.log",
    benchmark:
        "benchmarks/train/{exp}/seed{seed}.tsv"
    conda:
        "../../envs/polysent.yaml"
    threads: config["train"]["threads"]
    resources:
        mem_mb=config["train"]["mem_mb"],
        runtime=config["train"]["runtime"],
        gpu=config["train"]["gpus"],
    params:
        experiment=lambda w: polysent_train.experiment_entry(config.get("experiments"), w.exp),
        train=slice_of("train"),
    script:
        "../../scripts/train.py"
