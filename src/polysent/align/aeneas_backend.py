"""aeneas (aeneas-ng) word alignment: espeak-ng synthesis + MFCC DTW against the real audio.

Offline default aligner. It is not a phone-level forced aligner like MFA: aeneas synthesises the
words with espeak-ng in the segment's language and warps that synthetic signal onto the recorded
one, so boundaries are as good as the MFCC frame shift and the TTS/speaker similarity allow. Each
word is one "plain" fragment (one word per line); the head/tail fragments aeneas adds for leading
and trailing silence are discarded. Accuracy and throughput on the demo corpus are measured in
``scripts/bench_align.py`` (docs/BENCHMARKS.md).

Two engines run the same aeneas pipeline (``align.aeneas.engine``):

- ``library`` (default): aeneas' Python API in a process forked per segment from the aligning
  process, which has imported aeneas once. The clip is read directly (it is already 16 kHz PCM16
  mono, so aeneas' ffprobe + ffmpeg round trip is skipped) and the 22.05 kHz espeak-ng wave is
  resampled to 16 kHz in memory (soxr) instead of by an ffmpeg process.
- ``cli``: aeneas' own command line (``python -m aeneas.tools.execute_task``), one fresh Python
  per segment; kept to compare against (``scripts/bench_align.py``).

Why a process per segment at all: espeak-ng keeps state between utterances (pitch flutter,
noise generator, libc ``rand()``), so the same words synthesise differently the second time in a
process, and aeneas' espeak C extension hangs when called again in one process (it re-initialises
espeak-ng after terminating it). A fork of a process that never synthesised starts from the same
state as a fresh interpreter, so every segment's result depends on its own clip and words only,
whatever the order, the number of workers or a retry; the fork also gives the timeout something to
kill.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import logging
import os
import pickle
import subprocess
import sys
import tempfile
import time
import traceback
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from polysent import languages
from polysent.align.base import AlignError, AlignerUnavailable, Segment
from polysent.config import complete
from polysent.errors import data_errors

log = logging.getLogger(__name__)

# ISO 639-1 (manifest) → aeneas language code (espeak-ng voices behind them).
LANG3 = languages.table("aeneas")

ENGINES = ("library", "cli")


def _rconf_string(cfg: dict) -> str:
    mask = "True" if cfg["mask_nonspeech"] else "False"
    parts = [
        f"mfcc_mask_nonspeech={mask}",
        f"mfcc_mask_nonspeech_l3={mask}",
        f"mfcc_window_length={cfg['mfcc_window_length']}",
        f"mfcc_window_shift={cfg['mfcc_window_shift']}",
        f"dtw_margin={cfg['dtw_margin']}",
    ]
    # Not set on purpose: `tts=espeak-ng` and `cew=False` route synthesis through a Python
    # subprocess wrapper that mis-times fragments with espeak-ng (measured: ~0.6 s median error),
    # so the default C-extension synthesiser (which drives espeak-ng) is kept.
    return "|".join(parts)


def _task_string(lang: str) -> str:
    return f"task_language={LANG3[lang]}|is_text_type=plain|os_task_file_format=json"


def versions() -> dict:
    import aeneas

    try:
        espeak = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        espeak = "missing"
    return {"aeneas": aeneas.__version__, "espeak-ng": espeak}


def _check_usable(lang: str) -> None:
    if lang not in LANG3:
        raise AlignError(f"no aeneas/espeak-ng language for '{lang}' (known: {sorted(LANG3)})")
    if importlib.util.find_spec("aeneas") is None:
        raise AlignerUnavailable(
            "aeneas is not installed: `pip install -c constraints.txt aeneas-ng==1.7.4.0` "
            "(needs Debian festival-dev, libestools-dev, espeak-ng, ffmpeg)"
        )


def _words_from_fragments(wav, words: list[str], fragments: list[dict], cfg: dict):
    """aeneas' JSON sync-map fragments (times as ``SS.mmm`` strings) → ``(word, start, end)``."""
    # The JSON sync map lists the regular fragments only (head/tail silences are not written).
    frags = [f for f in fragments if f["lines"]]
    if len(frags) != len(words):
        raise AlignError(f"aeneas returned {len(frags)} fragments for {len(words)} words")
    out = [(w, float(f["begin"]), float(f["end"])) for w, f in zip(words, frags)]
    if cfg["trim_silence"]:
        out = fit_to_speech(wav, out, cfg)
    return out


# ------------------------------------------------------------------ engine "cli" (one aeneas CLI per segment)


def align_words_cli(wav: str | Path, words: list[str], lang: str, cfg: dict) -> list[tuple[str, float, float]]:
    """Align ``words`` (in order) to ``wav`` with aeneas' CLI in a fresh process; ``(word, start, end)``.

    ``cfg`` is complete (:func:`settings`). One retry after a timeout or a failed process.
    """
    _check_usable(lang)
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
            _task_string(lang),
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
    return _words_from_fragments(wav, words, fragments, cfg)


def _one_cli(args):
    seg, cfg = args
    try:
        return seg.segment_id, align_words_cli(seg.wav, list(seg.words), seg.lang, cfg)
    except data_errors() as exc:  # one bad segment must not fail the shard: it goes to QC
        return seg.segment_id, AlignError(f"{type(exc).__name__}: {exc}")


def _align_segments_cli(segments: list[Segment], cfg: dict, threads: int) -> dict:
    jobs = [(s, cfg) for s in segments]
    if threads > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=threads) as pool:
            return dict(pool.map(_one_cli, jobs, chunksize=4))
    return dict(map(_one_cli, jobs))


# ------------------------------------------------------------- engine "library" (aeneas API, forked)


def _import_aeneas() -> None:
    """Import everything a segment needs, so each forked child starts warm (nothing synthesised)."""
    import aeneas.audiofilemfcc  # noqa: F401
    import aeneas.cdtw.cdtw  # noqa: F401
    import aeneas.cew.cew  # noqa: F401  (importing does not initialise espeak-ng)
    import aeneas.cmfcc.cmfcc  # noqa: F401
    import aeneas.executetask  # noqa: F401
    import aeneas.syncmap  # noqa: F401
    import aeneas.ttswrappers.espeakttswrapper  # noqa: F401
    import scipy.io.wavfile  # noqa: F401
    import soundfile  # noqa: F401
    import soxr  # noqa: F401


def _pcm16_audio_file(wav: str | Path, rconf):
    """The clip as an aeneas AudioFile, read directly when it is PCM16 mono at aeneas' rate.

    That is what cut_segments writes; aeneas would otherwise ffprobe it and convert it with
    ffmpeg to the same samples. Any other file goes through aeneas' own conversion.
    """
    import soundfile as sf
    from aeneas.audiofile import AudioFile

    info = sf.info(str(wav))
    direct = (info.format, info.subtype, info.channels, info.samplerate) == ("WAV", "PCM_16", 1, rconf.sample_rate)
    fmt = ("pcm_s16le", 1, rconf.sample_rate) if direct else None
    audio = AudioFile(file_path=str(wav), file_format=fmt, rconf=rconf)
    audio.read_samples_from_file()
    return audio


def _resampled_audio_file(path: str, rconf):
    """A PCM16 WAV (espeak-ng's 22.05 kHz synthesis) resampled to aeneas' rate in memory."""
    import numpy as np
    import soxr
    from aeneas.audiofile import AudioFile
    from scipy.io import wavfile

    rate, pcm = wavfile.read(path)
    y = pcm.astype(np.float64) / 32768  # aeneas' own int16 → float scaling
    if rate != rconf.sample_rate:
        y = soxr.resample(y, rate, rconf.sample_rate, quality="HQ")
    audio = AudioFile(rconf=rconf)
    audio.audio_format, audio.audio_channels, audio.audio_sample_rate = "pcm16", 1, rconf.sample_rate
    audio.add_samples(y)
    return audio


def _executor_class():
    from aeneas.executetask import ExecuteTask

    class InMemoryExecuteTask(ExecuteTask):
        """aeneas' single-level task with its two audio reads done in this process."""

        def _extract_mfcc(self, file_path=None, file_format=None, audio_file=None):
            if file_path is None and audio_file is None:  # the real wave (task.audio_file)
                audio_file = self.task.audio_file
            elif file_path is not None and file_format is not None:  # the synthesised wave
                audio_file, file_path = _resampled_audio_file(file_path, self.rconf), None
            return super()._extract_mfcc(file_path=file_path, file_format=file_format, audio_file=audio_file)

    return InMemoryExecuteTask


def align_words_library(wav: str | Path, words: list[str], lang: str, cfg: dict) -> list[tuple[str, float, float]]:
    """Align ``words`` to ``wav`` with aeneas' library API in this process; ``(word, start, end)``.

    Call it at most once per process that synthesises (see the module doc): the ``library``
    engine runs it in a fresh fork per segment.
    """
    from aeneas.runtimeconfiguration import RuntimeConfiguration
    from aeneas.task import Task

    _check_usable(lang)
    with tempfile.TemporaryDirectory(prefix="aeneas_") as tmp:
        text = Path(tmp) / "words.txt"
        text.write_text("\n".join(words) + "\n", encoding="utf-8")
        rconf = RuntimeConfiguration(f"{_rconf_string(cfg)}|tmp_path={tmp}")
        task = Task(_task_string(lang))
        task.text_file_path_absolute = str(text)
        task.audio_file = _pcm16_audio_file(wav, rconf)
        _executor_class()(task, rconf=rconf).execute()
        fragments = json.loads(task.sync_map.json_string)["fragments"]
    return _words_from_fragments(wav, words, fragments, cfg)


def _library_data_errors() -> tuple[type[BaseException], ...]:
    """What a bad clip or transcript raises inside :func:`align_words_library`.

    aeneas' audio errors, its task errors (``ExecuteTask`` wraps whatever fails while it runs
    into ``ExecuteTaskExecutionError``), libsndfile's, and ours (fragment count, language).
    """
    import soundfile as sf
    from aeneas.audiofile import (
        AudioFileConverterError,
        AudioFileNotInitializedError,
        AudioFileProbeError,
        AudioFileUnsupportedFormatError,
    )
    from aeneas.executetask import ExecuteTaskExecutionError, ExecuteTaskInputError

    return data_errors(
        AlignError,
        sf.SoundFileError,
        AudioFileConverterError,
        AudioFileNotInitializedError,
        AudioFileProbeError,
        AudioFileUnsupportedFormatError,
        ExecuteTaskExecutionError,
        ExecuteTaskInputError,
    )


class ChildTraceback(Exception):
    """The traceback of an exception raised in an aligner child, attached as its ``__cause__``."""

    def __str__(self) -> str:
        return "\n" + self.args[0]


def _child(conn, seg: Segment, cfg: dict) -> None:
    libc = ctypes.CDLL(None)
    # A hung child must not outlive a killed aligner (Linux: SIGKILL when the parent dies).
    if sys.platform.startswith("linux"):
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    # espeak-ng draws from libc rand(); a fresh interpreter starts at seed 1, so does every child.
    libc.srand(1)
    expected = _library_data_errors()
    try:
        conn.send((True, align_words_library(seg.wav, list(seg.words), seg.lang, cfg)))
    except expected as exc:  # a deterministic failure of this segment: QC, no retry
        conn.send((False, f"{type(exc).__name__}: {exc}"))
    except Exception as exc:  # a bug: the parent raises it (as a QC record it would pass quietly)
        conn.send((None, _picklable(exc, traceback.format_exc())))
    conn.close()


def _picklable(exc: Exception, tb: str):
    """``(exception, traceback text)`` to send; a RuntimeError if the exception does not pickle."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any pickling failure: send its text instead
        exc = RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc, tb


def _align_segments_library(segments: list[Segment], cfg: dict, threads: int) -> dict:
    """Up to ``threads`` forked children at a time, one per segment, each under ``cfg['timeout']``.

    A child that times out or dies (signal, exit without a result) is retried ``cfg['retries']``
    times, then becomes an AlignError; an exception inside a child is final (it would repeat).
    """
    import multiprocessing as mp
    from multiprocessing.connection import wait

    results: dict = {}
    pending: deque = deque()  # (segment, attempt)
    for seg in segments:
        try:
            _check_usable(seg.lang)  # no voice for the language: QC without forking
        except AlignError as exc:
            results[seg.segment_id] = exc
        else:
            pending.append((seg, 0))
    if pending:
        _import_aeneas()
    ctx = mp.get_context("fork")
    limit, retries = float(cfg["timeout"]), int(cfg["retries"])
    running: dict = {}  # receiving end → (process, segment, attempt, deadline)
    while pending or running:
        while pending and len(running) < max(int(threads), 1):
            seg, attempt = pending.popleft()
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(send, seg, cfg), daemon=True)
            proc.start()
            send.close()
            running[recv] = (proc, seg, attempt, time.monotonic() + limit)
        next_deadline = min(deadline for *_, deadline in running.values())
        ready = set(wait(list(running), timeout=max(next_deadline - time.monotonic(), 0.0)))
        for recv in list(running):
            proc, seg, attempt, deadline = running[recv]
            if recv in ready:
                try:
                    ok, payload = recv.recv()
                    retry = False
                except EOFError:  # died before sending: crash or kill
                    proc.join()
                    ok, payload, retry = False, f"aeneas worker died (exit code {proc.exitcode})", True
            elif time.monotonic() >= deadline:
                proc.kill()
                ok, payload, retry = False, f"aeneas timed out after {limit} s", True
            else:
                continue
            del running[recv]
            recv.close()
            proc.join()
            if ok is None:  # a bug in the child: stop every child and fail with its traceback
                _stop_all(running)
                exc, tb = payload
                raise exc from ChildTraceback(tb)
            if ok:
                results[seg.segment_id] = payload
            elif retry and attempt < retries:
                log.warning("%s: %s; retrying", seg.segment_id, payload)
                pending.append((seg, attempt + 1))
            else:
                results[seg.segment_id] = AlignError(payload)
    return results


def _stop_all(running: dict) -> None:
    for recv, (proc, *_rest) in list(running.items()):
        proc.kill()
        proc.join()
        recv.close()
    running.clear()


# ----------------------------------------------------------------------------------- driver


def align_segments(segments: list[Segment], cfg: dict | None, *, threads: int) -> dict:
    """``segment_id → [(word, start, end)] | Exception`` for every segment (``cfg``: align.aeneas)."""
    cfg = complete(cfg, "align", "aeneas")
    if cfg["engine"] == "cli":
        return _align_segments_cli(segments, cfg, threads)
    return _align_segments_library(segments, cfg, threads)


def align_words(
    wav: str | Path, words: list[str], lang: str, cfg: dict | None = None
) -> list[tuple[str, float, float]]:
    """One segment with the configured engine; raises AlignError if it cannot be aligned."""
    seg = Segment("segment", "video", lang, tuple(words), Path(wav), 0.0)
    res = align_segments([seg], cfg, threads=1)["segment"]
    if isinstance(res, Exception):
        raise res
    return res


def fit_to_speech(wav: str | Path, words: list[tuple[str, float, float]], cfg: dict) -> list[tuple[str, float, float]]:
    """Word boundaries moved onto the speech the clip's own noise floor reveals.

    aeneas' DTW makes the words contiguous: the pause after a word becomes part of it, and on
    real recordings the next word's start lands late by up to the pause. With speech runs from
    :func:`polysent.segment.speech_runs` (threshold ``trim_db`` of the way from the clip's noise
    floor to its speech level):

    1. ``snap_to_speech``: each word joins the run its aligned interval overlaps most; the first
       word of a run starts where the run starts and the last ends where it ends (a start may move
       earlier, into what aeneas gave the previous word); words inside one run keep aeneas'
       boundaries between them, clipped into the run. A word that overlaps no run is left as is.
    2. every word then shrinks to its first..last active frame (a pause inside its interval, or
       room noise at its edge, is not part of it).
    """
    from polysent.segment import read_mono, speech_runs

    y, sr = read_mono(wav)
    hop = float(cfg["trim_hop"])
    if len(y) < 3 * hop * sr:
        return words
    runs, active = speech_runs(
        y,
        sr,
        float(cfg["trim_db"]),
        hop=hop,
        min_pause=float(cfg["min_pause"]),
        min_run=float(cfg["min_speech"]),
        floor_percentile=float(cfg["noise_percentile"]),
    )
    out = [list(w) for w in words]
    if cfg["snap_to_speech"] and runs:
        members: dict[int, list[int]] = {}
        for i, (_w, s, e) in enumerate(out):
            overlap = [max(0.0, min(e, r1) - max(s, r0)) for r0, r1 in runs]
            k = int(np.argmax(overlap))
            if overlap[k] > 0:
                members.setdefault(k, []).append(i)
        for k, idx in members.items():
            r0, r1 = runs[k]
            out[idx[0]][1], out[idx[-1]][2] = r0, r1
            for i in idx:
                out[i][1] = min(max(out[i][1], r0), r1)
                out[i][2] = min(max(out[i][2], out[i][1]), r1)
    frames = len(active)
    fitted = []
    for w, s, e in out:
        a, b = int(s / hop), min(int(np.ceil(e / hop)), frames)
        idx = np.flatnonzero(active[a:b])
        if len(idx):
            s, e = max(s, (a + idx[0]) * hop), min(e, (a + idx[-1] + 1) * hop)
        fitted.append((w, round(float(s), 6), round(float(max(e, s)), 6)))
    return fitted
