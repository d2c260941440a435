"""polysent.languages is the one table of language facts: every stage's language list and code map
comes from it, and the files that must agree with it (demo templates, MFA defaults) do."""

from __future__ import annotations

import ast
import re

import yaml

from conftest import REPO
from polysent import languages
from polysent.config import load_schema

SRC = REPO / "src" / "polysent"
DEMO = REPO / "resources" / "demo"


def test_every_demo_templates_file_has_an_entry_and_the_same_voice():
    files = {p.stem for p in DEMO.glob("*.yaml")} - {"lexicon", "emotions"}
    assert files == set(languages.codes("demo"))
    for code in languages.codes("demo"):
        spec = yaml.safe_load(languages.demo_templates(code, DEMO).read_text())
        assert spec["voice"] == languages.language(code).espeak, code


def test_the_mfa_defaults_are_the_tables():
    schema = load_schema(REPO / "workflow" / "schemas")
    models = schema["properties"]["align"]["properties"]["mfa"]["properties"]["models"]["default"]
    assert models == languages.table("mfa")


def test_the_language_check_candidates_are_known_languages():
    schema = load_schema(REPO / "workflow" / "schemas")["properties"]["align"]["properties"]["plausibility"]
    candidates = schema["properties"]["language_candidates"]["default"]
    assert candidates and set(candidates) <= set(languages.LANGUAGES)


def test_the_stages_read_the_table():
    from polysent.align import aeneas_backend
    from polysent.corpus import checks, moseas
    from polysent.corpus.demo import build

    assert aeneas_backend.LANG3 == {c: lang.aeneas for c, lang in languages.LANGUAGES.items()}
    assert moseas.LANGUAGE_NAMES == languages.table("moseas")
    assert build.ALL_LANGS == languages.codes("demo")
    assert checks.ISO_639_1 is languages.ISO_639_1
    corpus_smk = (REPO / "workflow" / "rules" / "corpus.smk").read_text()
    assert 'language_codes("demo")' in corpus_smk


def test_the_entries_are_consistent():
    for code, lang in languages.LANGUAGES.items():
        assert code == lang.code and code in languages.ISO_639_1 and re.fullmatch("[a-z]{3}", lang.iso3)
        assert all(other in languages.LANGUAGES and other != code for other in lang.apertium), code
        for other, package in lang.apertium.items():  # a pair is listed on both sides, same package
            assert languages.language(other).apertium.get(code) == package, (code, other)
        assert lang.mfa is None or set(lang.mfa) == {"dictionary", "acoustic"}


def test_an_unknown_language_is_named():
    try:
        languages.language("xx")
    except KeyError as err:
        assert "'xx'" in str(err) and "fr" in str(err)
    else:
        raise AssertionError("no KeyError")


def _language_literals(path) -> list[str]:
    """Tuples, lists, sets or dict keys in ``path`` made of two or more table language codes."""
    known = set(languages.LANGUAGES)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
        if not isinstance(node, ast.Tuple | ast.List | ast.Set | ast.Dict) or not items:
            continue
        values = [getattr(n, "value", None) for n in items]
        if len(values) >= 2 and all(isinstance(v, str) and v in known for v in values):
            found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_no_second_language_table_in_the_library():
    """A literal list of two or more known languages in src/polysent is a second table (a caller's
    example pair such as the folder CLI's default languages excepted)."""
    allowed = {  # a CLI default, a test-data generator's fixed pair
        "src/polysent/corpus/folder.py",
        "src/polysent/corpus/demo/__init__.py",
        "src/polysent/synthetic.py",
    }
    found = [
        hit
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "languages.py" and str(path.relative_to(REPO)) not in allowed
        for hit in _language_literals(path)
    ]
    assert not found, "language tables outside polysent.languages: " + ", ".join(found)


def test_the_translator_names_the_pairs_package():
    from polysent.translate import apertium_package

    assert apertium_package("es", "it") == "apertium-spa-ita"
    assert apertium_package("it", "es") == "apertium-spa-ita"
    assert "apertium-de-fr" in apertium_package("de", "fr")
