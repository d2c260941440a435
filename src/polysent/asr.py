"""Speech recognition for videos that come without a transcript (``polysent predict``).

One backend: ``whisper``, a Whisper checkpoint in a **local** model directory read with
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

log = logging.getLogger("polysent.asr")

SAMPLE_RATE = 16000  # what Whisper's feature extractor expects
BACKENDS = ("none", "whisper")


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


def make_recognizer(cfg: dict | None) -> Whisper | None:
    """The configured recogniser, or ``None`` for ``backend: none``."""
    c = settings(cfg)
    if c["backend"] == "none":
        return None
    return Whisper(c["model"], c["chunk"], c["max_new_tokens"])
