"""Rule corpus_demo through Snakemake: the tiny demo corpus in a private copy of the workflow.

Builds only the corpus target (not the whole DAG: that is the shared ``tiny_run``), then checks
the outputs, that a second invocation has nothing to do, that editing the ``corpus.demo`` slice
re-runs the rule, and that ``snakemake --lint`` has nothing to say about it.
"""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest
import yaml

from conftest import snakemake
from polysent import contracts

pytestmark = pytest.mark.workflow

TARGET = "results/corpus/manifest.parquet"


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    from conftest import copy_workflow

    wf = copy_workflow(tmp_path_factory.mktemp("demo_wf") / "wf")
    snakemake(wf, TARGET, "--cores", "2", "--configfile", "config/tiny.yaml")
    return wf


def test_tiny_corpus_outputs(tiny_corpus):
    wf = tiny_corpus
    cfg = yaml.safe_load((wf / "config/tiny.yaml").read_text())
    demo = cfg["corpus"]["demo"]
    m = contracts.read(wf / TARGET, contracts.MANIFEST).to_pandas()
    assert set(m["lang"]) == set(cfg["languages"])
    per_lang = m.groupby("lang")["video_id"].nunique()
    assert (per_lang == demo["videos_per_language"]).all()
    assert (m.groupby("video_id").size() == demo["segments_per_video"]["min"]).all()
    assert m.groupby("video_id")["split"].nunique().max() == 1
    for _lang, g in m.groupby("lang"):
        assert g.groupby("split")["video_id"].nunique().to_dict() == {"train": 8, "valid": 1, "test": 1}
    assert set(m["shard"]) <= set(range(cfg["shards"]))
    for path in set(m["video_path"]) | set(m["audio_path"]):
        assert path.startswith("results/corpus/media/") and (wf / path).is_file()
    words = contracts.read(wf / "results/corpus/word_truth.parquet", contracts.WORDS).to_pandas()
    assert set(words["segment_id"]) == set(m["segment_id"])
    truth = pd.read_parquet(wf / "results/corpus/demo_truth.parquet")
    assert truth["segment_id"].tolist() == m["segment_id"].tolist()
    assert (wf / "results/corpus/cutaways.parquet").is_file()
    assert (wf / "results/qc/corpus/all.parquet").is_file()
    assert (wf / "logs/corpus/demo.log").read_text().count("rendered") == 1
    bench = pd.read_csv(wf / "benchmarks/corpus/demo.tsv", sep="\t")
    assert bench["s"].iloc[0] > 0
    # Every video is playable: ffprobe reads one H.264 and one AAC stream.
    for path in sorted(set(m["video_path"]))[:4]:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", path],
            cwd=wf, capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        assert sorted(out) == ["aac", "h264"], path


def test_rerun_is_a_no_op_and_config_edits_rerun(tiny_corpus):
    wf = tiny_corpus
    proc = snakemake(wf, TARGET, "-n", "--configfile", "config/tiny.yaml")
    assert "Nothing to be done" in proc.stdout + proc.stderr
    cfg = yaml.safe_load((wf / "config/tiny.yaml").read_text())
    cfg["corpus"]["demo"]["strengths"] = {"audio": 0.1}
    (wf / "config/tiny_edit.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(wf, TARGET, "-n", "--configfile", "config/tiny_edit.yaml")
    out = proc.stdout + proc.stderr
    assert "corpus_demo" in out and "params" in out.lower(), out[-3000:]


def test_lint_has_no_findings_on_corpus_rules(workflow_copy):
    proc = snakemake(workflow_copy, "--lint", "--configfile", "config/tiny.yaml", check=False, timeout=300)
    out = proc.stdout + proc.stderr
    assert "Lints for" in out or "Congratulations" in out, out[-4000:]  # the linter did run
    assert "corpus.smk" not in out and "rule corpus_demo" not in out, out[-4000:]
