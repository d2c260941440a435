# Stage 'train': one run per experiment x seed (polysent.train.run_experiment).
# results/runs/{exp}/seed{seed}/ holds metrics.json, predictions.parquet, history.csv, model.pt and
# decisions.parquet (AdaMML policy decisions on the eval set; empty for models without a policy).
# The report stage asks for the runs it tabulates, so nothing is added to FINAL_TARGETS here.
# SLURM: `resources: gpu` comes from train.gpus (0 on the demo); profiles/slurm can raise it per
# rule (set-resources: train: {gpu: 1}) together with `train.device: cuda`.


wildcard_constraints:
    exp=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",


def experiment(name):
    """The config entry of experiment ``name`` (clear error for a typo in a target path)."""
    experiments = config.get("experiments") or {}
    if name not in experiments:
        raise ValueError(
            f"unknown experiment '{name}' in results/runs/{name}/...; "
            f"defined in config['experiments']: {', '.join(sorted(experiments)) or '(none)'}"
        )
    return experiments[name]


def train_inputs(wildcards):
    """Feature stores of the experiment's training and evaluation languages, as store_<lang>."""
    exp = experiment(wildcards.exp)
    langs = sorted(set(exp["train"]) | {exp["eval"]})
    return {f"store_{lang}": f"results/store/{lang}.parquet" for lang in langs}


rule train:
    input:
        unpack(train_inputs),
        lib=lib(
            "data.py",
            "train.py",
            "metrics.py",
            "models/__init__.py",
            "models/base.py",
            "models/layers.py",
            "models/heads.py",
            "models/mctn.py",
            "models/multilogue.py",
            "models/mult.py",
            "models/adamml.py",
            "models/nce.py",
        ),
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
    threads: config["train"]["threads"]
    resources:
        mem_mb=config["train"]["mem_mb"],
        runtime=config["train"]["runtime"],
        gpu=config["train"]["gpus"],
    params:
        experiment=lambda wildcards: experiment(wildcards.exp),
        train=slice_of("train"),
    script:
        "../../scripts/train.py"
