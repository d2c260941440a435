"""translate: apertium batching (one process for the corpus), pair errors, argos pivot choice."""

from __future__ import annotations

import shutil
import subprocess

import pandas as pd
import pytest

from polysent import translate as tr

needs_apertium = pytest.mark.skipif(
    shutil.which("apertium") is None, reason="apertium (Debian apertium-fr-es) not installed"
)


@needs_apertium
def test_apertium_batches_the_corpus_in_one_call(monkeypatch):
    calls = []
    real = subprocess.run

    def spy(cmd, *a, **kw):
        calls.append(cmd)
        return real(cmd, *a, **kw)

    monkeypatch.setattr(tr.subprocess, "run", spy)
    texts = ["Je suis très content de ce produit.", "Quel film horrible xyzzyq", "vraiment ?"] * 20
    out = tr.apertium_translate(texts, "fr", "es")
    assert len(out) == len(texts)
    assert sum(1 for c in calls if "-u" in c) == 1  # one translation process for 60 lines
    assert out[0] == "Soy muy contento de este producto."
    assert "xyzzyq" in out[1] and "*" not in " ".join(out)  # unknown-word marks removed
    assert out[3] == out[0]


@needs_apertium
def test_apertium_missing_pair_names_it():
    with pytest.raises(tr.TranslatorUnavailable, match="no 'de-fr' pair.*fr-es"):
        tr.apertium_translate(["Hallo"], "de", "fr")


@needs_apertium
def test_translate_manifest_records_empty_transcripts():
    man = pd.DataFrame(
        {
            "segment_id": ["a", "b", "c"],
            "video_id": ["v", "v", "w"],
            "lang": ["fr", "fr", "es"],
            "transcript": ["C'est excellent.", "   ", "Es malo."],
        }
    )
    table, qc, prov = tr.translate_manifest(man, "fr", "es", {"backend": "apertium"})
    assert table.column("segment_id").to_pylist() == ["a"]
    assert table.column("translation").to_pylist() == ["Es excelente."]
    assert qc.records[0]["segment_id"] == "b" and "empty transcript" in qc.records[0]["reason"]
    assert prov["backend"] == "apertium" and prov["model"] == "apertium fr-es"


def test_argos_missing_package_is_a_clear_error():
    try:
        import argostranslate  # noqa: F401
    except ImportError:
        with pytest.raises(tr.TranslatorUnavailable, match="argostranslate"):
            tr.argos_translation("fr", "es", {})
    else:
        pytest.skip("argostranslate installed")


class _Lang:
    """The two members of argostranslate.translate.Language that pick_translation uses."""

    def __init__(self, code):
        self.code, self.translations_from = code, []

    def get_translation(self, to):
        return next((t for t in self.translations_from if t.to_lang is to), None)


class _Tr:
    def __init__(self, a, b):
        self.from_lang, self.to_lang = a, b
        a.translations_from.append(self)

    def translate(self, text):
        return f"{text}>{self.to_lang.code}"


def test_argos_pivots_through_english_and_names_missing_pair():
    fr, en, es = _Lang("fr"), _Lang("en"), _Lang("es")
    _Tr(fr, en), _Tr(en, es)
    t = tr.pick_translation([fr, en, es], "fr", "es")
    assert t.translate("bonjour") == "bonjour>en>es"
    direct = _Tr(fr, es)
    assert tr.pick_translation([fr, en, es], "fr", "es") is direct
    with pytest.raises(tr.TranslatorUnavailable, match="no argos translation es→fr.*fr→en"):
        tr.pick_translation([fr, en, es], "es", "fr")


@needs_apertium
def test_apertium_fr_es_is_close_to_the_demo_spanish_renderings():
    """chrF (sacrebleu) of apertium fr→es against the demo's own Spanish for the same concepts."""
    import itertools
    from pathlib import Path

    import sacrebleu

    from polysent.corpus.demo.text import Concept, load_lexicon

    lex = load_lexicon(str(Path(__file__).parents[1] / "resources" / "demo"), ("fr", "es"))
    concepts = [Concept(t, n) for t, n in itertools.product(lex.neutral, lex.nouns[:3])]
    concepts += [
        Concept(c.template, lex.nouns[i % len(lex.nouns)], c.adjective, c.intensifier, c.negated)
        for i, c in enumerate(lex.candidates()[::7])
    ]
    hyp = tr.apertium_translate([lex.render(c, "fr") for c in concepts], "fr", "es")
    ref = [lex.render(c, "es") for c in concepts]
    chrf = sacrebleu.corpus_chrf(hyp, [ref]).score
    assert chrf > 55, (chrf, list(zip(hyp, ref))[:5])
    # and far from an unrelated pairing (the references shifted by one)
    assert chrf > sacrebleu.corpus_chrf(hyp, [ref[1:] + ref[:1]]).score + 10


@needs_apertium
def test_cli_translate(tmp_path):
    import pyarrow as pa

    from polysent.cli import main
    from polysent.contracts import manifest_schema
    from polysent.io import write_parquet

    man = pa.Table.from_pylist(
        [
            {
                "segment_id": "a",
                "video_id": "v",
                "lang": "fr",
                "split": "train",
                "start": 0.0,
                "end": 1.0,
                "transcript": "C'est excellent.",
                "sentiment": 1.0,
                "video_path": "v.mp4",
                "audio_path": "v.wav",
                "shard": 0,
            }
        ],
        schema=manifest_schema([]),
    )
    write_parquet(tmp_path / "m.parquet", man)
    assert (
        main(
            [
                "translate",
                "--manifest",
                str(tmp_path / "m.parquet"),
                "--src",
                "fr",
                "--tgt",
                "es",
                "--out",
                str(tmp_path / "t.parquet"),
                "--qc",
                str(tmp_path / "q.parquet"),
            ]
        )
        == 0
    )
    assert pd.read_parquet(tmp_path / "t.parquet")["translation"].tolist() == ["Es excelente."]
