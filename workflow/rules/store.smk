# Stage 'store': the word-aligned feature store per language, and its exporters.


rule store:
    input:
        unpack(store_translation_inputs),
        **store_input_files(TEXT),
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


# A text-encoder ablation's store (an experiment's `text_encoder`; rule text_ablation): the same
# features with that encoder's word vectors. `use rule ... with: input:` replaces all inputs.
use rule store as store_ablation with:
    input:
        unpack(store_translation_inputs),
        **store_input_files(ABLATION_TEXT),
    output:
        store=ABLATION_STORE,
        qc="results/ablation/text_{encoder}/qc/store/{lang}.parquet",
    log:
        "logs/ablation/text_{encoder}/store/{lang}.log",
    benchmark:
        "benchmarks/ablation/text_{encoder}/store/{lang}.tsv"


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
