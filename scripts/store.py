"""Snakemake adapter: the word-aligned feature store of one language (see polysent.store)."""

from polysent import runlog
from polysent.store import run_language

log = runlog.start(snakemake.log[0])
inp = snakemake.input
run_language(
    **runlog.language_job(snakemake, snakemake.output.store),
    align_paths=inp.align,
    acoustic_paths=inp.acoustic,
    visual_paths=inp.visual,
    text_path=inp.text,
    text_tr_path=inp.get("text_tr"),
    tr_lang=snakemake.params.tr_lang,
    translate_path=inp.get("translate"),
    prior_qc_paths=list(inp.get("prior_qc") or []),
)
