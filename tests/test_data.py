"""Feature-store reading, experiment splits (few-shot subsets, drop_neutral, TransAug), batches."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from polysent.data import (
    DataError,
    StoreSamples,
    batches,
    build_splits,
    collate,
    sample_units,
    sample_videos,
    samples_from_store,
    samples_from_table,
)
from polysent.synthetic import synthetic_store_table

DIMS = {"text": 6, "visual": 3, "acoustic": 4}


@pytest.fixture
def stores(tmp_path):
    paths = {}
    for lang, other in (("fr", "es"), ("es", "fr")):
        table = synthetic_store_table(lang, n_videos=20, segments_per_video=4, dims=DIMS, max_words=7, tr_lang=other)
        paths[lang] = tmp_path / f"{lang}.parquet"
        pq.write_table(table, paths[lang])
    return paths


def test_samples_from_store_take_dimensions_from_the_arrow_type(stores):
    samples, dims = samples_from_store(stores["fr"], ["happiness"])
    assert dims == DIMS
    s = samples[0]
    assert s.feats["text"].shape == (s.length, 6) and s.feats["visual"].dtype == np.float32
    assert s.tr is not None and s.tr["acoustic"].shape[1] == 4 and s.tr_lang == "es"
    assert s.emotions.shape == (1,)


def test_unknown_emotion_and_missing_column_name_the_file(stores, tmp_path):
    with pytest.raises(DataError, match="fr.parquet.*'anger'"):
        samples_from_store(stores["fr"], ["anger"])
    with pytest.raises(DataError, match="feature store .*absent.parquet does not exist"):
        samples_from_store(tmp_path / "absent.parquet")
    bad = pq.read_table(stores["fr"]).drop(["visual"])
    with pytest.raises(DataError, match="bad.parquet: missing column.*visual"):
        samples_from_table(bad, str(tmp_path / "bad.parquet"))


def test_unequal_modality_lengths_name_the_segment(stores, tmp_path):
    table = pq.read_table(stores["fr"])
    col = table.column("visual").combine_chunks()
    rows = col.to_pylist()
    rows[2] = rows[2][:-1]
    typ = col.type
    table = table.set_column(table.schema.get_field_index("visual"), "visual", pa.array(rows, typ))
    sid = table.column("segment_id")[2].as_py()
    with pytest.raises(DataError, match=sid):
        samples_from_table(table, "x.parquet")


LEGACY = {"unit": "videos", "subset_seed": None, "valid": "same"}  # the pre-2026-12 few-shot rule


def test_legacy_fraction_samples_whole_videos_reproducibly(stores):
    exp = {"train": {"fr": 1.0, "es": {"fraction": 0.25, **LEGACY}}, "eval": "es"}
    a = build_splits(stores, exp, seed=1)
    b = build_splits(stores, exp, seed=1)
    c = build_splits(stores, exp, seed=2)
    es_a = {s.segment_id for s in a.train if s.lang == "es"}
    assert es_a == {s.segment_id for s in b.train if s.lang == "es"}
    assert es_a != {s.segment_id for s in c.train if s.lang == "es"}
    es_videos = {s.video_id for s in a.train if s.lang == "es"}
    all_es_train_videos = {s.video_id for s in samples_from_store(stores["es"])[0] if s.split == "train"}
    assert len(es_videos) == round(0.25 * len(all_es_train_videos))
    # every segment of a chosen video is there
    n_seg = sum(1 for s in samples_from_store(stores["es"])[0] if s.video_id in es_videos and s.split == "train")
    assert len(es_a) == n_seg
    assert sum(s.lang == "fr" for s in a.train) == sum(s.split == "train" for s in samples_from_store(stores["fr"])[0])
    # test = eval language's test split only; valid = training languages' valid splits
    assert {s.lang for s in a.test} == {"es"} and {s.split for s in a.test} == {"test"}
    assert {s.split for s in a.valid} == {"valid"}
    # the old code path exactly: the same videos from default_rng([seed, crc32("es:train")]),
    # and the validation split shrunk by the same fraction
    es_pool = [s for s in samples_from_store(stores["es"])[0] if s.split == "train"]
    assert es_a == {s.segment_id for s in sample_videos(es_pool, 0.25, 1, "es", "train")}
    es_valid = [s for s in samples_from_store(stores["es"])[0] if s.split == "valid"]
    assert {s.segment_id for s in a.valid if s.lang == "es"} == {
        s.segment_id for s in sample_videos(es_valid, 0.25, 1, "es", "valid")
    }


def test_small_fraction_keeps_at_least_one_unit(stores):
    sp = build_splits(stores, {"train": {"fr": 1.0, "es": {"fraction": 0.01, "unit": "videos"}}, "eval": "es"}, seed=0)
    assert len({s.video_id for s in sp.train if s.lang == "es"}) == 1
    sp = build_splits(stores, {"train": {"fr": 1.0, "es": 0.01}, "eval": "es"}, seed=0)  # bare: segments
    assert sum(s.lang == "es" for s in sp.train) == 1


def _es(part):
    return [s for s in part if s.lang == "es"]


def _same_splits(a, b) -> bool:
    def rows(sp):
        return [
            (
                s.segment_id,
                s.y,
                s.augmented,
                {m: x.tobytes() for m, x in s.feats.items()},
                s.tr and {m: x.tobytes() for m, x in s.tr.items()},
            )
            for part in (sp.train, sp.valid, sp.test)
            for s in part
        ]

    return rows(a) == rows(b)


def test_store_samples_reads_each_store_once_and_no_split_changes_what_the_next_reads(stores, monkeypatch):
    import polysent.data as data_module

    reads = []
    original = data_module.samples_from_store

    def counting(path, emotions=()):
        reads.append(str(path))
        return original(path, emotions)

    monkeypatch.setattr(data_module, "samples_from_store", counting)
    shared = StoreSamples()
    few_shot = {"train": {"fr": 1.0, "es": {"count": 7}}, "eval": "es", "transaug": True}
    for exp, standardize in ((few_shot, True), ({"train": {"fr": 1.0}, "eval": "fr"}, False)):
        for seed in (1, 2):
            cached = build_splits(stores, exp, seed, max_len=3, standardize=standardize, read_samples=shared)
            fresh = build_splits(stores, exp, seed, max_len=3, standardize=standardize)
            assert _same_splits(cached, fresh), (exp, seed)
    assert sorted(reads) == sorted(map(str, stores.values()))  # once per store, for 2 experiments x 2 seeds
    first, _ = shared(stores["fr"])
    again, _ = shared(stores["fr"])
    assert first[0] is not again[0] and first[0].feats is not again[0].feats
    with pytest.raises(ValueError, match="read-only"):
        first[0].feats["text"][0, 0] = 1.0


def test_few_shot_count_is_exact_for_a_subset_seed_and_independent_of_the_init_seed(stores):
    exp = {"train": {"fr": 1.0, "es": {"count": 7}}, "eval": "es"}
    runs = [build_splits(stores, exp, seed=seed) for seed in (1, 2, 3)]
    subsets = [{s.segment_id for s in _es(sp.train)} for sp in runs]
    assert [len(x) for x in subsets] == [7, 7, 7]
    assert subsets[0] == subsets[1] == subsets[2]  # initialisation seed does not redraw it
    other = build_splits(stores, {**exp, "train": {"fr": 1.0, "es": {"count": 7, "subset_seed": 5}}}, seed=1)
    assert len(_es(other.train)) == 7 and {s.segment_id for s in _es(other.train)} != subsets[0]
    # segments, not videos: the 7 come from more than the 2 videos whole-video sampling would need
    assert len({s.video_id for s in _es(runs[0].train)}) > 2
    assert runs[0].report["n_train_by_lang"] == {"es": 7, "fr": sum(s.lang == "fr" for s in runs[0].train)}
    rec = runs[0].report["subsets"]["es"]
    assert (rec["count"], rec["unit"], rec["subset_seed"], rec["segments"]) == (7, "segments", 0, 7)
    # subset_seed null: the old per-seed redraw, still exactly 7
    per_seed = {**exp, "train": {"fr": 1.0, "es": {"count": 7, "subset_seed": None}}}
    drawn = [{s.segment_id for s in _es(build_splits(stores, per_seed, seed=k).train)} for k in (1, 2)]
    assert [len(x) for x in drawn] == [7, 7] and drawn[0] != drawn[1]


def test_few_shot_count_of_videos_keeps_whole_videos(stores):
    sp = build_splits(stores, {"train": {"fr": 1.0, "es": {"count": 3, "unit": "videos"}}, "eval": "es"}, seed=0)
    videos = {s.video_id for s in _es(sp.train)}
    assert len(videos) == 3
    pool = [s for s in samples_from_store(stores["es"])[0] if s.split == "train" and s.video_id in videos]
    assert len(_es(sp.train)) == len(pool)


def test_few_shot_validation_split_is_whole_unless_asked(stores):
    full_valid = sum(s.split == "valid" for s in samples_from_store(stores["es"])[0])
    whole = build_splits(stores, {"train": {"fr": 1.0, "es": {"count": 4}}, "eval": "es"}, seed=0)
    assert len(_es(whole.valid)) == full_valid and whole.report["n_valid_by_lang"]["es"] == full_valid
    same = build_splits(stores, {"train": {"fr": 1.0, "es": {"count": 12, "valid": "same"}}, "eval": "es"}, seed=0)
    n_train_pool = sum(s.split == "train" for s in samples_from_store(stores["es"])[0])
    assert len(_es(same.valid)) == round(12 / n_train_pool * full_valid) < full_valid


def _video_order(samples):
    """(video_id, store position) of each sample: the order ``draw: first`` takes units in."""
    pos = {s.segment_id: i for i, s in enumerate(samples)}
    return sorted(samples, key=lambda s: (s.video_id, pos[s.segment_id]))


def test_few_shot_first_draw_takes_the_first_units_in_video_order(stores):
    pool = [s for s in samples_from_store(stores["es"])[0] if s.split == "train"]
    first = build_splits(stores, {"train": {"fr": 1.0, "es": {"count": 6, "draw": "first"}}, "eval": "es"}, seed=0)
    expected = [s.segment_id for s in _video_order(pool)][:6]
    assert [s.segment_id for s in _es(first.train)] == expected  # kept in store order = video order here
    # contiguous: whole videos but the last, fewer videos than the random draw of the same count
    rand = build_splits(stores, {"train": {"fr": 1.0, "es": {"count": 6}}, "eval": "es"}, seed=0)
    assert len({s.video_id for s in _es(first.train)}) == 2 < len({s.video_id for s in _es(rand.train)})
    # independent of the subset seed and of the initialisation seed
    other = build_splits(
        stores, {"train": {"fr": 1.0, "es": {"count": 6, "draw": "first", "subset_seed": 9}}, "eval": "es"}, seed=4
    )
    assert [s.segment_id for s in _es(other.train)] == expected
    assert first.report["subsets"]["es"]["draw"] == "first"
    # videos: the first N video ids, whole
    vids = build_splits(
        stores, {"train": {"fr": 1.0, "es": {"count": 2, "unit": "videos", "draw": "first"}}, "eval": "es"}, seed=0
    )
    assert sorted({s.video_id for s in _es(vids.train)}) == sorted({s.video_id for s in pool})[:2]


def test_first_draw_does_not_depend_on_row_order(stores):
    samples = [s for s in samples_from_store(stores["es"])[0] if s.split == "train"]
    by_video = {}
    for s in samples:
        by_video.setdefault(s.video_id, []).append(s)
    # videos shuffled, each video's segments kept in time order
    shuffled = [s for v in reversed(sorted(by_video)) for s in by_video[v]]
    a = sample_units(samples, "segments", 5, 0, "es", "train", "first")
    b = sample_units(shuffled, "segments", 5, 0, "es", "train", "first")
    assert {s.segment_id for s in a} == {s.segment_id for s in b}


def test_budget_validation_keeps_no_more_labels_than_training(stores):
    full_valid = [s for s in samples_from_store(stores["es"])[0] if s.split == "valid"]
    for draw in ("random", "first"):
        spec = {"count": 3, "valid": "budget", "draw": draw}
        sp = build_splits(stores, {"train": {"fr": 1.0, "es": spec}, "eval": "es"}, seed=0)
        assert len(_es(sp.train)) == 3 and len(_es(sp.valid)) == 3 < len(full_valid)
        assert sp.report["n_valid_by_lang"]["es"] == 3
        # the French (whole-language) validation split is untouched
        assert len([s for s in sp.valid if s.lang == "fr"]) == sum(
            s.split == "valid" for s in samples_from_store(stores["fr"])[0]
        )
    first = build_splits(
        stores, {"train": {"fr": 1.0, "es": {"count": 3, "valid": "budget", "draw": "first"}}, "eval": "es"}, seed=0
    )
    assert [s.segment_id for s in _es(first.valid)] == [s.segment_id for s in _video_order(full_valid)][:3]
    # a budget above the split keeps the whole split
    big = build_splits(stores, {"train": {"fr": 1.0, "es": {"count": 20, "valid": "budget"}}, "eval": "es"}, seed=0)
    assert len(_es(big.valid)) == len(full_valid)


def test_few_shot_count_is_taken_after_drop_neutral(stores):
    sp = build_splits(stores, {"train": {"fr": 1.0, "es": {"count": 9}}, "eval": "es", "drop_neutral": True}, seed=0)
    assert len(_es(sp.train)) == 9 and all(abs(s.y) > 0.5 for s in _es(sp.train))


def test_few_shot_count_above_the_pool_uses_all_and_warns(stores):
    pool = sum(s.split == "train" for s in samples_from_store(stores["es"])[0])
    sp = build_splits(stores, {"train": {"es": {"count": pool + 100}}, "eval": "es"}, seed=0)
    assert len(sp.train) == pool
    assert any(f"count {pool + 100} exceeds the {pool} training segments" in w for w in sp.report["warnings"])


@pytest.mark.parametrize(
    "spec,match",
    [
        ({"count": 5, "fraction": 0.1}, "exactly one of 'fraction' and 'count'"),
        ({"unit": "videos"}, "exactly one of 'fraction' and 'count'"),
        ({"count": 5, "units": "videos"}, r"unknown key\(s\) \['units'\]"),
        ({"count": 5, "unit": "words"}, "train.es.unit must be one of"),
        ({"count": 2.5}, "train.es.count must be a whole number"),
        ({"fraction": 1.5}, r"fraction for es must be within \[0, 1\]"),
        ({"count": 5, "valid": "half"}, r"train.es.valid must be one of \['whole', 'same', 'budget'\]"),
        ({"count": 5, "draw": "last"}, r"train.es.draw must be one of \['random', 'first'\]"),
    ],
)
def test_bad_few_shot_specs_name_the_language_and_key(stores, spec, match):
    with pytest.raises(DataError, match=match):
        build_splits(stores, {"train": {"fr": 1.0, "es": spec}, "eval": "es"}, seed=0)


def test_few_shot_specs_validate_against_the_schema():
    import yaml

    from conftest import REPO, SCHEMA_DIR
    from polysent.config import validate_config

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["experiments"] = {
        "ok": {"model": "mult", "eval": "es", "train": {"fr": 1.0, "es": {"count": 230}, "de": 0.5}}
    }
    validate_config(config, SCHEMA_DIR)
    assert config["experiments"]["ok"]["train"]["es"] == {
        "count": 230,
        "unit": "segments",
        "draw": "random",
        "subset_seed": 0,
        "valid": "whole",
    }
    for bad in ({"count": 230, "fraction": 0.1}, {"count": 0}, {"unit": "videos"}, {"count": 5, "seed": 1}):
        config["experiments"] = {"bad": {"model": "mult", "eval": "es", "train": {"es": bad}}}
        with pytest.raises(Exception, match="experiments.bad.train.es"):
            validate_config(config, SCHEMA_DIR)


def test_drop_neutral_removes_the_band_from_every_split(stores):
    sp = build_splits(stores, {"train": {"fr": 1.0}, "eval": "fr", "drop_neutral": True}, seed=0)
    assert all(abs(s.y) > 0.5 for part in (sp.train, sp.valid, sp.test) for s in part)
    assert sp.report["dropped_neutral"] > 0


def test_transaug_adds_translations_as_samples(stores):
    base = build_splits(stores, {"train": {"fr": 1.0}, "eval": "fr"}, seed=0)
    aug = build_splits(stores, {"train": {"fr": 1.0}, "eval": "fr", "transaug": True}, seed=0)
    extra = [s for s in aug.train if s.augmented]
    assert len(extra) == len(base.train) and all(s.lang == "es" for s in extra)
    assert not any(s.augmented for s in aug.valid + aug.test)
    # the normaliser is fitted on original training rows only, so both runs scale identically
    np.testing.assert_array_equal(base.normalizer["text"]["mean"], aug.normalizer["text"]["mean"])


def test_standardisation_uses_train_stats_and_keeps_nan_out(stores, tmp_path):
    table = pq.read_table(stores["fr"])
    rows = table.column("acoustic").to_pylist()
    rows[0][0][0] = float("nan")
    table = table.set_column(
        table.schema.get_field_index("acoustic"), "acoustic", pa.array(rows, table.schema.field("acoustic").type)
    )
    pq.write_table(table, tmp_path / "fr.parquet")
    sp = build_splits({"fr": tmp_path / "fr.parquet"}, {"train": {"fr": 1.0}, "eval": "fr"}, seed=0)
    x = np.concatenate([s.feats["acoustic"] for s in sp.train])
    assert np.all(np.isfinite(x))
    assert np.abs(x.mean(0)).max() < 1e-4 and np.abs(x.std(0) - 1).max() < 1e-2


def test_max_len_truncates(stores):
    sp = build_splits(stores, {"train": {"fr": 1.0}, "eval": "fr"}, seed=0, max_len=3)
    assert max(s.length for s in sp.train) == 3


def test_empty_split_is_a_clear_error(stores):
    with pytest.raises(DataError, match="no train samples"):
        build_splits(stores, {"train": {"fr": 0.0}, "eval": "fr"}, seed=0)
    with pytest.raises(DataError, match=r"no feature store given for language\(s\) \['de'\]"):
        build_splits(stores, {"train": {"de": 1.0}, "eval": "fr"}, seed=0)


def test_collate_pads_after_words_with_masks(stores):
    samples, _ = samples_from_store(stores["fr"])
    part = samples[:5]
    b = collate(part, pad_to=12)
    assert b["text"].shape == (5, 12, 6) and b["mask"].shape == (5, 12)
    for i, s in enumerate(part):
        assert b["mask"][i].sum() == s.length
        assert torch.all(b["text"][i, s.length :] == 0)
        np.testing.assert_array_equal(b["visual"][i, : s.length].numpy(), s.feats["visual"])
    # translations batched separately with the rows of their originals
    assert b["tr_index"].tolist() == [0, 1, 2, 3, 4]
    assert b["mask_tr"].sum(1).tolist() == [s.tr["text"].shape[0] for s in part]


def test_transaug_pairs_are_in_every_batch_with_or_without_translations(stores):
    """The pairs name which rows show the same video, also when no separate translations are batched."""
    sp = build_splits(stores, {"train": {"fr": 1.0}, "eval": "fr", "transaug": True}, seed=0)
    for unit in ("segment", "video"):
        for part, b in batches(sp.train, 8, np.random.default_rng(1), translations=False, unit=unit):
            ids = [s.segment_id for s in part]
            assert b["pair_index"].numel() == sum(s.augmented for s in part) > 0
            for i, j in zip(b["pair_index"].tolist(), b["pair_rows"].tolist()):
                assert ids[j] == f"{ids[i]}#tr-es"
            assert "text_tr" not in b and "tr_index" not in b


def test_second_text_stream_is_the_translation_into_its_language_or_the_text_again(stores):
    fr = [s for s in samples_from_store(stores["fr"])[0] if s.split == "test"][:3]
    es = [s for s in samples_from_store(stores["es"])[0] if s.split == "test"][:2]
    b = collate(fr + es, translations=False, second_text="es")
    assert b["text2_translated"].tolist() == [True, True, True, False, False]
    for i, s in enumerate(fr):  # French rows read their Spanish translation
        n = s.tr["text"].shape[0]
        np.testing.assert_array_equal(b["text2"][i, :n].numpy(), s.tr["text"])
        assert b["mask2"][i].sum() == n
    for i, s in enumerate(es, start=3):  # Spanish rows read their own text again (the paper's duplicate)
        np.testing.assert_array_equal(b["text2"][i, : s.length].numpy(), s.feats["text"])
        assert b["mask2"][i].sum() == s.length
    assert "text2" not in collate(fr, translations=False)


def test_transaug_pairs_share_a_batch(stores):
    sp = build_splits(stores, {"train": {"fr": 1.0}, "eval": "fr", "transaug": True}, seed=0)
    rng = np.random.default_rng(0)
    seen = 0
    for part, b in batches(sp.train, 8, rng, translations=True):
        ids = [s.segment_id for s in part]
        for i, j in zip(b["pair_index"].tolist(), b["pair_rows"].tolist()):
            assert ids[j] == f"{ids[i]}#tr-es"
        seen += len(part)
        assert b["tr_index"].numel() == 0  # every translation is in the batch itself
    assert seen == len(sp.train)
