# Stage 'transfer': the cross-lingual transfer matrix (config["transfer"]): one model per source
# language, evaluated on the test split of every language -> results/transfer_matrix.csv (+ .md)
# and a heatmap in the report.
# The matrix's experiment entries (transfer_<src>_<tgt>) are generated here at DAG build
# (polysent.experiments.transfer_entries) and added to EXPERIMENTS and to the training groups of
# train.smk, so rule `train` trains each source language once per seed (its rows differ only in
# `eval`) and rule `train_run` links the run folders, exactly as for Table 1's rows. They form
# their own groups: Table 1's groups, and so the default demo's DAG, are unchanged.
# With transfer.languages set (config/transfer.yaml) the matrix and heatmap are default targets.
TRANSFER_EXPERIMENTS = polysent_experiments.transfer_entries(
    config["transfer"], LANGS, taken=EXPERIMENTS
)
EXPERIMENTS = {**EXPERIMENTS, **TRANSFER_EXPERIMENTS}
polysent_experiments.add_groups(
    TRAIN_GROUPS,
    polysent_experiments.training_groups(
        TRANSFER_EXPERIMENTS, list(TRANSFER_EXPERIMENTS), lambda entry: entry["seeds"]
    ),
)


localrules:
    report_transfer_matrix,
    report_transfer_heatmap,


rule report_transfer_matrix:
    input:
        metrics=[
            f"results/runs/{name}/seed{seed}/metrics.json"
            for name, entry in TRANSFER_EXPERIMENTS.items()
            for seed in entry["seeds"]
        ],
        lib=lib_for("scripts/report_transfer_matrix.py"),
    output:
        csv=report_table("results/transfer_matrix.csv", "transfer_matrix", "Transfer matrix"),
        md="results/transfer_matrix.md",
    log:
        report_log("transfer_matrix"),
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        **REPORT_TABLE_RESOURCES,
    params:
        experiments=TRANSFER_EXPERIMENTS,
        text_encoder=slice_of("text", "encoder"),
    script:
        "../../scripts/report_transfer_matrix.py"


rule report_transfer_heatmap:
    input:
        csv=rules.report_transfer_matrix.output.csv,
        lib=lib_for("scripts/report_transfer_heatmap.py"),
    output:
        png=report_figure(
            "results/figures/transfer_matrix.png", "transfer_matrix", "Transfer matrix"
        ),
    log:
        report_log("transfer_heatmap"),
    conda:
        "../../envs/polysent.yaml"
    threads: 1
    resources:
        **REPORT_FIGURE_RESOURCES,
    params:
        report=slice_of("report"),
    script:
        "../../scripts/report_transfer_heatmap.py"


if config["transfer"]["languages"]:
    FINAL_TARGETS += outputs_of("report_transfer_matrix", "report_transfer_heatmap")
