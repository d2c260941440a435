"""Snakemake adapter: gather all QC records into results/qc/{records,summary}.csv and apply the threshold."""

from polysent import qc, runlog

log = runlog.start(snakemake.log[0])
summary = qc.summarise_run(
    manifest_path=snakemake.input.manifest,
    qc_paths=snakemake.input.qc,
    summary_path=snakemake.output.summary,
    records_path=snakemake.output.records,
    max_failure_rate=snakemake.params.cfg["max_failure_rate"],
)
log.info("QC summary:\n%s", summary.to_string(index=False))
