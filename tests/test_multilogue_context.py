"""Multilogue-Net over a video's utterances (issue 12): context, masks, batching, NCE, training.

On the utterance axis a segment is one vector per modality (its words' masked mean), a sequence
is one video's segments, and a prediction sees its neighbours; the word axis is the ablation
where no segment sees another.
"""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from polysent import io
from polysent.checkpoint import read_spec
from polysent.data import Sample, batches, collate, in_given_order, translated_sample
from polysent.models import NCEObjective, build_model, count_parameters
from polysent.synthetic import synthetic_store_table
from polysent.train import run_experiment
from test_train import DIMS, TRAIN, stores  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("restore_torch_state", "one_torch_thread")

TINY = {"d_g": 8, "d_p": 8, "d_e": 8, "d_h": 8, "dropout": 0.0, "rec_dropout": 0.0}


def make(time_axis="utterance", **kw):
    torch.manual_seed(0)
    return build_model("multilogue", DIMS, time_axis=time_axis, **{**TINY, **kw}).eval()


def segment(video, k, seed, lang="fr", n_words=None, tr=True):
    rng = np.random.default_rng(seed)
    n = n_words or int(rng.integers(2, 7))
    feats = {m: rng.normal(size=(n, d)).astype(np.float32) for m, d in DIMS.items()}
    n_tr = int(rng.integers(2, 7))
    trans = {m: rng.normal(size=(n_tr, d)).astype(np.float32) for m, d in DIMS.items()} if tr else None
    return Sample(
        segment_id=f"{video}_{k:03d}",
        video_id=video,
        lang=lang,
        split="train",
        y=float(rng.uniform(-3, 3)),
        emotions=np.zeros(0, np.float32),
        feats=feats,
        tr=trans,
        tr_lang="es" if tr else None,
    )


def videos(spec=(("v1", 4), ("v2", 3)), seed=0):
    """Samples of videos ``spec`` = ((video_id, n_segments), ...), in store order."""
    return [segment(v, k, seed=seed * 1000 + 10 * i + k) for i, (v, n) in enumerate(spec) for k in range(n)]


def predict(model, samples, batch_size=100):
    parts, outs = [], []
    with torch.no_grad():
        for part, batch in batches(samples, batch_size, unit=model.batch_unit):
            parts.append(part)
            outs.append(model(batch)["pred"].numpy())
    return in_given_order(samples, parts, outs)[:, 0]


def with_feats(s, **feats):
    return Sample(**{**s.__dict__, "feats": {**s.feats, **feats}})


# ------------------------------------------------------------------------------------ context


def test_a_neighbouring_segment_changes_the_prediction_another_video_does_not():
    model = make()
    samples = videos()
    base = predict(model, samples)
    changed = list(samples)
    changed[2] = with_feats(samples[2], text=samples[2].feats["text"] + 3.0)  # v1's third segment
    after = predict(model, changed)
    # its neighbours before (bimodal attention over the video) and after it (the recurrence) move
    for i in (0, 1, 3):
        assert abs(after[i] - base[i]) > 1e-4, i
    np.testing.assert_array_equal(after[4:], base[4:])  # v2, in the same batch, is untouched
    other = list(samples)
    other[5] = with_feats(samples[5], visual=samples[5].feats["visual"] * -2.0)  # a v2 segment
    np.testing.assert_array_equal(predict(model, other)[:4], base[:4])


def test_the_word_axis_sees_no_neighbours():
    model = make("word")
    assert model.batch_unit == "segment"
    samples = videos()
    base = predict(model, samples)
    changed = list(samples)
    changed[2] = with_feats(samples[2], text=samples[2].feats["text"] + 3.0)
    after = predict(model, changed)
    assert abs(after[2] - base[2]) > 1e-4
    np.testing.assert_allclose(np.delete(after, 2), np.delete(base, 2), rtol=0, atol=1e-6)
    # same parameters on both axes: the ablation changes the time axis only
    assert count_parameters(model) == count_parameters(make())


def test_utterance_axis_needs_video_batches():
    model = make()
    batch = collate(videos(), translations=False)  # segments, no video grouping
    with pytest.raises(ValueError, match="needs batches grouped by video"):
        model(batch)
    with pytest.raises(ValueError, match="time_axis must be one of"):
        make("frame")


# --------------------------------------------------------------------------------------- masks


def test_padding_utterances_and_padded_words_do_not_change_outputs():
    model = make()
    samples = videos((("v1", 6), ("v2", 2), ("v3", 4)))
    together = predict(model, samples)
    alone = np.concatenate([predict(model, [s for s in samples if s.video_id == v]) for v in ("v1", "v2", "v3")])
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-6)  # v2, v3 padded to 6 utterances
    # every segment padded with extra words of noise: masked out of its mean and of the attention
    _, batch = next(batches(samples, 100, unit="video"))
    noisy = dict(batch)
    L = batch["mask"].size(1)
    noisy["mask"] = torch.nn.functional.pad(batch["mask"], (0, 3))
    for m in DIMS:
        noisy[m] = torch.cat([batch[m], 50 * torch.randn(len(samples), 3, DIMS[m])], 1)
        noisy[m][:, :L] += 50 * torch.randn_like(batch[m]) * (1 - batch["mask"]).unsqueeze(-1)
    with torch.no_grad():
        a, b = model(batch), model(noisy)
    torch.testing.assert_close(a["pred"], b["pred"], atol=1e-6, rtol=1e-5)
    for key in a["reps"]:
        torch.testing.assert_close(a["reps"][key], b["reps"][key], atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------------------------- batching


def test_video_batches_keep_videos_whole_and_predictions_come_back_in_order():
    spec = tuple((f"v{i}", n) for i, n in enumerate((3, 1, 5, 2, 4, 2)))
    samples = videos(spec)
    shuffled_store = [samples[i] for i in np.random.default_rng(1).permutation(len(samples))]  # interleaved
    train = samples + [translated_sample(s) for s in samples[::2]]  # TransAug for some segments
    seen = []
    for part, batch in batches(train, 6, np.random.default_rng(3), translations=True, unit="video"):
        vids = {s.video_id for s in part}
        originals = [s for s in part if not s.augmented]
        assert len(originals) <= 6 or len(vids) == 1  # a longer video is never split
        for v in vids:  # whole videos, translations with their originals
            assert sorted(s.segment_id for s in part if s.video_id == v) == sorted(
                s.segment_id for s in train if s.video_id == v
            )
        # a video's translations form their own sequence, in the original's order
        vi, vp = batch["video_index"].tolist(), batch["video_pos"].tolist()
        for k, s in enumerate(part):
            same = [j for j, t in enumerate(part) if (t.video_id, t.augmented) == (s.video_id, s.augmented)]
            assert vp[k] == same.index(k) and len({vi[j] for j in same}) == 1
        assert len(set(vi)) == len({(s.video_id, s.augmented) for s in part})
        # NCE: every original with a translation has its translation batched separately
        assert batch["tr_index"].tolist() == [k for k, s in enumerate(part) if not s.augmented]
        assert batch["pair_rows"].numel() == sum(s.augmented for s in part)
        seen += [s.segment_id for s in part]
    assert sorted(seen) == sorted(s.segment_id for s in train)
    model = make()
    by_id = dict(zip([s.segment_id for s in samples], predict(model, samples)))
    got = predict(model, shuffled_store, batch_size=4)  # non-contiguous videos, several batches
    # one video's segments in another order form another sequence, so compare with that order:
    expect = {}
    for v, _ in spec:
        seq = [s for s in shuffled_store if s.video_id == v]
        expect.update(zip([s.segment_id for s in seq], predict(model, seq)))
    np.testing.assert_allclose(got, [expect[s.segment_id] for s in shuffled_store], rtol=0, atol=1e-6)
    assert not np.allclose(got, [by_id[s.segment_id] for s in shuffled_store])  # order is context


# ------------------------------------------------------------------------------------------ NCE


def test_translated_text_is_attended_to_the_same_video_states():
    model = make()
    samples = videos()
    # a "translation" that repeats the original text exactly, with an unrelated re-timed video
    same_text = [
        Sample(
            **{
                **s.__dict__,
                "tr": {
                    "text": s.feats["text"],
                    "visual": 9 * np.ones_like(s.feats["visual"]),
                    "acoustic": -9 * np.ones_like(s.feats["acoustic"]),
                },
            }
        )
        for s in samples
    ]
    _, batch = next(batches(same_text, 100, translations=True, unit="video"))
    with torch.no_grad():
        out = model(batch)
        tr = model.translated_reps(batch, out)
    rows = batch["tr_index"]
    for key in ("t|v", "t|a", "text"):  # T2 = T1 over the same V1/A1 states: T2|V1 == T1|V1
        torch.testing.assert_close(tr[key], out["reps"][key][rows], atol=1e-6, rtol=1e-5)
    # a real translation changes T2|V1, and the translation's own re-timed video never enters it
    _, batch = next(batches(samples, 100, translations=True, unit="video"))
    other_video = dict(
        batch, visual_tr=torch.randn_like(batch["visual_tr"]), acoustic_tr=torch.randn_like(batch["acoustic_tr"])
    )
    with torch.no_grad():
        out = model(batch)
        t2 = model.translated_reps(batch, out)
        torch.testing.assert_close(t2["t|v"], model.translated_reps(other_video, out)["t|v"])
    assert not torch.allclose(t2["t|v"], out["reps"]["t|v"][batch["tr_index"]], atol=1e-3)


def test_nce_cross_term_uses_the_shared_video_states_also_with_transaug():
    model = make()
    samples = videos()
    train = samples + [translated_sample(s) for s in samples]
    _, batch = next(batches(train, 100, translations=True, unit="video"))
    nce = NCEObjective(["cross_tv", "inter_tv"], model.rep_dims, dim=8)
    model.train()
    out = model(batch)
    calls = []
    original = model.translated_reps

    def spy(b, o):
        calls.append(o is out)
        return original(b, o)

    model.translated_reps = spy
    losses = nce(model, batch, out)
    assert calls == [True]  # T2|V1 from this forward pass's states, not from the TransAug rows
    assert set(losses) == {"nce_cross_tv", "nce_inter_tv"} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.cells.gru_g.w_x.grad[model.modalities.index("text")].abs().sum() > 0


# ------------------------------------------------------------------------------------- training

FAST = {**TRAIN, "max_epochs": 2}


def test_utterance_multilogue_trains_end_to_end_deterministically(stores, tmp_path):  # noqa: F811
    exp = {"model": "multilogue", "train": {"fr": 1.0, "es": {"count": 5}}, "eval": "es"}
    a = run_experiment(stores, exp, FAST, 1, tmp_path / "a", exp_name="t")
    run_experiment(stores, exp, FAST, 1, tmp_path / "b", exp_name="t")
    c = run_experiment(stores, exp, FAST, 2, tmp_path / "c", exp_name="t")
    for name in ("metrics.json", "predictions.parquet", "history.csv", "model.safetensors", "model.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert a["valid"] != c["valid"]
    assert a["data"]["n_train_by_lang"]["es"] == 5  # few-shot segments: the kept ones form the sequences
    preds = pd.read_parquet(tmp_path / "a" / "predictions.parquet")
    table = pq.read_table(stores["es"]).to_pandas()
    want = table[table["split"] == "test"]["segment_id"].tolist()
    assert preds[preds["split"] == "test"]["segment_id"].tolist() == want  # one row per segment, store order
    assert np.isfinite(preds["y_pred"]).all() and preds["y_pred"].abs().max() <= 3.0
    ckpt = read_spec(tmp_path / "a")
    assert ckpt["kwargs"]["time_axis"] == "utterance"  # the schema default, recorded for bundles
    word = run_experiment(stores, {**exp, "variation": {"time_axis": "word"}}, FAST, 1, tmp_path / "w", exp_name="t")
    assert word["n_params"] == a["n_params"] and word["test"]["mae"] != a["test"]["mae"]


def test_nce_row_and_emotions_train_on_the_utterance_axis(stores, tmp_path):  # noqa: F811
    nce_row = {
        "model": "multilogue",
        "nce": ["cross_tv", "cross_ta"],
        "transaug": True,
        "train": {"fr": 1.0},
        "eval": "fr",
    }
    m = run_experiment(stores, nce_row, FAST, 1, tmp_path / "nce", exp_name="nce")
    again = run_experiment(stores, nce_row, FAST, 1, tmp_path / "nce2", exp_name="nce")
    assert m["data"]["transaug_samples"] == m["data"]["n_train"] // 2
    hist = pd.read_csv(tmp_path / "nce" / "history.csv")
    assert np.isfinite(hist["train_loss"]).all()
    assert (tmp_path / "nce" / "metrics.json").read_bytes() == (tmp_path / "nce2" / "metrics.json").read_bytes()
    assert again["test"] == m["test"]
    # the NCE terms add to the task loss: the same row without them trains to another loss
    plain = run_experiment(stores, {**nce_row, "nce": []}, FAST, 1, tmp_path / "plain", exp_name="nce")
    assert pd.read_csv(tmp_path / "plain" / "history.csv")["train_loss"].iloc[0] < hist["train_loss"].iloc[0]
    assert plain["n_params"] < m["n_params"]
    emo = {
        "model": "multilogue",
        "task": "emotion",
        "emotions": ["happiness", "sadness"],
        "train": {"fr": 1.0},
        "eval": "fr",
        "drop_neutral": True,
    }
    e = run_experiment(stores, emo, FAST, 1, tmp_path / "emo", exp_name="emo")
    assert set(e["test"]["per_label"]) == {"happiness", "sadness"}
    probs = pd.read_parquet(tmp_path / "emo" / "predictions.parquet")["prob_happiness"]
    assert probs.between(0, 1).all()


def test_bundle_of_an_utterance_run_predicts_what_the_run_predicted(tmp_path):
    from polysent.bundle import load_bundle, make_bundle
    from test_bundle import store_metadata

    paths = {}
    for lang, other in (("fr", "es"), ("es", "fr")):
        paths[lang] = str(tmp_path / f"{lang}.parquet")
        table = synthetic_store_table(lang, n_videos=10, segments_per_video=4, dims=DIMS, max_words=12, tr_lang=other)
        io.write_parquet(paths[lang], table, provenance=store_metadata(lang))
    run_dir = tmp_path / "run"
    run_experiment(paths, {"model": "multilogue", "train": {"fr": 1.0}, "eval": "es"}, FAST, 1, run_dir)
    expected = pd.read_parquet(run_dir / "predictions.parquet")
    bundle = load_bundle(make_bundle(run_dir, paths, tmp_path / "bundle"))
    assert bundle.model.time_axis == "utterance"
    tables = pa.concat_tables([pq.read_table(paths[lang]) for lang in sorted(paths)])
    row_of = {sid: i for i, sid in enumerate(tables.column("segment_id").to_pylist())}
    for split in ("valid", "test"):
        want = expected[expected["split"] == split]
        got = bundle.predict_table(tables.take(pa.array([row_of[s] for s in want["segment_id"]]))).to_pandas()
        assert got["segment_id"].tolist() == want["segment_id"].tolist()
        np.testing.assert_array_equal(got["y_pred"].to_numpy(), want["y_pred"].to_numpy())
    meta = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    assert meta["model"]["kwargs"]["time_axis"] == "utterance"
