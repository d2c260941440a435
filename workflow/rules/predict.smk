# Stage 'predict': a trained model on new videos (docs/PREDICT.md).
# rule bundle writes a run's self-contained bundle. For each config entry predict.{name}, the DAG
# builds that input's features under results/predict/{name}/ with the stage rules themselves
# (`use rule ... as predict_<stage>`), configured with the bundle's settings, never the
# workflow's: rule predict_corpus checks them against the bundle first (before any compute),
# then writes the segments as a corpus manifest and the bundle's config slice of every stage
# (settings.json, the stage jobs' `cfg`); the stage jobs keep the stage rules' threads (BLAS
# thread counts change the last bit of acoustic features); rule predict_words adds pseudo-words
# (text-free bundles without transcripts); rule predict applies the model to the stores.
# Nothing is added to FINAL_TARGETS: ask for results/predict/{name}.csv.
from polysent import predict as polysent_predict
from polysent import experiments as polysent_experiments


wildcard_constraints:
    name=r"[A-Za-z0-9][A-Za-z0-9_+-]*",


rule bundle:
    input:
        # store_<lang>: the feature stores the run was trained and evaluated on
        unpack(lambda w: polysent_experiments.store_inputs(config.get("experiments"), w.exp)),
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


rule predict_corpus:
    input:
        # bundle (a run's bundle folder or the given one) and the entry's manifest or media
        unpack(lambda w: polysent_predict.workflow_inputs(config, w.name)),
        lib=lib_for("scripts/predict_corpus.py"),
    output:
        manifest="results/predict/{name}/corpus/manifest.parquet",
        settings="results/predict/{name}/settings.json",
        corpus="results/predict/{name}/corpus/corpus.json",
    log:
        "logs/predict/{name}/corpus.log",
    benchmark:
        "benchmarks/predict/{name}/corpus.tsv"
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        entry=lambda w: polysent_predict.workflow_entry(config, w.name),
        shards=config["shards"],
        languages=lambda w: polysent_predict.workflow_languages(config, w.name),
    script:
        "../../scripts/predict_corpus.py"


use rule media as predict_media with:
    input:
        manifest="results/predict/{name}/corpus/manifest.parquet",
        settings="results/predict/{name}/settings.json",
        lib=lib_for("scripts/media.py"),
    output:
        wavs=directory("results/predict/{name}/media/{shard}"),
        qc="results/predict/{name}/qc/media/{shard}.parquet",
    log:
        "logs/predict/{name}/media/{shard}.log",
    benchmark:
        "benchmarks/predict/{name}/media/{shard}.tsv"
    params:
        cfg=lambda w, input: polysent_predict.stage_setting(input.settings, "media"),


use rule acoustic as predict_acoustic with:
    input:
        manifest="results/predict/{name}/corpus/manifest.parquet",
        media="results/predict/{name}/media/{shard}",
        settings="results/predict/{name}/settings.json",
        lib=lib_for("scripts/acoustic.py"),
    output:
        frames="results/predict/{name}/acoustic/{shard}.parquet",
        qc="results/predict/{name}/qc/acoustic/{shard}.parquet",
    log:
        "logs/predict/{name}/acoustic/{shard}.log",
    benchmark:
        "benchmarks/predict/{name}/acoustic/{shard}.tsv"
    params:
        cfg=lambda w, input: polysent_predict.stage_setting(input.settings, "acoustic"),


use rule visual as predict_visual with:
    input:
        manifest="results/predict/{name}/corpus/manifest.parquet",
        settings="results/predict/{name}/settings.json",
        lib=lib_for("scripts/visual.py"),
    output:
        frames="results/predict/{name}/visual/{shard}.parquet",
        qc="results/predict/{name}/qc/visual/{shard}.parquet",
    log:
        "logs/predict/{name}/visual/{shard}.log",
    benchmark:
        "benchmarks/predict/{name}/visual/{shard}.tsv"
    params:
        cfg=lambda w, input: polysent_predict.stage_setting(input.settings, "visual"),


# Both aligner rules, as in align.smk; the workflow's aligner choice picks one (a bundle made
# with the other aligner runs its settings in that rule's conda env).
use rule align_aeneas as predict_align_aeneas with:
    input:
        manifest="results/predict/{name}/corpus/manifest.parquet",
        media="results/predict/{name}/media/{shard}",
        settings="results/predict/{name}/settings.json",
        lib=lib_for("scripts/align.py"),
    output:
        words="results/predict/{name}/align/{shard}.parquet",
        qc="results/predict/{name}/qc/align/{shard}.parquet",
    log:
        "logs/predict/{name}/align/{shard}.log",
    benchmark:
        "benchmarks/predict/{name}/align/{shard}.tsv"
    params:
        cfg=lambda w, input: polysent_predict.stage_setting(input.settings, "align"),


use rule align_mfa as predict_align_mfa with:
    input:
        manifest="results/predict/{name}/corpus/manifest.parquet",
        media="results/predict/{name}/media/{shard}",
        settings="results/predict/{name}/settings.json",
        lib=lib_for("scripts/align.py"),
    output:
        words="results/predict/{name}/align/{shard}.parquet",
        qc="results/predict/{name}/qc/align/{shard}.parquet",
    log:
        "logs/predict/{name}/align/{shard}.log",
    benchmark:
        "benchmarks/predict/{name}/align/{shard}.tsv"
    params:
        cfg=lambda w, input: polysent_predict.stage_setting(input.settings, "align"),


if config["align"]["backend"] == "mfa":

    ruleorder: predict_align_mfa > predict_align_aeneas

else:

    ruleorder: predict_align_aeneas > predict_align_mfa


rule predict_words:
    input:
        words="results/predict/{name}/align/{shard}.parquet",
        manifest="results/predict/{name}/corpus/manifest.parquet",
        corpus="results/predict/{name}/corpus/corpus.json",
        lib=lib_for("scripts/predict_words.py"),
    output:
        words="results/predict/{name}/words/{shard}.parquet",
    log:
        "logs/predict/{name}/words/{shard}.log",
    benchmark:
        "benchmarks/predict/{name}/words/{shard}.tsv"
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../../scripts/predict_words.py"


use rule text as predict_text with:
    input:
        manifest="results/predict/{name}/corpus/manifest.parquet",
        align=expand("results/predict/{{name}}/words/{shard}.parquet", shard=SHARDS),
        translate=[],
        settings="results/predict/{name}/settings.json",
        lib=lib_for("scripts/text.py"),
    output:
        vectors="results/predict/{name}/text/{lang}.parquet",
        qc="results/predict/{name}/qc/text/{lang}.parquet",
    log:
        "logs/predict/{name}/text/{lang}.log",
    benchmark:
        "benchmarks/predict/{name}/text/{lang}.tsv"
    params:
        cfg=lambda w, input: polysent_predict.stage_setting(input.settings, "text", w.lang),


# No translation columns and no QC-based exclusion: prediction reads neither (as polysent predict).
use rule store as predict_store with:
    input:
        manifest="results/predict/{name}/corpus/manifest.parquet",
        align=expand("results/predict/{{name}}/words/{shard}.parquet", shard=SHARDS),
        acoustic=expand("results/predict/{{name}}/acoustic/{shard}.parquet", shard=SHARDS),
        visual=expand("results/predict/{{name}}/visual/{shard}.parquet", shard=SHARDS),
        text="results/predict/{name}/text/{lang}.parquet",
        settings="results/predict/{name}/settings.json",
        lib=lib_for("scripts/store.py"),
    output:
        store="results/predict/{name}/store/{lang}.parquet",
        qc="results/predict/{name}/qc/store/{lang}.parquet",
    log:
        "logs/predict/{name}/store/{lang}.log",
    benchmark:
        "benchmarks/predict/{name}/store/{lang}.tsv"
    params:
        cfg=lambda w, input: polysent_predict.stage_setting(input.settings, "store", w.lang),
        tr_lang=None,


rule predict:
    input:
        # store_<lang>: one store per language of the entry's segments
        unpack(
            lambda w: polysent_predict.workflow_paths(
                w.name, SHARDS, polysent_predict.workflow_languages(config, w.name)
            )["stores"]
        ),
        bundle=lambda w: polysent_predict.workflow_inputs(config, w.name)["bundle"],
        manifest="results/predict/{name}/corpus/manifest.parquet",
        corpus="results/predict/{name}/corpus/corpus.json",
        # the stages' QC records give a segment without a prediction its reason
        qc=lambda w: polysent_predict.workflow_paths(
            w.name, SHARDS, polysent_predict.workflow_languages(config, w.name)
        )["qc"],
        lib=lib_for("scripts/predict.py"),
    output:
        csv="results/predict/{name}.csv",
        meta="results/predict/{name}.csv.json",
    log:
        "logs/predict/{name}.log",
    benchmark:
        "benchmarks/predict/{name}.tsv"
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        "../../scripts/predict.py"
