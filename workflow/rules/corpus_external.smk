# Corpus sources 'moseas' (CMU-MOSEAS as released) and 'folder' (any CSV/Parquet manifest + media).
# Both write the same manifest as the demo source; see docs/MOSEAS.md. Downloaded media live in
# results/corpus/media/ and are deliberately not declared as outputs: Snakemake deletes the outputs
# of a failed job, and a rerun must resume the videos that already arrived, not fetch them again.

if config["corpus"]["source"] in ("moseas", "folder"):

    from polysent.corpus.moseas import release_files

    _folder = config["corpus"]["source"] == "folder"
    # The MTurk annotation table (attention checks kept for QC) exists only for CMU-MOSEAS.
    _corpus_extra = {} if _folder else {"annotations": "results/corpus/moseas_annotations.parquet"}
    # A folder corpus's job reads its manifest file as ancient, re-running on the file's content
    # without the labels (params: manifest_digest); rule corpus_folder_labels copies the labels in.
    FOLDER_SEGMENTS = "results/corpus/folder_segments.parquet"

    rule corpus_external:
        input:
            release=lambda wildcards: [ancient(f) if _folder else f for f in release_files(config)],
            lib=lib_for("scripts/corpus_external.py"),
        output:
            **_corpus_extra,
            manifest=FOLDER_SEGMENTS if _folder else "results/corpus/manifest.parquet",
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

    if _folder:

        rule corpus_folder_labels:
            input:
                segments=FOLDER_SEGMENTS,
                release=lambda wildcards: release_files(config),
                lib=lib_for("scripts/corpus_folder_labels.py"),
            output:
                manifest="results/corpus/manifest.parquet",
                qc="results/qc/corpus/labels.parquet",
            log:
                "logs/corpus/labels.log",
            conda:
                "../../envs/polysent.yaml"
            threads: 1
            resources:
                mem_mb=2000,
                runtime=10,
            params:
                cfg=triggers.folder_label_settings(config["corpus"]["folder"]),
            script:
                "../../scripts/corpus_folder_labels.py"

    FINAL_TARGETS += ["results/corpus/manifest.parquet"]
