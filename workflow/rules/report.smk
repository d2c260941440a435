# Stage 'report': the paper's tables and figures from the per-run results of the train stage.
# Which experiments are reported (and so trained) is chosen in config["report"]; the selection
# logic lives in polysent.report.tables so that it is unit-tested.
from polysent.report import tables as report_tables

EXPERIMENTS = config.get("experiments") or {}
REPORT_TABLE1 = report_tables.select(EXPERIMENTS, config["report"], "table1")
REPORT_EMOTIONS = report_tables.select(EXPERIMENTS, config["report"], "emotions")
# (the selected entries were checked by train.smk, included before this file)
REPORT_ADAMML = [n for n in REPORT_TABLE1 if EXPERIMENTS[n]["model"] == "adamml_clstm"]


# The run files each report rule reads (plain lists: the selection is known at parse time).
RUNS = "results/runs"
REPORT_EMOTION_AND_TABLE1 = REPORT_TABLE1 + REPORT_EMOTIONS
RUNS_TABLE1_METRICS = report_tables.run_files(
    EXPERIMENTS, REPORT_TABLE1, config["report"], "metrics.json", RUNS
)
RUNS_TABLE1_PREDICTIONS = report_tables.run_files(
    EXPERIMENTS, REPORT_TABLE1, config["report"], "predictions.parquet", RUNS
)
RUNS_EMOTIONS_METRICS = report_tables.run_files(
    EXPERIMENTS, REPORT_EMOTIONS, config["report"], "metrics.json", RUNS
)
RUNS_ADAMML_DECISIONS = report_tables.run_files(
    EXPERIMENTS, REPORT_ADAMML, config["report"], "decisions.parquet", RUNS
)
RUNS_ALL_HISTORIES = report_tables.run_files(
    EXPERIMENTS, REPORT_EMOTION_AND_TABLE1, config["report"], "history.csv", RUNS
)
RUNS_ALL_METRICS = report_tables.run_files(
    EXPERIMENTS, REPORT_EMOTION_AND_TABLE1, config["report"], "metrics.json", RUNS
)


rule report_table1:
    input:
        metrics=RUNS_TABLE1_METRICS,
        lib=lib_for("scripts/report_table1.py"),
    output:
        csv=report(
            "results/table1.csv",
            caption="../report/table1.rst",
            category="Tables",
            labels={"table": "Table 1"},
        ),
        md="results/table1.md",
        findings=report(
            "results/findings.csv",
            caption="../report/findings.rst",
            category="Tables",
            labels={"table": "Findings"},
        ),
    log:
        "logs/report/table1.log",
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        experiments={n: EXPERIMENTS[n] for n in REPORT_TABLE1},
        report=slice_of("report"),
    script:
        "../../scripts/report_table1.py"


rule report_table2:
    input:
        manifest="results/corpus/manifest.parquet",
        lib=lib_for("scripts/report_table2.py"),
    output:
        csv=report(
            "results/table2.csv",
            caption="../report/table2.rst",
            category="Tables",
            labels={"table": "Table 2"},
        ),
    log:
        "logs/report/table2.log",
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        report=slice_of("report"),
    script:
        "../../scripts/report_table2.py"


rule report_emotions:
    input:
        metrics=RUNS_EMOTIONS_METRICS,
        lib=lib_for("scripts/report_emotions.py"),
    output:
        csv=report(
            "results/emotions.csv",
            caption="../report/emotions.rst",
            category="Tables",
            labels={"table": "Emotion detection"},
        ),
    log:
        "logs/report/emotions.log",
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        experiments={n: EXPERIMENTS[n] for n in REPORT_EMOTIONS},
    script:
        "../../scripts/report_emotions.py"


rule report_label_distribution:
    input:
        manifest="results/corpus/manifest.parquet",
        lib=lib_for("scripts/report_label_distribution.py"),
    output:
        png=report(
            "results/figures/label_distribution.png",
            caption="../report/label_distribution.rst",
            category="Figures",
            labels={"figure": "Label distribution"},
        ),
    log:
        "logs/report/label_distribution.log",
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=5,
    params:
        report=slice_of("report"),
    script:
        "../../scripts/report_label_distribution.py"


rule report_modality_utilisation:
    input:
        decisions=RUNS_ADAMML_DECISIONS,
        lib=lib_for("scripts/report_modality_utilisation.py"),
    output:
        png=report(
            "results/figures/modality_utilisation.png",
            caption="../report/modality_utilisation.rst",
            category="Figures",
            labels={"figure": "AdaMML modality utilisation"},
        ),
        csv=report(
            "results/modality_utilisation.csv",
            caption="../report/modality_utilisation.rst",
            category="Tables",
            labels={"table": "AdaMML modality utilisation"},
        ),
    log:
        "logs/report/modality_utilisation.log",
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=5,
    params:
        experiments={n: EXPERIMENTS[n] for n in REPORT_ADAMML},
        report=slice_of("report"),
    script:
        "../../scripts/report_modality_utilisation.py"


rule report_learning_curves:
    input:
        histories=RUNS_ALL_HISTORIES,
        metrics=RUNS_ALL_METRICS,
        lib=lib_for("scripts/report_learning_curves.py"),
    output:
        png=report(
            "results/figures/learning_curves.png",
            caption="../report/learning_curves.rst",
            category="Figures",
            labels={"figure": "Learning curves"},
        ),
    log:
        "logs/report/learning_curves.log",
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=5,
    params:
        experiments={n: EXPERIMENTS[n] for n in REPORT_EMOTION_AND_TABLE1},
        report=slice_of("report"),
    script:
        "../../scripts/report_learning_curves.py"


rule report_scatter:
    input:
        predictions=RUNS_TABLE1_PREDICTIONS,
        table1="results/table1.csv",
        lib=lib_for("scripts/report_scatter.py"),
    output:
        png=report(
            "results/figures/scatter.png",
            caption="../report/scatter.rst",
            category="Figures",
            labels={"figure": "Predicted vs true"},
        ),
    log:
        "logs/report/scatter.log",
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=5,
    params:
        report=slice_of("report"),
    script:
        "../../scripts/report_scatter.py"


# The report is a default target once the experiment matrix is loaded (config/experiments.yaml).
if REPORT_TABLE1 or REPORT_EMOTIONS:
    FINAL_TARGETS += ["results/table2.csv", "results/figures/label_distribution.png"]
if REPORT_TABLE1:
    FINAL_TARGETS += [
        "results/table1.csv",
        "results/table1.md",
        "results/findings.csv",
        "results/figures/learning_curves.png",
        "results/figures/scatter.png",
    ]
if REPORT_EMOTIONS:
    FINAL_TARGETS += ["results/emotions.csv"]
if REPORT_ADAMML:
    FINAL_TARGETS += [
        "results/figures/modality_utilisation.png",
        "results/modality_utilisation.csv",
    ]
