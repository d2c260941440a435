# Stage 'predict': a trained model on new videos (docs/PREDICT.md).
# rule bundle writes a run's self-contained bundle; rule predict runs the feature stages' own
# functions with the bundle's settings on the videos of config predict.{name} (a manifest, one
# video or a folder) into results/predict/{name}.work/, then the model. Nothing is added to
# FINAL_TARGETS: ask for results/predict/{name}.csv.
from polysent import predict as polysent_predict
from polysent import train as polysent_train


wildcard_constraints:
    name=r"[A-Za-z0-9][A-Za-z0-9_+-]*",


rule bundle:
    input:
        # store_<lang>: the feature stores the run was trained and evaluated on
        unpack(lambda w: polysent_train.store_inputs(config.get("experiments"), w.exp)),
        model="results/runs/{exp}/seed{seed}/model.pt",
        metrics="results/runs/{exp}/seed{seed}/metrics.json",
        lib=lib_for("scripts/bundle.py"),
    output:
        bundle=directory("results/runs/{exp}/seed{seed}/bundle"),
    log:
        "logs/bundle/{exp}/seed{seed}.log",
    benchmark:
        "benchmarks/bundle/{exp}/seed{seed}.tsv"
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        run_dir=lambda w: f"results/runs/{w.exp}/seed{w.seed}",
    script:
        "../../scripts/bundle.py"


rule predict:
    input:
        unpack(lambda w: polysent_predict.workflow_inputs(config, w.name)),
        lib=lib_for("scripts/predict.py"),
    output:
        csv="results/predict/{name}.csv",
        meta="results/predict/{name}.csv.json",
        work=directory("results/predict/{name}.work"),
    log:
        "logs/predict/{name}.log",
    benchmark:
        "benchmarks/predict/{name}.tsv"
    conda:
        "../../envs/polysent.yaml"
    threads: lambda w: polysent_predict.workflow_entry(config, w.name)["threads"]
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        entry=lambda w: polysent_predict.workflow_entry(config, w.name),
    script:
        "../../scripts/predict.py"
