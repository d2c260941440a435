"""The languages polysent handles, one entry each: what every stage needs to know about one.

A stage that depends on the language reads it here (the aligner's ISO 639-3 code, the MOSEAS
folder name, the demo corpus's templates file, ...), so adding a language is one :data:`LANGUAGES`
entry (plus its demo templates file when the demo corpus should speak it; docs/CONTRIBUTING.md).
The facts of the outside tools are recorded as those tools name them:

* ``espeak``: the espeak-ng voice (``espeak-ng --voices``); aeneas synthesises with it, and the
  demo corpus speaks with it (``resources/demo/<code>.yaml``'s ``voice``, a test keeps them equal).
* ``apertium``: the Debian package of each installed-able rule-based pair, keyed by the other
  language (``apt-cache search apertium``); a pair translates both ways.
* ``aeneas``: the aeneas ``task_language`` (its ISO 639-3 code).
* ``mfa``: the pretrained Montreal Forced Aligner dictionary and acoustic model names; the
  config's default (``align.mfa.models`` in align.schema.yaml) lists the same, a test keeps them
  equal.
* ``argos``: the argostranslate language code.
* ``use``: whether the multilingual Universal Sentence Encoder (text encoder ``use``) was trained
  on it; ``whisper``: whether Whisper's tokenizer has its ``<|xx|>`` language token.
* ``moseas``: the language's folder name in CMU-MOSEAS (None: not in MOSEAS).
* ``demo``: whether ``resources/demo/<code>.yaml`` holds its demo templates and voice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1, the manifest's ``lang``
    iso3: str  # ISO 639-3
    name: str
    espeak: str
    aeneas: str
    mfa: dict[str, str] | None  # {"dictionary": ..., "acoustic": ...}
    argos: str
    use: bool
    whisper: bool
    moseas: str | None = None
    demo: bool = False
    apertium: dict[str, str] = field(default_factory=dict)  # other language -> Debian package


def _mfa(stem: str) -> dict[str, str]:
    return {"dictionary": f"{stem}_mfa", "acoustic": f"{stem}_mfa"}


LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (
        Language(
            "fr", "fra", "French", espeak="fr", aeneas="fra", mfa=_mfa("french"), argos="fr", use=True,
            whisper=True, moseas="french", demo=True, apertium={"es": "apertium-fr-es"},
        ),
        Language(
            "es", "spa", "Spanish", espeak="es", aeneas="spa", mfa=_mfa("spanish"), argos="es", use=True,
            whisper=True, moseas="spanish", demo=True,
            apertium={"fr": "apertium-fr-es", "pt": "apertium-es-pt", "it": "apertium-spa-ita", "en": "apertium-eng-spa"},
        ),
        Language(
            "pt", "por", "Portuguese", espeak="pt", aeneas="por", mfa=_mfa("portuguese"), argos="pt", use=True,
            whisper=True, moseas="portuguese", demo=True, apertium={"es": "apertium-es-pt"},
        ),
        Language(
            "de", "deu", "German", espeak="de", aeneas="deu", mfa=_mfa("german"), argos="de", use=True,
            whisper=True, moseas="german", demo=True,
        ),
        Language(
            "en", "eng", "English", espeak="en", aeneas="eng", mfa=_mfa("english"), argos="en", use=True,
            whisper=True, apertium={"es": "apertium-eng-spa"},
        ),
        Language(
            "it", "ita", "Italian", espeak="it", aeneas="ita", mfa=None, argos="it", use=True, whisper=True,
            apertium={"es": "apertium-spa-ita"},
        ),
    )
}  # fmt: skip

# Every ISO 639-1 code: a manifest's ``lang`` must be one (it may name a language polysent has
# no entry for; the stage that needs a fact about it then says so).
ISO_639_1 = frozenset(
    """aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy
    da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy
    hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li
    ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa
    pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th
    ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu""".split()
)


def language(code: str) -> Language:
    """The entry of ``code``; a KeyError names the known ones."""
    try:
        return LANGUAGES[code]
    except KeyError:
        raise KeyError(
            f"polysent knows no language {code!r} (known: {sorted(LANGUAGES)}; see polysent.languages)"
        ) from None


def codes(fact: str | None = None) -> tuple[str, ...]:
    """Codes of the languages in table order, only those with ``fact`` set when given
    (``codes("demo")``, ``codes("moseas")``, ``codes("mfa")``)."""
    return tuple(c for c, lang in LANGUAGES.items() if fact is None or getattr(lang, fact))


def table(fact: str) -> dict[str, object]:
    """``{code: fact}`` for the languages that have it (``table("aeneas")``, ``table("moseas")``)."""
    return {c: getattr(lang, fact) for c, lang in LANGUAGES.items() if getattr(lang, fact)}


def demo_templates(code: str, resources: str | Path = "resources/demo") -> Path:
    """The demo corpus's templates file of ``code`` (its words, phrases and espeak-ng voice)."""
    return Path(resources) / f"{code}.yaml"
