# Stage 'translate': transcripts of one language pair (apertium offline default, or argostranslate).
# Which pairs run is decided by polysent.translate (active_pairs, pair_from, translations_into).
from polysent import translate as polysent_translate


rule translate:
    input:
        manifest=manifest_for_features(),
        corpus_done=CORPUS_DONE,
        lib=lib_for("scripts/translate.py"),
    output:
        table="results/translate/{src}-{tgt}.parquet",
        qc="results/qc/translate/{src}-{tgt}.parquet",
    log:
        "logs/translate/{src}-{tgt}.log",
    benchmark:
        "benchmarks/translate/{src}-{tgt}.tsv"
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        cfg=slice_of("translate"),
        corpus=corpus_trigger("src"),
    script:
        "../../scripts/translate.py"
