# Stage 'align': word timings per shard (aeneas offline default, or Montreal Forced Aligner 3).


rule align_aeneas:
    input:
        manifest=manifest_for_features(),
        corpus_done=CORPUS_DONE,
        media="results/media/{shard}",
        lib=lib_for("scripts/align.py"),
    output:
        words="results/align/{shard}.parquet",
        qc="results/qc/align/{shard}.parquet",
    log:
        "logs/align/{shard}.log",
    benchmark:
        "benchmarks/align/{shard}.tsv"
    conda:
        "../../envs/polysent.yaml"
    threads: 1  # one shard per core, as rule media says
    resources:
        mem_mb=2000,
        runtime=120,
    params:
        cfg=slice_of("align"),
        corpus=corpus_trigger("shard"),
    script:
        "../../scripts/align.py"


# MFA runs in its own conda env (`--sdm conda`); models are named per language in config.
rule align_mfa:
    input:
        manifest=manifest_for_features(),
        corpus_done=CORPUS_DONE,
        media="results/media/{shard}",
        lib=lib_for("scripts/align.py"),
    output:
        words="results/align/{shard}.parquet",
        qc="results/qc/align/{shard}.parquet",
    log:
        "logs/align/{shard}.log",
    benchmark:
        "benchmarks/align/{shard}.tsv"
    conda:
        "../../envs/mfa.yaml"
    threads: 4
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        cfg=slice_of("align"),
        corpus=corpus_trigger("shard"),
    script:
        "../../scripts/align.py"


# One aligner per run, chosen by config (both rules write the same files).
if config["align"]["backend"] == "mfa":

    ruleorder: align_mfa > align_aeneas

else:

    ruleorder: align_aeneas > align_mfa
