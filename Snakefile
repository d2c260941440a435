# polysent: raw multilingual monologue videos -> word-aligned feature stores -> the paper's tables.
# This file is the table of contents; every stage lives in workflow/rules/<stage>.smk and all logic
# in src/polysent/.
import os

from polysent.config import read_yaml
from polysent.scheduling import lift_local_rate_limit
from snakemake.utils import min_version

min_version("9.19")

# The workflow's own config files, found next to this Snakefile (not in the working directory, so
# `snakemake -s /path/to/Snakefile` run from elsewhere reads them too), and parsed once by
# polysent first: a YAML syntax error is then named with its file and line, which Snakemake's
# "not valid JSON or YAML" is not.
WORKFLOW_CONFIGS = [
    os.path.join(workflow.basedir, "config", name) for name in ("config.yaml", "experiments.yaml")
]
for _path in WORKFLOW_CONFIGS:
    read_yaml(_path)


configfile: WORKFLOW_CONFIGS[0]
configfile: WORKFLOW_CONFIGS[1]


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/corpus.smk"
include: "workflow/rules/corpus_external.smk"
include: "workflow/rules/media.smk"
include: "workflow/rules/acoustic.smk"
include: "workflow/rules/visual.smk"
include: "workflow/rules/align.smk"
include: "workflow/rules/translate.smk"
include: "workflow/rules/text.smk"
include: "workflow/rules/store.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/runs.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/transfer.smk"
include: "workflow/rules/qc.smk"


# A local run schedules on job events only: Snakemake's default job rate limit re-arms a 1-s
# wake-up after every scheduling round, one more chain per finished job (polysent.scheduling).
onstart:
    lift_local_rate_limit(workflow)


# Cheap gathering rules run in the main Snakemake process, not as cluster jobs.
localrules:
    all,
    train_run,
    qc_summary,
    report_table1,
    report_table2,
    report_emotions,
    report_label_distribution,
    report_modality_utilisation,
    report_learning_curves,
    report_scatter,


rule all:
    default_target: True
    input:
        FINAL_TARGETS,
