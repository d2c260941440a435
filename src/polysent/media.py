"""Media stage: one mono PCM WAV per video and sample rate, extracted with ffmpeg.

For every video of a shard the audio source is the manifest's ``audio_path`` when the corpus
ships one, else the ``video_path`` (its first audio stream). One ffmpeg process per video decodes
it once and writes one mono WAV per configured rate (``-ar``): 16 kHz for the aligner and the
openSMILE backend, 22.05 kHz for the librosa backend (the paper's rate). The source's duration (ffprobe, through
:mod:`polysent.probe`, the reader ``validate-manifest --probe`` uses too) is checked against the
manifest's segment ends: a segment that ends after the audio does is recorded
in QC, because every later stage would silently see a truncated segment.

Outputs in ``out_dir``: ``wav/{video_id}/{rate}.wav`` for every configured rate (always through
:func:`wav_path`, which every reader uses) and ``index.parquet`` with one row per (video, rate):
``video_id, sample_rate, wav, duration, source, source_duration``. One folder per video, below a
``wav/`` folder of its own, means no video id can name another video's file (``x.sr22050`` was a
legal id when rates were suffixes) or the index, and a failed video's clean-up touches only its
own folder.
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pyarrow as pa
import soundfile as sf
from tqdm import tqdm

from polysent.config import complete
from polysent.contracts import MEDIA_INDEX, check, read
from polysent.errors import raise_if_environment
from polysent.features import (
    Segment,
    add_file_args,
    add_shard_args,
    group_by_video,
    shard_mode,
    shard_segments,
    stage_config,
)
from polysent.io import atomic_path, write_parquet
from polysent.probe import MediaError, ToolFailed, in_words, probe, stderr_tail, tool as _tool
from polysent.qc import QCLog
from polysent.stage import Config, PathArg, Shard

log = logging.getLogger(__name__)

STAGE = "media"


def probe_duration(path: str | os.PathLike, *, ffprobe: str, timeout: float) -> float:
    """Duration in seconds of the first audio stream of ``path`` (container duration as fallback)."""
    # No packet count: the stage checks segment ends against what ffmpeg really decodes.
    duration = probe(path, ffprobe, timeout, count_packets=False).audio_duration
    if not math.isfinite(duration):
        raise MediaError(f"ffprobe reports no duration for {path}")
    return duration


def extract_wav(
    source: str | os.PathLike,
    target: str | os.PathLike,
    sample_rate: int,
    *,
    ffmpeg: str,
    timeout: float,
) -> float:
    """Decode ``source``'s first audio stream to a mono 16-bit PCM WAV at ``sample_rate``.

    Written atomically; the bitexact flags keep ffmpeg's version string and other metadata out of
    the file so that identical inputs give identical bytes. Returns the WAV's duration.
    """
    return extract_wavs(source, {sample_rate: target}, ffmpeg=ffmpeg, timeout=timeout)[0]


def extract_wavs(
    source: str | os.PathLike,
    targets: dict[int, str | os.PathLike],
    *,
    ffmpeg: str,
    timeout: float,
) -> list[float]:
    """:func:`extract_wav` for several rates (``{sample_rate: target}``) with one ffmpeg process.

    One output per rate, each with its own resampler, from a single decode of the source: the
    same bytes as one ffmpeg per rate, for one process start-up and one decode. Returns the WAVs'
    durations in the order of ``targets``.
    """
    with ExitStack() as stack:
        tmps = [stack.enter_context(atomic_path(target, suffix=".wav")) for target in targets.values()]
        cmd = [_tool(ffmpeg), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source)]
        for rate, tmp in zip(targets, tmps):
            cmd += [
                "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(int(rate)), "-c:a", "pcm_s16le",
                "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
                "-f", "wav", str(tmp),
            ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise_if_environment(None, proc.stderr)  # ffmpeg died of a full disk, not of the file
            why = in_words(proc.stderr, "ffmpeg could not decode the audio")
            raise ToolFailed(f"audio extraction failed: {why}: {source}", stderr_tail(proc.stderr))
        durations = []
        for tmp in tmps:
            info = sf.info(str(tmp))
            if info.frames == 0:
                raise MediaError(f"{source}: decoded audio is empty")
            durations.append(info.frames / info.samplerate)
    return durations


ALIGN_RATE = 16000  # the rate the aligner reads (aeneas and MFA models are 16 kHz)


def wav_path(media_dir: str | os.PathLike, video_id: str, sample_rate: int) -> Path:
    """Where the media stage writes (and every reader finds) ``video_id``'s WAV at ``sample_rate``."""
    return Path(media_dir) / "wav" / video_id / f"{int(sample_rate)}.wav"


def _remove_video_wavs(out_dir: Path, video_id: str, rates) -> None:
    """Delete what this stage wrote for one video, by exact name: nothing of another video."""
    for rate in rates:
        wav_path(out_dir, video_id, rate).unlink(missing_ok=True)
    folder = wav_path(out_dir, video_id, 0).parent
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _process_video(video_id: str, segs: list[Segment], out_dir: Path, cfg: dict):
    """Extract every rate for one video; return (index rows, QC records as (segment, reason, detail)).

    Raises only for an environment error (disk full, ...): every other failure is the video's QC record.
    """
    rows, failures = [], []
    source = segs[0].audio_path or segs[0].video_path
    if not source:
        return rows, [(s.segment_id, "no audio_path and no video_path in the manifest", None) for s in segs]
    if not Path(source).is_file():
        return rows, [(s.segment_id, f"media source missing: {source}", None) for s in segs]
    rates = [int(r) for r in cfg["sample_rates"]]
    try:
        src_dur = probe_duration(source, ffprobe=cfg["ffprobe"], timeout=cfg["timeout"])
        targets = {rate: wav_path(out_dir, video_id, rate) for rate in rates}
        durations = extract_wavs(source, targets, ffmpeg=cfg["ffmpeg"], timeout=cfg["timeout"])
        for (rate, target), dur in zip(targets.items(), durations):
            rows.append(
                {
                    "video_id": video_id,
                    "sample_rate": rate,
                    "wav": str(target),
                    "duration": dur,
                    "source": str(source),
                    "source_duration": src_dur,
                }
            )
    except (MediaError, subprocess.TimeoutExpired, RuntimeError, OSError) as err:
        _remove_video_wavs(out_dir, video_id, rates)
        raise_if_environment(err, str(err))  # a full disk is the machine's failure, not the video's
        reason = str(err) if str(err).startswith("audio extraction failed") else f"audio extraction failed: {err}"
        detail = err.detail if isinstance(err, ToolFailed) else None  # the tool's own words, apart
        return [], [(s.segment_id, reason, detail) for s in segs]
    # Segments that end after the audio would be silently truncated downstream.
    tol = float(cfg["duration_tolerance"])
    audio_dur = min(src_dur, min(r["duration"] for r in rows))
    for s in segs:
        if s.end > audio_dur + tol:
            failures.append(
                (
                    s.segment_id,
                    f"segment ends at {s.end:.3f} s but the audio of {source} lasts "
                    f"{audio_dur:.3f} s (tolerance {tol} s)",
                    None,
                )
            )
    return rows, failures


def run_shard(
    manifest: PathArg, shard: Shard, out: PathArg, qc_path: PathArg, cfg: Config, *, threads: int, progress: bool = True
) -> pa.Table:
    """Media stage for one shard: WAVs + ``index.parquet`` in the folder ``out``, QC to ``qc_path``."""
    cfg = complete(cfg, "media")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    videos = group_by_video(shard_segments(manifest, shard))
    qc = QCLog(STAGE)
    rows: list[dict] = []
    with ThreadPoolExecutor(max(1, int(threads))) as pool:  # ffmpeg runs in subprocesses
        jobs = [pool.submit(_process_video, vid, segs, out_dir, cfg) for vid, segs in videos.items()]
        for vid, job in tqdm(zip(videos, jobs), total=len(jobs), desc=f"media {shard}", disable=not progress):
            vid_rows, failures = job.result()
            rows += vid_rows
            for seg_id, reason, detail in failures:
                qc.add(reason, segment_id=seg_id, video_id=vid, detail=detail)
                log.warning("%s/%s: %s", vid, seg_id, reason)
    index = check(pa.Table.from_pylist(rows, schema=MEDIA_INDEX.schema()), MEDIA_INDEX)
    write_parquet(
        index_path(out_dir),
        index,
        provenance={"stage": STAGE, "tool": "ffmpeg", "params": cfg, "ffmpeg": ffmpeg_version(cfg)},
    )
    qc.write(qc_path)
    log.info("media %s: %d videos, %d WAVs, %d QC records", shard, len(videos), len(rows), len(qc))
    return index


def ffmpeg_version(cfg: dict | None = None) -> str:
    cfg = complete(cfg, "media")
    try:
        out = subprocess.run([_tool(cfg["ffmpeg"]), "-version"], capture_output=True, text=True, timeout=30).stdout
        return out.splitlines()[0] if out else "unknown"
    except (MediaError, OSError, subprocess.TimeoutExpired):
        return "unknown"


def index_path(media_dir: str | os.PathLike) -> Path:
    """The media index of one shard's media folder."""
    return Path(media_dir) / "index.parquet"


def read_index(media_dir: str | os.PathLike) -> pa.Table:
    """The media index of ``media_dir``, checked against ``contracts.MEDIA_INDEX`` (its one reader)."""
    return read(index_path(media_dir), MEDIA_INDEX)


# ---------------------------------------------------------------------------------------------
# CLI


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "media",
        help="extract mono WAV audio from a video/audio file (or a whole shard) with ffmpeg",
        description="Single file: polysent media IN.mp4 OUT.wav [--sr 16000]. "
        "Shard: polysent media --manifest results/corpus/manifest.parquet --shard 000 "
        "--out-dir results/media/000 --qc results/qc/media/000.parquet.",
    )
    add_file_args(p, "video or audio file (single-file mode)", "WAV to write (single-file mode)")
    p.add_argument("--sr", type=int, default=16000, help="sample rate in Hz (single file; 16000)")
    add_shard_args(p, {"--out-dir": "output folder for WAVs and index.parquet"}, "parallel ffmpeg processes")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    cfg = stage_config("media", args.config, args.set)
    if shard_mode(args, "out_dir"):
        index = run_shard(args.manifest, args.shard, args.out_dir, args.qc, cfg, threads=args.threads)
        print(f"{index.num_rows} WAVs in {args.out_dir}")
        return 0
    src_dur = probe_duration(args.input, ffprobe=cfg["ffprobe"], timeout=cfg["timeout"])
    dur = extract_wav(args.input, args.output, args.sr, ffmpeg=cfg["ffmpeg"], timeout=cfg["timeout"])
    print(f"{args.output}: {dur:.3f} s at {args.sr} Hz (source {src_dur:.3f} s)")
    return 0
