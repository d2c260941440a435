# QC: every stage writes its own results/qc/{stage}/{key}.parquet (a named `qc` output);
# this rule gathers them all, whatever stages exist, and fails the run past qc.max_failure_rate.
# It is included last so that it can see every other rule's outputs.
from snakemake.io import apply_wildcards, strip_wildcard_constraints


def all_qc_files():
    """Every concrete `qc` output of the workflow's rules, expanded over its wildcards."""
    values = {
        "shard": SHARDS,
        "lang": LANGS,
        "pair": [f"{s}-{t}" for s, t in translation_pairs()],
    }
    files = []
    for r in workflow.rules:
        if r.name == "qc_summary" or "qc" not in r.output.keys():
            continue
        pattern = strip_wildcard_constraints(str(r.output.qc))
        names = set(r.wildcard_names)
        if {"src", "tgt"} <= names:
            files += [apply_wildcards(pattern, dict(src=s, tgt=t)) for s, t in translation_pairs()]
        else:
            files += expand(pattern, **{k: values[k] for k in names})
    return sorted(set(files))


def translation_pairs():
    return [tuple(p) for p in config.get("translate", {}).get("pairs", [])]


rule qc_summary:
    input:
        manifest="results/corpus/manifest.parquet",
        qc=all_qc_files(),
        lib=lib("qc.py"),
    output:
        summary=report("results/qc/summary.csv", caption="../report/qc.rst", category="QC"),
        records="results/qc/records.csv",
    log:
        "logs/qc/summary.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        cfg=slice_of("qc"),
    script:
        "../../scripts/qc_summary.py"


FINAL_TARGETS.append("results/qc/summary.csv")
