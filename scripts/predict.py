"""Snakemake adapter: a bundle's predictions on the new videos of one predict entry (see polysent.predict)."""

from polysent import runlog
from polysent.predict import predict

log = runlog.start(snakemake.log[0])
entry = snakemake.params.entry
predict(
    snakemake.input.bundle,
    snakemake.output.csv,
    manifest=snakemake.input.get("manifest"),
    media=snakemake.input.get("media"),
    lang=entry["lang"],
    work=snakemake.output.work,
    allow_mismatch=entry["allow_feature_mismatch"],
    segment_cfg=entry["segment"],
    asr_cfg=entry["asr"],
    pseudo_word=entry["pseudo_word"],
    threads=snakemake.threads,
)
