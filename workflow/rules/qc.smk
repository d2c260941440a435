# QC: every stage writes its own results/qc/{stage}/{key}.parquet (a named `qc` output);
# this rule gathers them all, whatever stages exist, and fails the run past qc.max_failure_rate.
# It is included last so that it can see every other rule's outputs.
rule qc_summary:
    input:
        manifest="results/corpus/manifest.parquet",
        qc=all_qc_files(),
        lib=lib_for("scripts/qc_summary.py"),
    output:
        summary=report("results/qc/summary.csv", caption="../report/qc.rst", category="QC"),
        records="results/qc/records.csv",
    log:
        "logs/qc/summary.log",
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        cfg=slice_of("qc"),
    script:
        "../../scripts/qc_summary.py"


FINAL_TARGETS.append("results/qc/summary.csv")
