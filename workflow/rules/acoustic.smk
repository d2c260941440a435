# Stage 'acoustic': frame-level acoustic features per shard (librosa 25-d or openSMILE eGeMAPS).


rule acoustic:
    input:
        manifest=manifest_for_features(),
        corpus_done=CORPUS_DONE,
        media="results/media/{shard}",
        lib=lib_for("scripts/acoustic.py"),
    output:
        frames="results/acoustic/{shard}.parquet",
        qc="results/qc/acoustic/{shard}.parquet",
    log:
        "logs/acoustic/{shard}.log",
    benchmark:
        "benchmarks/acoustic/{shard}.tsv"
    conda:
        "../../envs/polysent.yaml"
    threads: 1  # one shard per core, as rule media says
    resources:
        # grows with the longest WAVs analysed at once (evaluated once the media exist), and
        # with each retry
        mem_mb=lambda wildcards, input, threads, attempt: attempt
        * acoustic_mem_mb(input.media, threads),
        runtime=120,
    params:
        cfg=slice_of("acoustic"),
        corpus=corpus_trigger("shard"),
    script:
        "../../scripts/acoustic.py"


FINAL_TARGETS += expand("results/acoustic/{shard}.parquet", shard=SHARDS)
