# Stage 'media': one mono WAV per video and configured sample rate (ffmpeg), per shard.


rule media:
    input:
        manifest=manifest_for_features(),
        corpus_done=CORPUS_DONE,
        lib=lib_for("scripts/media.py"),
    output:
        wavs=directory("results/media/{shard}"),
        qc="results/qc/media/{shard}.parquet",
    log:
        "logs/media/{shard}.log",
    benchmark:
        "benchmarks/media/{shard}.tsv"
    conda:
        "../../envs/polysent.yaml"
    threads: 2
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        cfg=slice_of("media"),
        corpus=corpus_trigger("shard"),
    script:
        "../../scripts/media.py"


FINAL_TARGETS += expand("results/media/{shard}", shard=SHARDS)
