# Stage 'visual': frame-level facial features per shard (dlib landmarks offline, or OpenFace 2 AUs).
# For OpenFace set visual.backend: openface and visual.openface.binary or .container (on a cluster
# the container runs through apptainer/singularity, see workflow/schemas/config/visual.schema.yaml).


rule visual:
    input:
        manifest=manifest_for_features(),
        corpus_done=CORPUS_DONE,
        lib=lib_for("scripts/visual.py"),
    output:
        frames="results/visual/{shard}.parquet",
        qc="results/qc/visual/{shard}.parquet",
    log:
        "logs/visual/{shard}.log",
    benchmark:
        "benchmarks/visual/{shard}.tsv"
    # Started before the other feature stages: visual is their longest job per shard, so a large
    # shard left for last would run alone on one core while the others wait for the stores.
    priority: 1
    conda:
        "../../envs/polysent.yaml"
    threads: 1  # one shard per core, as rule media says
    resources:
        mem_mb=2000,
        runtime=240,
    params:
        cfg=slice_of("visual"),
        corpus=corpus_trigger("shard"),
    script:
        "../../scripts/visual.py"


FINAL_TARGETS += expand("results/visual/{shard}.parquet", shard=SHARDS)
