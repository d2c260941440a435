# Stage 'corpus', source 'demo': synthesize the embedded demo corpus offline (espeak-ng speech,
# warped astronaut face, lexicon transcripts) into real media + the segment manifest.
# See README "Demo corpus" and src/polysent/corpus/demo/.

from polysent.languages import codes as language_codes

if config["corpus"]["source"] == "demo":

    rule corpus_demo:
        input:
            lexicon=expand(
                from_workflow("resources/demo/{name}.yaml"),
                name=["lexicon", "emotions", *language_codes("demo")],
            ),
            lib=lib_for("scripts/corpus_demo.py"),
        output:
            manifest="results/corpus/manifest.parquet",
            word_truth="results/corpus/word_truth.parquet",
            truth="results/corpus/demo_truth.parquet",
            cutaways="results/corpus/cutaways.parquet",
            media=directory("results/corpus/media"),
            qc="results/qc/corpus/all.parquet",
        log:
            "logs/corpus/demo.log",
        benchmark:
            "benchmarks/corpus/demo.tsv"
        conda:
            "../../envs/polysent.yaml"
        threads: 8
        resources:
            mem_mb=3000,
            runtime=30,
        params:
            **triggers.corpus_params(config),
        script:
            "../../scripts/corpus_demo.py"

    FINAL_TARGETS += ["results/corpus/manifest.parquet"]
