# Run folders at their usual place: results/runs/{exp}/seed{seed}/ is linked (or copied) from
# the training group that wrote it (rule `train`, workflow/rules/train.smk). A local rule (on a
# cluster, no job submission per run folder) with a `script:` adapter that imports nothing heavy:
# the torch start-up is paid once per group. Not `run:`: Snakemake runs a `run:` job in a new
# Snakemake process that parses the whole workflow again, a `script:` job in one plain Python.


localrules:
    train_run,


rule train_run:
    input:
        group=lambda w: TRAIN_GROUP_DIR.format(
            group=polysent_experiments.group_of(TRAIN_GROUPS, w.exp, int(w.seed))
        ),
        lib=lib_for("scripts/train_run.py"),
    output:
        metrics="results/runs/{exp}/seed{seed}/metrics.json",
        predictions="results/runs/{exp}/seed{seed}/predictions.parquet",
        history="results/runs/{exp}/seed{seed}/history.csv",
        weights="results/runs/{exp}/seed{seed}/model.safetensors",
        spec="results/runs/{exp}/seed{seed}/model.json",
        decisions="results/runs/{exp}/seed{seed}/decisions.parquet",
    log:
        "logs/train_run/{exp}/seed{seed}.log",
    # above every train group's (its estimated CPU-seconds): linked as soon as its group ends, so
    # the links do not queue behind the training jobs and run after the last one
    priority: 10000
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        mem_mb=200,
        runtime=5,
    params:
        source=lambda w, input: f"{input.group}/{w.exp}/seed{w.seed}",
    script:
        "../../scripts/train_run.py"
