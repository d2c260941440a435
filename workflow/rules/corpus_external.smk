# Corpus sources 'moseas' (CMU-MOSEAS as released) and 'folder' (any CSV/Parquet manifest + media).
# Both write the same manifest as the demo source; see docs/MOSEAS.md. Downloaded media live in
# results/corpus/media/ and are deliberately not declared as outputs: Snakemake deletes the outputs
# of a failed job, and a rerun must resume the videos that already arrived, not fetch them again.

if config["corpus"]["source"] in ("moseas", "folder"):

    from polysent.corpus.moseas import release_files

    # The MTurk annotation table (attention checks kept for QC) exists only for CMU-MOSEAS.
    _corpus_extra = (
        {"annotations": "results/corpus/moseas_annotations.parquet"}
        if config["corpus"]["source"] == "moseas"
        else {}
    )

    rule corpus_external:
        input:
            release=lambda wildcards: release_files(config),
            lib=lib_for("scripts/corpus_external.py"),
        output:
            **_corpus_extra,
            manifest="results/corpus/manifest.parquet",
            qc="results/qc/corpus/all.parquet",
            downloads="results/corpus/downloads.csv",
        log:
            "logs/corpus/external.log",
        benchmark:
            "benchmarks/corpus/external.tsv"
        conda:
            "../../envs/polysent.yaml"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=24 * 60,
        params:
            **triggers.corpus_params(config),
            source=config["corpus"]["source"],
        script:
            "../../scripts/corpus_external.py"

    FINAL_TARGETS += ["results/corpus/manifest.parquet"]
