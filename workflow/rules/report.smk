# Stage 'report': the paper's tables and figures from the per-run results of the train stage.
# Which experiments are reported (and so trained) is chosen in config["report"] and computed once
# in common.smk (EXPERIMENTS, REPORT_TABLE1, REPORT_EMOTIONS, REPORTED; train.smk checked them);
# the selection logic lives in polysent.report.runs so that it is unit-tested. The rules' path and
# report-entry helpers are in common.smk.

from polysent.modelfacts import class_attribute as model_attribute

REPORT_ADAMML = [
    n for n in REPORT_TABLE1 if model_attribute(EXPERIMENTS[n]["model"], "writes_decisions")
]

# Report jobs run one light process over small run files; the figures' matplotlib needs more.
REPORT_TABLE_RESOURCES = {"mem_mb": 1000, "runtime": 5}
REPORT_FIGURE_RESOURCES = {"mem_mb": 1500, "runtime": 5}


rule report_table1:
    input:
        metrics=reported_run_files(REPORT_TABLE1, "metrics.json"),
        # the findings' paired bootstrap resamples the rows' test predictions
        predictions=reported_run_files(REPORT_TABLE1, "predictions.parquet"),
        lib=lib_for("scripts/report_table1.py"),
    output:
        csv=report_table("results/table1.csv", "table1", "Table 1"),
        md="results/table1.md",
        findings=report_table("results/findings.csv", "findings", "Findings"),
    log:
        report_log("table1"),
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        **REPORT_TABLE_RESOURCES,
    params:
        experiments=experiment_entries(REPORT_TABLE1),
        report=slice_of("report"),
        findings=slice_of("findings"),
    script:
        "../../scripts/report_table1.py"


rule report_table2:
    input:
        manifest="results/corpus/manifest.parquet",
        lib=lib_for("scripts/report_table2.py"),
    output:
        csv=report_table("results/table2.csv", "table2", "Table 2"),
    log:
        report_log("table2"),
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        **REPORT_TABLE_RESOURCES,
    params:
        report=slice_of("report"),
    script:
        "../../scripts/report_table2.py"


rule report_emotions:
    input:
        metrics=reported_run_files(REPORT_EMOTIONS, "metrics.json"),
        lib=lib_for("scripts/report_emotions.py"),
    output:
        csv=report_table("results/emotions.csv", "emotions", "Emotion detection"),
    log:
        report_log("emotions"),
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        **REPORT_TABLE_RESOURCES,
    params:
        experiments=experiment_entries(REPORT_EMOTIONS),
    script:
        "../../scripts/report_emotions.py"


rule report_label_distribution:
    input:
        manifest="results/corpus/manifest.parquet",
        lib=lib_for("scripts/report_label_distribution.py"),
    output:
        png=report_figure(
            "results/figures/label_distribution.png", "label_distribution", "Label distribution"
        ),
    log:
        report_log("label_distribution"),
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        **REPORT_FIGURE_RESOURCES,
    params:
        report=slice_of("report"),
    script:
        "../../scripts/report_label_distribution.py"


rule report_modality_utilisation:
    input:
        decisions=reported_run_files(REPORT_ADAMML, "decisions.parquet"),
        lib=lib_for("scripts/report_modality_utilisation.py"),
    output:
        png=report_figure(
            "results/figures/modality_utilisation.png",
            "modality_utilisation",
            "AdaMML modality utilisation",
        ),
        csv=report_table(
            "results/modality_utilisation.csv",
            "modality_utilisation",
            "AdaMML modality utilisation",
        ),
    log:
        report_log("modality_utilisation"),
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        **REPORT_FIGURE_RESOURCES,
    params:
        experiments=experiment_entries(REPORT_ADAMML),
        report=slice_of("report"),
    script:
        "../../scripts/report_modality_utilisation.py"


rule report_learning_curves:
    input:
        histories=reported_run_files(REPORTED, "history.csv"),
        metrics=reported_run_files(REPORTED, "metrics.json"),
        lib=lib_for("scripts/report_learning_curves.py"),
    output:
        png=report_figure(
            "results/figures/learning_curves.png", "learning_curves", "Learning curves"
        ),
    log:
        report_log("learning_curves"),
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        **REPORT_FIGURE_RESOURCES,
    params:
        experiments=experiment_entries(REPORTED),
        report=slice_of("report"),
    script:
        "../../scripts/report_learning_curves.py"


rule report_scatter:
    input:
        predictions=reported_run_files(REPORT_TABLE1, "predictions.parquet"),
        table1=rules.report_table1.output.csv,
        lib=lib_for("scripts/report_scatter.py"),
    output:
        png=report_figure("results/figures/scatter.png", "scatter", "Predicted vs true"),
    log:
        report_log("scatter"),
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        **REPORT_FIGURE_RESOURCES,
    params:
        report=slice_of("report"),
    script:
        "../../scripts/report_scatter.py"


# The report is a default target once the experiment matrix is loaded (config/experiments.yaml).
if REPORTED:
    FINAL_TARGETS += outputs_of("report_table2", "report_label_distribution")
if REPORT_TABLE1:
    FINAL_TARGETS += outputs_of("report_table1", "report_learning_curves", "report_scatter")
if REPORT_EMOTIONS:
    FINAL_TARGETS += outputs_of("report_emotions")
if REPORT_ADAMML:
    FINAL_TARGETS += outputs_of("report_modality_utilisation")
