# Stage 'predict': a trained model on new videos (docs/PREDICT.md).
# rule bundle writes a run's self-contained bundle. For each config entry predict.{name}, rule
# predict runs polysent.predict.run_entry, the function `polysent predict` runs: the bundle's
# settings checked first (before any compute), then segments and transcripts, the stage
# functions into results/predict/{name}/, and the model; the same entry gives the same output
# and metadata from either. Nothing is added to FINAL_TARGETS: ask for results/predict/{name}.csv.
from polysent import predict as polysent_predict
from polysent import experiments as polysent_experiments


wildcard_constraints:
    name=r"[A-Za-z0-9][A-Za-z0-9_+-]*",


rule bundle:
    input:
        # store_<lang>: the feature stores the run was trained and evaluated on
        unpack(lambda w: polysent_experiments.store_inputs(config.get("experiments"), w.exp)),
        weights="results/runs/{exp}/seed{seed}/model.safetensors",
        spec="results/runs/{exp}/seed{seed}/model.json",
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
        # bundle (a run's bundle folder or the given one) and the entry's manifest or media
        unpack(lambda w: polysent_predict.workflow_inputs(config, w.name)),
        lib=lib_for("scripts/predict.py"),
    output:
        csv="results/predict/{name}.csv",
        meta="results/predict/{name}.csv.json",
        work=directory("results/predict/{name}"),
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
