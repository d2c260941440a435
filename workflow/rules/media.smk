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
    # One thread: a shard is the unit of parallelism. Two one-thread jobs keep two cores busier
    # than one two-thread job, whose process pool idles at its start and its last video
    # (docs/BENCHMARKS.md, "Demo DAG time"); the same for acoustic, visual and align_aeneas;
    # raise it with --set-threads on big nodes.
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        cfg=slice_of("media"),
        corpus=corpus_trigger("shard"),
    script:
        "../../scripts/media.py"


FINAL_TARGETS += expand("results/media/{shard}", shard=SHARDS)
