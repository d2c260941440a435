"""Transcripts of the demo corpus: parallel templates + a sentiment lexicon with negation and intensifiers.

The language-independent part (concept ids, polarities, intensifier multipliers, the negation
factor) lives in ``resources/demo/lexicon.yaml``; each ``resources/demo/<lang>.yaml`` renders every
id. A :class:`Concept` (template, noun, adjective, intensifier, negation) therefore renders to
sentences in fr/es/pt/de that translate one another, and its lexicon score is the sentiment the
text carries. :func:`choose_concept` picks the concept whose score is close to a target (the
segment's text latent), so the text modality carries the sentiment signal.

Idioms: with probability ``idiom_share`` an evaluative concept is instead rendered by a
language-specific idiom ("c'est le pied", "está de lujo"). An idiom id in ``lexicon.yaml`` names
the compositional expression it is equivalent to, so its score is that expression's score; each
language renders it with its own idiom, which shares no words with the other languages. The idiom
draw uses its own random stream, so ``idiom_share: 0`` leaves every other draw, and the texts,
exactly as without idioms.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

# Punctuation stripped from the ends of whitespace tokens to get the spoken words (apostrophes
# inside words stay: "n'est", "l'hôtel" are one word for the synthesizer and for the aligner).
_PUNCT = ',.;:!?¿¡"«»()'


class LexiconError(ValueError):
    """A demo lexicon file is missing an id or has an invalid entry."""


def words_of(transcript: str) -> list[str]:
    """Spoken words of a transcript: whitespace tokens with surrounding punctuation removed."""
    words = [t.strip(_PUNCT) for t in transcript.split()]
    return [w for w in words if w]


@dataclass(frozen=True)
class Concept:
    """A language-independent sentence: renders to parallel sentences in every language."""

    template: str
    noun: str
    adjective: str = ""
    intensifier: str = "none"
    negated: bool = False
    idiom: str = ""  # idiom id rendering the (adjective, intensifier, negated) expression, if any

    @property
    def key(self) -> str:
        neg = "neg" if self.negated else "pos"
        parts = [self.template, self.noun, self.adjective or "-", self.intensifier, neg]
        # Only idiomatic concepts get the extra field, so keys without idioms are today's keys.
        return "|".join(parts + ([f"idiom={self.idiom}"] if self.idiom else []))


@dataclass(frozen=True)
class Lexicon:
    negation_factor: float
    adjectives: dict[str, dict]
    intensifiers: dict[str, dict]
    nouns: tuple[str, ...]
    evaluative: tuple[str, ...]
    neutral: tuple[str, ...]
    languages: dict[str, dict]
    idioms: dict[str, dict] = field(default_factory=dict)  # id -> equivalent expression

    def score(self, c: Concept) -> float:
        """Sentiment the sentence carries on the [-3, 3] scale (0 for neutral templates)."""
        if not c.adjective:
            return 0.0
        s = self.adjectives[c.adjective]["polarity"] * self.intensifiers[c.intensifier]["multiplier"]
        if c.negated:
            s *= self.negation_factor
        return float(np.clip(s, -3.0, 3.0))

    def render(self, c: Concept, lang: str) -> str:
        spec = self.language(lang)
        noun = spec["nouns"][c.noun]
        slots = {k: noun[k] for k in ("dem", "def", "acc", "dem_acc")}
        if c.idiom:
            tpl = spec["idiom_templates"][c.template]
            idiom = spec["idioms"][c.idiom]
            slots["idiom"] = idiom[noun["gender"]] if isinstance(idiom, dict) else idiom
            return _sentence(tpl.format(**slots))
        tpl = spec["templates"][c.template]
        if isinstance(tpl, dict):
            tpl = tpl["neg" if c.negated else "pos"]
        if c.adjective:
            slots["adj"] = spec["adjectives"][c.adjective][noun["gender"]]
            slots["int"] = spec["intensifiers"][c.intensifier]
        return _sentence(tpl.format(**slots))

    def language(self, lang: str) -> dict:
        try:
            return self.languages[lang]
        except KeyError:
            raise LexiconError(
                f"no demo lexicon for language '{lang}'; available: {', '.join(sorted(self.languages))}"
            ) from None

    def voice(self, lang: str) -> str:
        return self.language(lang)["voice"]

    def candidates(self) -> list[Concept]:
        """Every evaluative concept allowed by the lexicon (gradability and negation rules)."""
        out = []
        for tpl in self.evaluative:
            for adj, a in self.adjectives.items():
                for inten, i in self.intensifiers.items():
                    if i["gradable_only"] and not a["gradable"]:
                        continue
                    for neg in (False, True):
                        if neg and not i["negatable"]:
                            continue
                        out.append(Concept(tpl, "", adj, inten, neg))
        return out

    def idiom_candidates(self) -> list[Concept]:
        """One concept per (evaluative template, idiom): the idiomatic counterparts of ``candidates``."""
        return [
            Concept(tpl, "", e["adjective"], e["intensifier"], bool(e["negated"]), idiom)
            for tpl in self.evaluative
            for idiom, e in self.idioms.items()
        ]


def _sentence(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text[0].upper() + text[1:]


@lru_cache(maxsize=8)
def load_lexicon(resources_dir: str, languages: tuple[str, ...]) -> Lexicon:
    """Read ``lexicon.yaml`` and ``<lang>.yaml`` for ``languages``; check every id is rendered."""
    root = Path(resources_dir)
    path = root / "lexicon.yaml"
    if not path.exists():
        raise LexiconError(f"demo lexicon not found: {path}")
    base = yaml.safe_load(path.read_text(encoding="utf-8"))
    langs = {}
    for lang in languages:
        lpath = root / f"{lang}.yaml"
        if not lpath.exists():
            have = sorted(p.stem for p in root.glob("??.yaml"))
            raise LexiconError(f"no demo lexicon for language '{lang}' ({lpath} missing); available: {have}")
        spec = yaml.safe_load(lpath.read_text(encoding="utf-8"))
        _check_language(spec, base, lpath)
        langs[lang] = spec
    return Lexicon(
        negation_factor=float(base["negation_factor"]),
        adjectives=base["adjectives"],
        intensifiers=base["intensifiers"],
        nouns=tuple(base["nouns"]),
        evaluative=tuple(base["templates"]["evaluative"]),
        neutral=tuple(base["templates"]["neutral"]),
        languages=langs,
        idioms=base.get("idioms") or {},
    )


def _check_language(spec: dict, base: dict, where: Path) -> None:
    problems = []
    for section, ids in (
        ("nouns", base["nouns"]),
        ("adjectives", base["adjectives"]),
        ("intensifiers", base["intensifiers"]),
        ("templates", base["templates"]["evaluative"] + base["templates"]["neutral"]),
    ):
        missing = [i for i in ids if i not in (spec.get(section) or {})]
        if missing:
            problems.append(f"{section}: missing {missing}")
    for noun, forms in (spec.get("nouns") or {}).items():
        for key in ("gender", "dem", "def", "acc", "dem_acc"):
            if key not in forms:
                problems.append(f"nouns.{noun}: missing '{key}'")
        g = forms.get("gender")
        for adj, aforms in (spec.get("adjectives") or {}).items():
            if g not in aforms:
                problems.append(f"adjectives.{adj}: no form for gender '{g}' (needed by noun '{noun}')")
    for tpl in base["templates"]["evaluative"]:
        t = (spec.get("templates") or {}).get(tpl)
        if t is not None and not (isinstance(t, dict) and {"pos", "neg"} <= set(t)):
            problems.append(f"templates.{tpl}: evaluative templates need 'pos' and 'neg' variants")
    problems += _idiom_problems(spec, base)
    if "voice" not in spec:
        problems.append("missing 'voice' (espeak-ng voice name)")
    if problems:
        raise LexiconError(f"{where}: " + "; ".join(sorted(set(problems))))


def _idiom_problems(spec: dict, base: dict) -> list[str]:
    """Every idiom id of lexicon.yaml is a valid expression and is rendered in ``spec``."""
    idioms = base.get("idioms") or {}
    if not idioms:
        return []
    problems = []
    for idiom, e in idioms.items():
        if e.get("adjective") not in base["adjectives"] or e.get("intensifier") not in base["intensifiers"]:
            problems.append(f"idioms.{idiom}: unknown adjective/intensifier {e}")
    missing = [i for i in idioms if i not in (spec.get("idioms") or {})]
    if missing:
        problems.append(f"idioms: missing {missing}")
    frames = spec.get("idiom_templates") or {}
    missing = [t for t in base["templates"]["evaluative"] if t not in frames]
    if missing:
        problems.append(f"idiom_templates: missing {missing}")
    return problems


def _boltzmann_pick(lex: Lexicon, cands: list[Concept], target: float, temperature: float, rng) -> Concept:
    scores = np.array([lex.score(c) for c in cands])
    logits = -((scores - target) ** 2) / max(temperature, 1e-6)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return cands[rng.choice(len(cands), p=p)]


def _idiom_stream(rng: np.random.Generator) -> np.random.Generator:
    """A generator seeded from ``rng``'s current state without advancing it.

    The idiom draws must not consume ``rng``: the segment's later draws (labels, prosody) then
    stay the same whatever ``idiom_share`` is, and 0 reproduces the corpus without idioms.
    """
    state = repr(rng.bit_generator.state).encode()
    words = np.frombuffer(hashlib.blake2b(state + b"/idiom", digest_size=16).digest(), dtype=np.uint32)
    return np.random.default_rng(words)


def choose_concept(
    lex: Lexicon,
    target: float,
    rng: np.random.Generator,
    neutral_band: float,
    temperature: float,
    idiom_share: float = 0.0,
) -> Concept:
    """A concept whose lexicon score is near ``target``.

    |target| below ``neutral_band`` gives a neutral (factual) sentence; otherwise an evaluative
    concept is drawn with probability ∝ exp(-(score - target)² / temperature), so the text
    tracks the latent without being a deterministic function of it. With probability
    ``idiom_share`` the evaluative concept is an idiom instead, drawn by the same rule among the
    idioms (from a separate stream, see :func:`_idiom_stream`).
    """
    noun = lex.nouns[rng.integers(len(lex.nouns))]
    if abs(target) < neutral_band:
        return Concept(lex.neutral[rng.integers(len(lex.neutral))], noun)
    if idiom_share > 0 and lex.idioms:
        irng = _idiom_stream(rng)  # before the draw below, so it does not depend on its outcome
        if irng.random() < idiom_share:
            c = _boltzmann_pick(lex, lex.idiom_candidates(), target, temperature, irng)
            _boltzmann_pick(lex, lex.candidates(), target, temperature, rng)  # keep rng's draws
            return Concept(c.template, noun, c.adjective, c.intensifier, c.negated, c.idiom)
    c = _boltzmann_pick(lex, lex.candidates(), target, temperature, rng)
    return Concept(c.template, noun, c.adjective, c.intensifier, c.negated)
