"""Visual and media stages on the tiny demo run: stores, provenance, and the sentiment signal.

Why the correlation threshold is 0.3: the demo draws each segment's facial-expression latent with
correlation ``corpus.demo.strengths.visual`` = 0.6 to the sentiment latent and warps the mouth
corners by it (plus a per-speaker resting smile). If the landmark feature measured that smile
perfectly we would expect r ~ 0.6 with the sentiment latent; the tiny corpus has ~60 segments, so
the sampling s.d. of r there is ~(1 - 0.36) / sqrt(59) ~ 0.08, and under "no signal" it is
~1 / sqrt(59) ~ 0.13. 0.3 is ~3 s.d. below the expectation and ~2.3 s.d. above chance. Against
the visual latent itself (what the face actually shows) the feature must do much better: > 0.8.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from polysent import contracts
from polysent.corpus.sharding import shard_ids
from polysent.features.landmarks import FEATURES
from polysent.io import read_provenance

pytestmark = pytest.mark.workflow


def _shards(wf) -> list[str]:
    return shard_ids(yaml.safe_load((wf / "config" / "tiny.yaml").read_text())["shards"])


@pytest.fixture(scope="module")
def visual(tiny_run) -> pd.DataFrame:
    frames = []
    for shard in _shards(tiny_run):
        path = tiny_run / f"results/visual/{shard}.parquet"
        table = contracts.read(path, contracts.VISUAL_FRAMES)
        assert table.schema.names[4:] == FEATURES
        assert all(str(table.schema.field(n).type) == "float" for n in FEATURES)
        prov = read_provenance(path)
        assert prov["backend"] == "landmarks" and "OpenFace" in prov["stand_in"]
        assert prov["params"]["fps"] > 0 and prov["versions"]["dlib-bin"]
        frames.append(table.to_pandas())
    return pd.concat(frames, ignore_index=True)


def test_every_segment_has_frames_or_a_qc_record(tiny_run, visual):
    segments = set(pq.read_table(tiny_run / "results/corpus/manifest.parquet").column("segment_id").to_pylist())
    qc = set()
    for shard in _shards(tiny_run):
        qc |= set(pq.read_table(tiny_run / f"results/qc/visual/{shard}.parquet").column("segment_id").to_pylist())
        index = pq.read_table(tiny_run / f"results/media/{shard}/index.parquet").to_pandas()
        assert set(index.sample_rate) == {16000, 22050}
        assert all((tiny_run / w).is_file() for w in index.wav)
    assert set(visual.segment_id) | qc == segments
    assert visual[~visual.success][FEATURES].isna().all().all()
    assert visual[visual.success][FEATURES].notna().all().all()


def test_lip_corner_raise_follows_the_demo_sentiment(tiny_run, visual):
    truth = pd.read_parquet(tiny_run / "results/corpus/demo_truth.parquet").set_index("segment_id")
    ok = visual[visual.success]
    lip = ok.groupby("segment_id")[["lip_corner_raise_l", "lip_corner_raise_r"]].mean().mean(axis=1)
    both = truth.join(lip.rename("lip"), how="inner")
    assert len(both) >= 30
    r_sentiment = np.corrcoef(both["lip"], both["latent_sentiment"])[0, 1]
    r_visual = np.corrcoef(both["lip"], both["latent_visual"])[0, 1]
    assert r_sentiment > 0.3, r_sentiment
    assert r_visual > 0.8, r_visual


def test_cutaway_frames_have_no_face(tiny_run, visual):
    """The demo's face-less cutaways must come out as success = false, the face frames as true."""
    manifest = pq.read_table(tiny_run / "results/corpus/manifest.parquet").to_pandas().set_index("segment_id")
    cut = pd.read_parquet(tiny_run / "results/corpus/cutaways.parquet")
    fps = yaml.safe_load((tiny_run / "config/tiny.yaml").read_text())["corpus"]["demo"]["fps"]
    v = visual.join(manifest[["video_id", "start"]], on="segment_id")
    v["frame"] = np.round((v["time"] + v["start"]) * fps).astype(int)
    is_cut = pd.MultiIndex.from_frame(v[["video_id", "frame"]]).isin(
        pd.MultiIndex.from_frame(cut[["video_id", "frame"]])
    )
    assert is_cut.sum() > 0
    assert (~v.success[is_cut]).mean() > 0.9
    assert v.success[~is_cut].mean() > 0.95
