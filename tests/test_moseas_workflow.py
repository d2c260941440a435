"""The corpus_external rule in a private copy of the workflow: CMU-MOSEAS fake release, loopback
media server with faults, then the folder source on the manifest it produced (dry-runs + one
real run of the corpus rule only)."""

from __future__ import annotations

import pandas as pd
import yaml

from conftest import copy_workflow, snakemake
from test_moseas_support import LANG_DIR, VIDEOS, FaultServer, tiny_videos, write_fake_moseas  # noqa: F401


def test_corpus_rule_runs_on_fake_release(tmp_path, tiny_videos):
    wf = copy_workflow(tmp_path / "wf")
    truth = write_fake_moseas(wf / "data/CMU-MOSEAS")
    files = {}
    for lang, vids in VIDEOS.items():
        language, batch = LANG_DIR[lang]
        for vid, _ in vids:
            if vid != "Zz_9-8_7xYw":
                files[f"/cache/{language}/{batch}/{vid}.mp4"] = tiny_videos[vid]
    faults = {p: ["500", "truncate"] for p in list(files)[:2]}
    with FaultServer(files, faults=faults) as srv:
        cfg = yaml.safe_load((wf / "config/moseas.yaml").read_text())
        cfg["corpus"]["moseas"]["media"] = {
            "order": ["local", "http"],
            "http": {"url": srv.base + "/cache/{language}/{batch}/{video_id}{ext}"},
        }
        cfg["corpus"]["moseas"]["download"] = {
            "retries": 3,
            "backoff_base_s": 0.01,
            "read_timeout_s": 2,
            "rate_per_s": 0,
            "min_success_rate": 0.5,
        }
        # only the corpus is built here: no report row, so none needs test segments of every language
        cfg["report"] = {**cfg.get("report", {}), "table1": [], "emotions": []}
        (wf / "config/test.yaml").write_text(yaml.safe_dump(cfg))
        dry = snakemake(wf, "-n", "results/corpus/manifest.parquet", "--configfile", "config/test.yaml")
        assert "corpus_external" in dry.stdout
        snakemake(wf, "results/corpus/manifest.parquet", "--cores", "1", "--configfile", "config/test.yaml")
    m = pd.read_parquet(wf / "results/corpus/manifest.parquet")
    assert set(m.segment_id) == set(truth) - {"Zz_9-8_7xYw_0"}
    for p in m.video_path.unique():
        vid = p.rsplit("/", 1)[1].removesuffix(".mp4")
        assert (wf / p).read_bytes() == tiny_videos[vid] and p.startswith("results/corpus/media/")
    qc = pd.read_parquet(wf / "results/qc/corpus/all.parquet")
    assert qc.segment_id.tolist() == ["Zz_9-8_7xYw_0"] and "HTTP 404" in qc.reason[0]
    assert (wf / "results/corpus/moseas_annotations.parquet").exists()
    assert (wf / "logs/corpus/external.log").read_text().count("FAILED") == 1
    # Re-running with nothing changed does nothing; the media are not fetched again.
    again = snakemake(wf, "-n", "results/corpus/manifest.parquet", "--configfile", "config/test.yaml")
    assert "Nothing to be done" in again.stdout + again.stderr

    # The folder source reads the manifest the moseas source produced (Parquet, video paths given).
    m.drop(columns=["split", "shard"]).to_parquet(wf / "data/my.parquet")
    # The media sit in the moseas build's results/, outside the manifest's folder data/: allowed
    # explicitly (they are then copied, never hard-linked).
    fcfg = {
        **cfg,
        "corpus": {
            "source": "folder",
            "folder": {"manifest": "data/my.parquet", "labels": ["happiness", "relaxed"], "allow_outside_root": True},
        },
    }
    fcfg["corpus"]["folder"]["columns"] = {}
    (wf / "config/folder.yaml").write_text(yaml.safe_dump(fcfg))
    # Paths in the Parquet are relative to the working dir; the folder source resolves them
    # relative to the manifest, so rewrite them for data/.
    f = pd.read_parquet(wf / "data/my.parquet")
    f["video_path"] = "../" + f["video_path"]
    f.to_parquet(wf / "data/my.parquet")
    snakemake(wf, "results/corpus/manifest.parquet", "--forceall", "--cores", "1", "--configfile", "config/folder.yaml")
    m2 = pd.read_parquet(wf / "results/corpus/manifest.parquet")
    assert m2.segment_id.tolist() == m.segment_id.tolist()
    assert list(m2.columns[-2:]) == ["happiness", "relaxed"]
    assert (m2.split == m.split).all()  # same seed, same videos → same split


def test_lint_clean_for_external_corpus_rule(workflow_copy):
    for cfg in ("config/moseas.yaml",):
        proc = snakemake(workflow_copy, "--lint", "--configfile", cfg, check=False, timeout=300)
        out = proc.stdout + proc.stderr
        assert "Lints for rule corpus_external" not in out and "corpus_external.smk" not in out, out[-4000:]
        assert proc.returncode == 0 or "Lints for" in out, out[-4000:]  # the linter really ran
