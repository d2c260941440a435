# Run folders at their usual place: results/runs/{exp}/seed{seed}/ is linked (or copied) from
# the training group that wrote it (rule `train`, workflow/rules/train.smk). A local rule run in
# Snakemake's own process (`run:`, stdlib only): one run folder costs no Python start-up and, on a
# cluster, no job submission; the torch start-up is paid once per group.

from polysent.rundirs import publish as publish_run_folder


localrules:
    train_run,


rule train_run:
    input:
        group=lambda w: TRAIN_GROUP_DIR.format(
            group=polysent_experiments.group_of(TRAIN_GROUPS, w.exp, int(w.seed))
        ),
        lib=lib_for("src/polysent/rundirs.py"),
    output:
        metrics="results/runs/{exp}/seed{seed}/metrics.json",
        predictions="results/runs/{exp}/seed{seed}/predictions.parquet",
        history="results/runs/{exp}/seed{seed}/history.csv",
        weights="results/runs/{exp}/seed{seed}/model.safetensors",
        spec="results/runs/{exp}/seed{seed}/model.json",
        decisions="results/runs/{exp}/seed{seed}/decisions.parquet",
    log:
        "logs/train_run/{exp}/seed{seed}.log",
    threads: 1
    resources:
        mem_mb=200,
        runtime=5,
    params:
        source=lambda w, input: f"{input.group}/{w.exp}/seed{w.seed}",
    run:
        publish_run_folder(params.source, list(output), log=log[0])
