# Stage 'translate': transcripts of one language pair (apertium offline default, or argostranslate).


def translate_pairs():
    """Configured (src, tgt) pairs whose languages are both in the run."""
    return [
        (s, t)
        for s, t in config["translate"]["pairs"]
        if s in config["languages"] and t in config["languages"]
    ]


def translation_into(lang):
    return [f"results/translate/{s}-{t}.parquet" for s, t in translate_pairs() if t == lang]


def translation_from(lang):
    """The pair used for ``lang``'s store (its first configured pair with ``lang`` as source)."""
    return next(((s, t) for s, t in translate_pairs() if s == lang), None)


rule translate:
    input:
        manifest="results/corpus/manifest.parquet",
        lib=lib("translate.py"),
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
    script:
        "../../scripts/translate.py"
