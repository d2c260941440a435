"""Machine translation of transcripts for translation augmentation (the paper used Google).

Backends (config ``translate.backend``):

- ``apertium`` (offline default): Debian's rule-based ``apertium-fr-es`` (both directions) or any
  other installed pair. The whole corpus goes through **one** ``apertium -u <src>-<tgt>`` call:
  transcripts are joined with blank lines, which apertium's txt format passes through untouched
  (checked: 240 lines in → 240 out), then split back. ``-u`` drops the ``*`` unknown-word marks;
  the remaining debug marks (``#`` generation error, ``@`` missing bilingual entry) are removed.
- ``argos``: argostranslate (CTranslate2 models). Packages are installed from local
  ``.argosmodel`` files named in config, or from the package index when online. If there is no
  direct package for the pair it pivots through English (``fr→en→es``).

Output: ``segment_id, video_id, source, translation`` with backend/model in the provenance.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pyarrow as pa

from polysent import languages
from polysent.config import complete
from polysent.qc import QCLog

log = logging.getLogger(__name__)

BACKENDS = ("apertium", "argos")
_MARKS = re.compile(r"(?<!\w)[*#@](?=\w)")


class TranslatorUnavailable(RuntimeError):
    """The backend or the language pair is not installed; the message says how to get it."""


# ------------------------------------------------------------------------------- apertium


def apertium_pairs(executable: str = "apertium") -> list[str]:
    exe = shutil.which(executable)
    if exe is None:
        raise TranslatorUnavailable(
            f"'{executable}' not found on PATH: install apertium and a pair, e.g. "
            "`apt-get install apertium-fr-es` (modes fr-es and es-fr)"
        )
    out = subprocess.run([exe, "-l"], capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def apertium_package(src: str, tgt: str) -> str:
    """The Debian package of the src↔tgt pair (polysent.languages), or its usual name."""
    known = languages.LANGUAGES.get(src)
    package = known.apertium.get(tgt) if known else None
    return package or f"apertium-{src}-{tgt} or apertium-{tgt}-{src} (if Debian has the pair)"


def apertium_translate(texts: list[str], src: str, tgt: str, cfg: dict | None = None) -> list[str]:
    """Translate ``texts`` with one apertium process; the result has the same length."""
    cfg = complete(cfg, "translate", "apertium")
    exe = cfg["executable"]
    mode = f"{src}-{tgt}"
    modes = apertium_pairs(exe)
    if mode not in modes:
        raise TranslatorUnavailable(
            f"apertium has no '{mode}' pair (installed: {', '.join(modes) or 'none'}); install the "
            f"Debian package {apertium_package(src, tgt)}"
        )
    # Blank lines separate transcripts; inner newlines would break the count, so they go.
    clean = [" ".join(t.split()) for t in texts]
    if any(not t for t in clean):
        raise ValueError("apertium_translate: empty texts must be filtered out by the caller")
    if not clean:
        return []
    proc = subprocess.run(
        [shutil.which(exe), "-u", mode],
        input="\n\n".join(clean) + "\n",
        capture_output=True,
        text=True,
        timeout=float(cfg["timeout"]),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"apertium -u {mode} failed ({proc.returncode}): {proc.stderr[-500:]}")
    parts = proc.stdout.rstrip("\n").split("\n\n")
    if len(parts) != len(clean):
        raise RuntimeError(
            f"apertium returned {len(parts)} blocks for {len(clean)} transcripts; "
            "the blank-line separator was not preserved"
        )
    return [" ".join(_MARKS.sub("", p).split()) for p in parts]


def apertium_version() -> str:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", "apertium*"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        return "; ".join(sorted(line for line in out.splitlines() if line.strip()))
    except OSError:
        return "unknown"


# ---------------------------------------------------------------------------------- argos


def _argos():
    try:
        import argostranslate.package
        import argostranslate.translate
    except ImportError as exc:
        raise TranslatorUnavailable(
            "translate.backend=argos needs argostranslate (pip install argostranslate==1.11.0) "
            "and its .argosmodel packages (translate.argos.packages)"
        ) from exc
    return argostranslate


def argos_translation(src: str, tgt: str, cfg: dict | None = None):
    """An argos translation object for src→tgt, installing packages from config first.

    Direct pair if installed, otherwise a pivot through ``cfg['pivot']``.
    """
    cfg = complete(cfg, "translate", "argos")
    argos = _argos()
    for pkg in cfg["packages"]:
        if not Path(pkg).exists():
            raise TranslatorUnavailable(f"argos package file {pkg} not found (translate.argos.packages)")
        argos.package.install_from_path(Path(pkg))
    if cfg["online"]:
        argos.package.update_package_index()
        available = argos.package.get_available_packages()
        wanted = (
            [(src, tgt)]
            if any(p.from_code == src and p.to_code == tgt for p in available)
            else [(src, cfg["pivot"]), (cfg["pivot"], tgt)]
        )
        for a, b in wanted:
            for p in available:
                if p.from_code == a and p.to_code == b:
                    argos.package.install_from_path(p.download())
    return pick_translation(argos.translate.get_installed_languages(), src, tgt, cfg["pivot"])


def pick_translation(languages, src: str, tgt: str, pivot: str = "en"):
    """From argos' installed languages, the direct src→tgt translation or a src→pivot→tgt chain."""
    by_code = {lang.code: lang for lang in languages}
    have = sorted(f"{a.code}→{t.to_lang.code}" for a in languages for t in getattr(a, "translations_from", []))
    if src in by_code and tgt in by_code:
        direct = by_code[src].get_translation(by_code[tgt])
        if direct is not None:
            return direct
    if src in by_code and pivot in by_code and tgt in by_code:
        first = by_code[src].get_translation(by_code[pivot])
        second = by_code[pivot].get_translation(by_code[tgt])
        if first is not None and second is not None:
            return _Pivot(first, second)
    raise TranslatorUnavailable(
        f"no argos translation {src}→{tgt} (direct or via {pivot}); installed: "
        f"{', '.join(have) or 'none'}. Add translate-{src}_{pivot} and translate-{pivot}_{tgt} "
        ".argosmodel files to translate.argos.packages"
    )


class _Pivot:
    """src→pivot→tgt (argos also builds CompositeTranslation itself; explicit here for clarity)."""

    def __init__(self, first, second):
        self.first, self.second = first, second

    def translate(self, text: str) -> str:
        return self.second.translate(self.first.translate(text))


# ---------------------------------------------------------------------------------- stage


def translate_manifest(manifest: pd.DataFrame, src: str, tgt: str, cfg: dict) -> tuple[pa.Table, QCLog, dict]:
    """Translate every ``src`` transcript of ``manifest`` into ``tgt``; return table, QC, provenance."""
    settings = complete(cfg, "translate")
    backend = settings["backend"]
    qc = QCLog("translate")
    rows = manifest[manifest["lang"] == src].sort_values("segment_id")
    keep = []
    for r in rows.itertuples():
        if " ".join(str(r.transcript or "").split()):
            keep.append(r)
        else:
            qc.add(f"empty transcript: nothing to translate {src}→{tgt}", r.segment_id, r.video_id)
    texts = [str(r.transcript) for r in keep]
    prov = {"stage": "translate", "backend": backend, "src": src, "tgt": tgt, "params": cfg}
    if backend == "apertium":
        out = apertium_translate(texts, src, tgt, settings["apertium"])
        prov["model"] = f"apertium {src}-{tgt}"
        prov["versions"] = apertium_version()
    elif backend == "argos":
        tr = argos_translation(src, tgt, settings["argos"])
        out = [tr.translate(t) for t in texts]
        prov["model"] = f"argostranslate {src}->{tgt} ({type(tr).__name__})"
    else:
        raise ValueError(f"translate.backend must be one of {BACKENDS}, got {backend!r}")
    table = pa.table(
        {
            "segment_id": pa.array([r.segment_id for r in keep], pa.string()),
            "video_id": pa.array([r.video_id for r in keep], pa.string()),
            "source": pa.array(texts, pa.string()),
            "translation": pa.array(out, pa.string()),
        }
    )
    for r, t in zip(keep, out):
        if not t.strip():
            qc.add(f"{backend} returned an empty translation {src}→{tgt}", r.segment_id, r.video_id)
    return table, qc, prov


def run_translate(manifest, src: str, tgt: str, out, qc_path, cfg: dict) -> None:
    """Stage entry point: translate the ``src`` transcripts into ``tgt``; write table and QC."""
    from polysent.contracts import MANIFEST, TRANSLATIONS, check, read
    from polysent.io import write_parquet

    man = read(manifest, MANIFEST).to_pandas()
    table, qc, prov = translate_manifest(man, src, tgt, cfg)
    write_parquet(out, check(table, TRANSLATIONS, where=str(out)), provenance=prov)
    qc.write(qc_path)


# ------------------------------------------------------------------ DAG helpers (rules call these)


def active_pairs(config: dict) -> list[tuple[str, str]]:
    """Configured (src, tgt) pairs whose two languages are both in the run."""
    langs = set(config["languages"])
    return [(s, t) for s, t in config["translate"]["pairs"] if s in langs and t in langs]


def translations_into(config: dict, lang: str) -> list[tuple[str, str]]:
    """Pairs whose target is ``lang`` (their translations' words are encoded by text/{lang})."""
    return [(s, t) for s, t in active_pairs(config) if t == lang]


def pair_from(config: dict, lang: str) -> tuple[str, str] | None:
    """The pair used for ``lang``'s store: its first configured pair with ``lang`` as source."""
    return next(((s, t) for s, t in active_pairs(config) if s == lang), None)


def add_cli(sub) -> None:
    p = sub.add_parser("translate", help="translate the transcripts of one language pair")
    p.add_argument("--manifest", default="results/corpus/manifest.parquet")
    p.add_argument("--src", required=True)
    p.add_argument("--tgt", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--qc", required=True)
    p.add_argument("--backend", choices=BACKENDS, default="apertium")
    p.add_argument("--argos-package", action="append", default=[], help=".argosmodel file (repeatable)")
    p.set_defaults(
        func=lambda a: run_translate(
            a.manifest, a.src, a.tgt, a.out, a.qc, {"backend": a.backend, "argos": {"packages": a.argos_package}}
        )
    )
