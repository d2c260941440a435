"""Montreal Forced Aligner 3 backend (the paper's aligner), run as a cluster user runs it.

Corpus layout (MFA docs, corpus_structure): one folder per speaker (= video), and per utterance
(= segment) ``<segment_id>.wav`` + ``<segment_id>.lab`` holding the transcript words. Then, per
language::

    mfa align <corpus> <dictionary> <acoustic_model> <out> -j N --clean --overwrite \
        --output_format long_textgrid --beam B --retry_beam R

with the pretrained ``<lang>_mfa`` dictionary/acoustic model names of config (``mfa model
download`` first when ``download: true``). MFA 3 uses SQLite by default: no PostgreSQL server.
The output mirrors the corpus: ``<out>/<speaker>/<segment_id>.TextGrid``; its ``words`` tier is
parsed (empty marks skipped). Utterances MFA could not align have no TextGrid → QC record.
MFA installs only from conda-forge (``envs/mfa.yaml``); without it the error says so.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

from polysent.align.base import AlignError, AlignerUnavailable, Segment
from polysent.align.textgrid import read_words
from polysent.config import complete
from polysent.errors import data_errors

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "Montreal Forced Aligner (`mfa`) is not on PATH. It installs only from conda-forge: run the "
    "workflow with `--sdm conda` (rule align_mfa uses envs/mfa.yaml) or "
    "`conda env create -f envs/mfa.yaml && conda activate polysent-mfa`, then "
    "`mfa model download acoustic french_mfa && mfa model download dictionary french_mfa` "
    "(and the other languages). Or use align.backend: aeneas (offline)."
)


def find_mfa(executable: str = "mfa") -> str:
    exe = shutil.which(executable)
    if exe is None:
        raise AlignerUnavailable(INSTALL_HINT)
    return exe


def write_corpus(segments: list[Segment], corpus: Path) -> None:
    """MFA corpus: ``<corpus>/<video_id>/<segment_id>.wav`` + ``.lab`` (words, one line)."""
    for seg in segments:
        d = corpus / seg.video_id
        d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(seg.wav, d / f"{seg.segment_id}.wav")
        (d / f"{seg.segment_id}.lab").write_text(" ".join(seg.words) + "\n", encoding="utf-8")


def align_command(
    exe: str, corpus: Path, dictionary: str, acoustic: str, out: Path, cfg: dict, threads: int
) -> list[str]:
    cfg = complete(cfg, "align", "mfa")
    return [
        exe, "align", str(corpus), dictionary, acoustic, str(out),
        "-j", str(max(1, threads)), "--clean", "--overwrite",
        "--output_format", "long_textgrid",
        "--beam", str(cfg["beam"]), "--retry_beam", str(cfg["retry_beam"]),
        *cfg["extra_args"],
    ]  # fmt: skip


def collect(segments: list[Segment], out: Path) -> dict:
    """``segment_id → [(word, start, end)] | AlignError`` from MFA's output folder."""
    results: dict = {}
    for seg in segments:
        tg = out / seg.video_id / f"{seg.segment_id}.TextGrid"
        if not tg.exists():
            results[seg.segment_id] = AlignError(
                f"MFA wrote no TextGrid ({tg.name}): utterance not aligned (beam too narrow, "
                "OOV-only transcript or audio mismatch; see the rule log)"
            )
            continue
        try:
            results[seg.segment_id] = read_words(tg, speaker=seg.video_id)
        except data_errors() as exc:  # a malformed TextGrid is that utterance's failure
            results[seg.segment_id] = AlignError(f"unreadable TextGrid {tg}: {exc}")
    return results


def align_segments(segments: list[Segment], cfg: dict, workdir: Path, *, threads: int) -> dict:
    cfg = complete(cfg, "align", "mfa")
    exe = find_mfa(cfg["executable"])
    models = cfg["models"]
    by_lang: dict[str, list[Segment]] = defaultdict(list)
    for seg in segments:
        by_lang[seg.lang].append(seg)
    results: dict = {}
    for lang, segs in sorted(by_lang.items()):
        if lang not in models:
            for s in segs:
                results[s.segment_id] = AlignError(f"no MFA models configured for '{lang}' (align.mfa.models)")
            continue
        m = models[lang]
        if cfg["download"]:
            for kind in ("acoustic", "dictionary"):
                subprocess.run([exe, "model", "download", kind, m[kind]], check=True)
        corpus, out = workdir / lang / "corpus", workdir / lang / "out"
        write_corpus(segs, corpus)
        cmd = align_command(exe, corpus, m["dictionary"], m["acoustic"], out, cfg, threads)
        log.info("running %s", " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        log.info("mfa stdout:\n%s\nmfa stderr:\n%s", proc.stdout[-5000:], proc.stderr[-5000:])
        if proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed ({proc.returncode}): {proc.stderr[-1500:]}")
        results.update(collect(segs, out))
    return results
