# Stage 'text': one vector per aligned word and per translated word (use = multilingual USE v3,
# the offline default; vectors files; a local transformer; hash, the stand-in ablation).


rule text:
    input:
        manifest=manifest_for_features(),
        corpus_done=CORPUS_DONE,
        align=expand("results/align/{shard}.parquet", shard=SHARDS),
        translate=translation_tables_into,
        lib=lib_for("scripts/text.py"),
    output:
        vectors=TEXT,
        qc="results/qc/text/{lang}.parquet",
    log:
        "logs/text/{lang}.log",
    benchmark:
        "benchmarks/text/{lang}.tsv"
    conda:
        "../../envs/polysent.yaml"
    # BLAS threads of the use encoder: its per-word matrix products are tiny, and more threads
    # made it ~60x slower on a busy 2-core machine (docs/BENCHMARKS.md, text encoders)
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        cfg=slice_of("text"),
        corpus=corpus_trigger("lang"),
        seed=config["seed"],
    script:
        "../../scripts/text.py"


# A text-encoder ablation (an experiment's `text_encoder`, e.g. config/ablation_text.yaml): the same
# stage with only the encoder changed, its stores built by rule store_ablation.
use rule text as text_ablation with:
    output:
        vectors=ABLATION_TEXT,
        qc="results/ablation/text_{encoder}/qc/text/{lang}.parquet",
    log:
        "logs/ablation/text_{encoder}/text/{lang}.log",
    benchmark:
        "benchmarks/ablation/text_{encoder}/text/{lang}.tsv"
    params:
        cfg=lambda w: text_slice_with(w.encoder),
