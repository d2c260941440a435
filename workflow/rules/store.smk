# Stage 'store': the word-aligned feature store per language, and its exporters.


rule store:
    input:
        unpack(store_translation_inputs),
        manifest="results/corpus/manifest.parquet",
        align=expand("results/align/{shard}.parquet", shard=SHARDS),
        acoustic=expand("results/acoustic/{shard}.parquet", shard=SHARDS),
        visual=expand("results/visual/{shard}.parquet", shard=SHARDS),
        text="results/text/{lang}.parquet",
        # segments with a QC record of these stages stay out of the store (store.exclude_qc_from)
        prior_qc=expand(
            "results/qc/{stage}/{shard}.parquet",
            stage=config["store"]["exclude_qc_from"],
            shard=SHARDS,
        ),
        lib=lib_for("scripts/store.py"),
    output:
        store="results/store/{lang}.parquet",
        qc="results/qc/store/{lang}.parquet",
    log:
        "logs/store/{lang}.log",
    benchmark:
        "benchmarks/store/{lang}.tsv"
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        cfg=slice_of("store"),
        tr_lang=store_translation_language,
    script:
        "../../scripts/store.py"


rule export:
    input:
        store="results/store/{lang}.parquet",
        align=expand("results/align/{shard}.parquet", shard=SHARDS),
        lib=lib_for("scripts/export.py"),
    output:
        pkl="results/export/{lang}.pkl",
        csd=directory("results/export/{lang}"),
    log:
        "logs/export/{lang}.log",
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        cfg=slice_of("store", "export"),
    script:
        "../../scripts/export.py"


FINAL_TARGETS += expand("results/store/{lang}.parquet", lang=LANGS)
