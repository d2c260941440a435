"""text encoders: hashing embedding, streamed vector files (3 formats, OOV policy), transformer,
and the rerun scope of a text-encoder config edit."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import yaml

from polysent import text as T

VEC = __import__("pathlib").Path(__file__).parent / "fixtures" / "vectors"


def test_hash_vectors_deterministic_unit_norm_and_cognates_share_directions():
    a = T.hash_vector("excellent")
    assert a.shape == (300,) and a.dtype == np.float32
    assert np.allclose(a, T.hash_vector("excellent")) and abs(np.linalg.norm(a) - 1) < 1e-5
    cos = lambda x, y: float(T.hash_vector(x) @ T.hash_vector(y))  # noqa: E731
    assert cos("excellent", "excelente") > cos("excellent", "horrible") + 0.2
    assert cos("película", "pelicula") > 0.99  # accents stripped by default
    assert not np.allclose(T.hash_vector("film", seed=1), T.hash_vector("film"))


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
    vec, oov = T.encode_vectors(words, "fr", cfg)
    assert oov.tolist() == [False, False, True] and not vec[2].any()
    assert vec[0].tolist() == [0.5, 0.5, 0.0, 0.0]  # found lowercased
    vec_r, _ = T.encode_vectors(words, "fr", cfg | {"oov": "random"})
    assert vec_r[2].any() and np.allclose(vec_r[2], T.encode_vectors(["inconnu"], "fr", cfg | {"oov": "random"})[0][0])
    with pytest.raises(KeyError, match="inconnu"):
        T.encode_vectors(words, "fr", cfg | {"oov": "error"})
    with pytest.raises(T.EncoderUnavailable, match="no file for language 'es'"):
        T.encode_vectors(words, "es", cfg)
    with pytest.raises(T.EncoderUnavailable, match="not found"):
        T.read_vectors(VEC / "missing.txt", {"a"})


def test_encode_words_table_layout():
    items = pd.DataFrame({"segment_id": ["s", "s"], "kind": ["source", "source"],
                          "word_idx": [0, 1], "word": ["très", "bon"]})
    table = T.encode_words(items, "fr", {"encoder": "hash"})
    assert table.schema.field("vector").type == T.vector_type(300)
    assert table.column("word").to_pylist() == ["très", "bon"]


def test_transformer_encoder():
    pytest.importorskip(
        "transformers",
        reason="optional extra `transformers` not installed and no PyPI package ships a small "
        "local model to test with offline",
    )


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
    library paths Snakemake recorded). The edit is one override config file with text.hash.seed."""
    from conftest import describe_jobs, planned_jobs

    tiny = ("--configfile", "config/tiny.yaml")
    override = tmp_path / "text_seed.yaml"
    override.write_text(yaml.safe_dump({"text": {"hash": {"seed": 12345}}}))
    assert planned_jobs(tiny_run, "--nolock", *tiny) == {}, "the tiny run is not up to date"
    changed = planned_jobs(tiny_run, "--nolock", *tiny, str(override))
    text_jobs = {k for k in changed if k[0] == "text"}
    assert len(text_jobs) == 2 and all("params" in changed[k].reason.lower() for k in text_jobs), (
        describe_jobs(changed)
    )
    assert {k[0] for k in changed} >= {"text", "store"}, describe_jobs(changed)
    upstream = {"corpus_demo", "media", "acoustic", "visual", "align_aeneas", "align_mfa", "translate"}
    assert not {k for k in changed if k[0] in upstream}, describe_jobs(changed)
    # Exactly the descendants of text: what Snakemake plans when the text outputs are forced.
    forced = planned_jobs(tiny_run, "--nolock", *tiny, "--forcerun", "results/text/fr.parquet",
                          "results/text/es.parquet")
    assert set(changed) == set(forced), f"{describe_jobs(changed)}\nforced:\n{describe_jobs(forced)}"
