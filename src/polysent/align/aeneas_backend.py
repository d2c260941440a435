"""aeneas (aeneas-ng) word alignment: espeak-ng synthesis + MFCC DTW against the real audio.

Offline default aligner. It is not a phone-level forced aligner like MFA: aeneas synthesises the
words with espeak-ng in the segment's language and warps that synthetic signal onto the recorded
one, so boundaries are as good as the MFCC frame shift and the TTS/speaker similarity allow. Each
word is one "plain" fragment (one word per line); the head/tail fragments aeneas adds for leading
and trailing silence are discarded. Accuracy on the demo corpus is measured in
``scripts/bench_align.py`` (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from polysent.align import AlignError, AlignerUnavailable, Segment

log = logging.getLogger(__name__)

# ISO 639-1 (manifest) → ISO 639-3 (aeneas language codes, espeak-ng voices behind them).
LANG3 = {"fr": "fra", "es": "spa", "pt": "por", "de": "deu", "en": "eng", "it": "ita"}

DEFAULTS = {
    # Tuned on the demo corpus (scripts/bench_align.py, docs/BENCHMARKS.md): a 10 ms MFCC shift
    # with aeneas' 100 ms window, then silence trimming, gave the lowest boundary error; aeneas'
    # 40 ms default shift was worse and masking non-speech (--presets-word) did not help.
    "mask_nonspeech": False,
    "mfcc_window_length": 0.1,
    "mfcc_window_shift": 0.01,
    "dtw_margin": 60.0,
    # Post-processing: trim each word's interval to the frames above an energy threshold, so the
    # pause after a word (which DTW hands to the word before it) is not counted as that word.
    "trim_silence": True,
    "trim_db": 0.15,
    # Per-segment wall-clock limit and retries of the aeneas process (see align_words).
    "timeout": 120.0,
    "retries": 1,
}


def _rconf_string(cfg: dict) -> str:
    c = {**DEFAULTS, **cfg}
    mask = "True" if c["mask_nonspeech"] else "False"
    parts = [
        f"mfcc_mask_nonspeech={mask}",
        f"mfcc_mask_nonspeech_l3={mask}",
        f"mfcc_window_length={c['mfcc_window_length']}",
        f"mfcc_window_shift={c['mfcc_window_shift']}",
        f"dtw_margin={c['dtw_margin']}",
    ]
    # Not set on purpose: `tts=espeak-ng` and `cew=False` route synthesis through a Python
    # subprocess wrapper that mis-times fragments with espeak-ng (measured: ~0.6 s median error),
    # so the default C-extension synthesiser (which drives espeak-ng) is kept.
    return "|".join(parts)


def versions() -> dict:
    import subprocess

    import aeneas

    try:
        espeak = subprocess.run(
            ["espeak-ng", "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except OSError:
        espeak = "missing"
    return {"aeneas": aeneas.__version__, "espeak-ng": espeak}


def align_words(
    wav: str | Path, words: list[str], lang: str, cfg: dict | None = None
) -> list[tuple[str, float, float]]:
    """Align ``words`` (in order) to ``wav``; return ``(word, start, end)`` in seconds.

    Runs aeneas' own CLI (``python -m aeneas.tools.execute_task``) in a fresh process with a
    timeout: aeneas' espeak C extension occasionally never returns when called repeatedly in one
    process (seen here on the 2nd-3rd call), so each segment gets its own process and one retry.
    """
    cfg = {**DEFAULTS, **(cfg or {})}
    if lang not in LANG3:
        raise AlignError(f"no aeneas/espeak-ng language for '{lang}' (known: {sorted(LANG3)})")
    if importlib.util.find_spec("aeneas") is None:
        raise AlignerUnavailable(
            "aeneas is not installed: `pip install -c constraints.txt aeneas-ng==1.7.4.0` "
            "(needs Debian festival-dev, libestools-dev, espeak-ng, ffmpeg)"
        )
    with tempfile.TemporaryDirectory(prefix="aeneas_") as tmp:
        text = Path(tmp) / "words.txt"
        out = Path(tmp) / "map.json"
        # One word per line = one fragment per word (is_text_type=plain).
        text.write_text("\n".join(words) + "\n", encoding="utf-8")
        cmd = [
            sys.executable,
            "-m",
            "aeneas.tools.execute_task",
            str(Path(wav).resolve()),
            str(text),
            f"task_language={LANG3[lang]}|is_text_type=plain|os_task_file_format=json",
            str(out),
            f"--runtime-configuration={_rconf_string(cfg)}",
        ]
        last = ""
        for _attempt in range(1 + int(cfg["retries"])):
            try:
                proc = subprocess.run(
                    cmd,
                    capture_output=True,
                    text=True,
                    timeout=float(cfg["timeout"]),
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, "PYTHONIOENCODING": "UTF-8"},
                )
            except subprocess.TimeoutExpired:
                last = f"aeneas timed out after {cfg['timeout']} s"
                continue
            if proc.returncode == 0 and out.exists():
                break
            last = f"aeneas exit {proc.returncode}: {(proc.stdout + proc.stderr)[-400:]}"
        else:
            raise AlignError(last)
        fragments = json.loads(out.read_text(encoding="utf-8"))["fragments"]
    # The JSON sync map lists the regular fragments only (head/tail silences are not written).
    frags = [f for f in fragments if f["lines"]]
    if len(frags) != len(words):
        raise AlignError(f"aeneas returned {len(frags)} fragments for {len(words)} words")
    out = [(w, float(f["begin"]), float(f["end"])) for w, f in zip(words, frags)]
    if cfg["trim_silence"]:
        out = trim_to_speech(wav, out, float(cfg["trim_db"]))
    return out


def trim_to_speech(wav: str | Path, words: list[tuple[str, float, float]], rel: float = 0.25,
                   hop: float = 0.01) -> list[tuple[str, float, float]]:
    """Shrink every word interval to its first..last frame above the energy threshold.

    Threshold (dB) = noise floor + ``rel`` × (speech level − noise floor), with floor and level
    the 10th and 95th percentiles of the clip's 10 ms frame energies. Words with no frame above it
    keep their interval.
    """
    import numpy as np
    import soundfile as sf

    y, sr = sf.read(wav, dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    n = max(int(round(hop * sr)), 1)
    frames = len(y) // n
    if frames < 3:
        return words
    e = 10 * np.log10(np.mean(y[: frames * n].reshape(frames, n) ** 2, axis=1) + 1e-10)
    floor, level = np.percentile(e, 10), np.percentile(e, 95)
    active = e > floor + rel * (level - floor)
    out = []
    for w, s, t in words:
        a, b = int(s / hop), min(int(np.ceil(t / hop)), frames)
        idx = np.flatnonzero(active[a:b])
        if len(idx) == 0:
            out.append((w, s, t))
            continue
        out.append((w, max(s, (a + idx[0]) * hop), min(t, (a + idx[-1] + 1) * hop)))
    return out


def _one(args):
    seg, cfg = args
    try:
        return seg.segment_id, align_words(seg.wav, list(seg.words), seg.lang, cfg)
    except Exception as exc:  # one bad segment must not fail the shard: it goes to QC
        return seg.segment_id, AlignError(f"{type(exc).__name__}: {exc}")


def align_segments(segments: list[Segment], cfg: dict, threads: int = 1) -> dict:
    """``segment_id → [(word, start, end)] | Exception`` for every segment."""
    jobs = [(s, cfg) for s in segments]
    if threads > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=threads) as pool:
            return dict(pool.map(_one, jobs, chunksize=4))
    return dict(map(_one, jobs))
