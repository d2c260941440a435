"""Acoustic stage in the workflow: stores of the tiny run, and exact re-runs after a librosa tweak."""

from __future__ import annotations

import pytest
import yaml

from conftest import describe_jobs, planned_jobs
from polysent import contracts
from polysent.corpus.sharding import shard_ids
from polysent.io import read_provenance

pytestmark = pytest.mark.workflow

TINY = ("--configfile", "config/tiny.yaml")
UPSTREAM_OR_SIBLING = {"corpus_demo", "media", "visual", "align", "translate", "text"}


def _shards(wf) -> list[str]:
    return shard_ids(yaml.safe_load((wf / "config" / "tiny.yaml").read_text())["shards"])


def test_tiny_run_acoustic_stores(tiny_run):
    manifest = contracts.read(tiny_run / "results/corpus/manifest.parquet", contracts.MANIFEST)
    seen, qc = set(), set()
    for shard in _shards(tiny_run):
        path = tiny_run / f"results/acoustic/{shard}.parquet"
        table = contracts.read(path, contracts.FRAMES)
        features = table.schema.names[2:]
        assert len(features) == 25 and features[0] == "chroma_00" and features[-1] == "tonnetz_5"
        assert all(str(table.schema.field(n).type) == "float" for n in features)
        prov = read_provenance(path)
        assert prov["backend"] == "librosa" and prov["params"]["sr"] == 22050 and prov["versions"]["librosa"]
        seen |= set(table.column("segment_id").to_pylist())
        qc |= set(
            contracts.read(tiny_run / f"results/qc/acoustic/{shard}.parquet", contracts.QC)
            .column("segment_id")
            .to_pylist()
        )
    # Every segment of the manifest has frames or a QC record.
    assert seen | qc == set(manifest.column("segment_id").to_pylist())


def test_changing_one_librosa_parameter_plans_only_acoustic_and_descendants(tiny_run, tmp_path):
    """Dry runs in the finished tiny run itself (read-only: ``--nolock``, no copy, so absolute
    paths recorded in Snakemake's metadata stay valid); the change is one extra config file that
    Snakemake merges over config/tiny.yaml."""
    override = tmp_path / "n_fft.yaml"
    override.write_text(yaml.safe_dump({"acoustic": {"librosa": {"n_fft": 1024}}}))
    assert planned_jobs(tiny_run, "--nolock", *TINY) == {}, "the tiny run is not up to date"
    changed = planned_jobs(tiny_run, "--nolock", *TINY, str(override))

    acoustic = {k for k in changed if k[0] == "acoustic"}
    assert len(acoustic) == len(_shards(tiny_run)), describe_jobs(changed)
    assert all("params" in changed[k].reason.lower() for k in acoustic), describe_jobs(changed)
    assert not {k for k in changed if k[0] in UPSTREAM_OR_SIBLING}, describe_jobs(changed)
    # Exactly the descendants: what Snakemake itself plans when the acoustic outputs are forced
    # with the unchanged config.
    outputs = [f"results/acoustic/{s}.parquet" for s in _shards(tiny_run)]
    forced = planned_jobs(tiny_run, "--nolock", *TINY, "--forcerun", *outputs)
    assert set(changed) == set(forced), (
        f"planned after the change:\n{describe_jobs(changed)}\nforced acoustic:\n{describe_jobs(forced)}"
    )
