# Stage 'text': one vector per aligned word and per translated word (hash offline default,
# pretrained vectors files, or a local transformer).


rule text:
    input:
        manifest="results/corpus/manifest.parquet",
        align=expand("results/align/{shard}.parquet", shard=SHARDS),
        translate=translation_tables_into,
        lib=lib_for("scripts/text.py"),
    output:
        vectors="results/text/{lang}.parquet",
        qc="results/qc/text/{lang}.parquet",
    log:
        "logs/text/{lang}.log",
    benchmark:
        "benchmarks/text/{lang}.tsv"
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        cfg=slice_of("text"),
        seed=config["seed"],
    script:
        "../../scripts/text.py"
