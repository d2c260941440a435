"""One ffprobe call per media file: its streams, durations and whether every packet is readable.

Used by the media stage (:func:`polysent.media.probe_duration`), by ``polysent validate-manifest
--probe`` and by the folder corpus stage's ``probe`` switch (:mod:`polysent.corpus.checks`), so a
file is judged the same way before and during a run.

A truncated file is found two ways. Video: ``-count_packets`` makes ffprobe demux (not decode)
the whole file, and a truncated MP4/MOV's index (``nb_frames``) still promises frames that the
file no longer holds (one video frame is one packet). Audio: its first stream is decoded
(ffmpeg, audio only) and the decoded duration compared with the duration the header declares;
packet counts cannot judge audio, because for PCM in MOV/MP4 ``nb_frames`` counts samples while
a packet holds a whole chunk of them (247 packets for 252,928 samples, all readable).
Containers without a packet count in their header (Matroska/WebM) are judged by durations only.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from polysent.errors import PolysentError


class MediaError(PolysentError, RuntimeError):
    """ffmpeg/ffprobe could not read or convert a media file."""


class ToolFailed(MediaError):
    """ffmpeg/ffprobe failed on one file: ``str()`` says why in words, ``detail`` holds the tool's
    stderr tail (QC keeps it in its own column)."""

    def __init__(self, message: str, detail: str):
        super().__init__(message)
        self.detail = detail


# What an ffmpeg tool's stderr means for the file, first match wins.
_IN_WORDS = (
    (("matches no streams", "does not contain any stream"), "the file has no audio stream"),
    (
        ("moov atom not found", "invalid data found", "end of file", "truncated"),
        "the file is corrupt, truncated or not a media file",
    ),
    (("no such file",), "the file is missing"),
    (("permission denied",), "the file cannot be read (permission denied)"),
    (("decoder", "decoding", "not supported", "unsupported codec"), "its codec cannot be decoded"),
)


def in_words(stderr: str, default: str) -> str:
    """Why an ffmpeg tool failed on a file, in words, from its stderr (``default`` if unknown)."""
    low = stderr.lower()
    return next((words for needles, words in _IN_WORDS if any(n in low for n in needles)), default)


def stderr_tail(stderr: str, limit: int = 300) -> str:
    """A tool's stderr on one line ('|' between lines), its last ``limit`` characters, without the
    per-run pointer addresses ffmpeg prints ('[mov,mp4 @ 0x55...]'): one file, one message."""
    lines = (re.sub(r" @ 0x[0-9a-f]+", "", line).strip() for line in stderr.splitlines())
    return " | ".join(line for line in lines if line)[-limit:]


def tool(name: str) -> str:
    """Full path of an ffmpeg tool, or a MediaError saying how to install it."""
    path = shutil.which(name)
    if path is None:
        raise MediaError(
            f"'{name}' not found on PATH; install ffmpeg (Debian: apt-get install ffmpeg) or set "
            "media.ffmpeg / media.ffprobe in the config to its full path"
        )
    return path


@dataclass(frozen=True)
class Stream:
    kind: str  # ffprobe codec_type: audio, video, subtitle, data
    codec: str
    duration: float  # NaN when the stream reports none
    declared_packets: int | None  # from the container index (MP4/MOV); None when unknown
    read_packets: int | None  # packets actually demuxed; None when not counted


@dataclass(frozen=True)
class MediaInfo:
    path: str
    format: str
    duration: float  # container duration, NaN when unknown
    streams: tuple[Stream, ...]
    audio_decoded: float | None = None  # seconds of the first audio stream that decode; None: not decoded

    def first(self, kind: str) -> Stream | None:
        return next((s for s in self.streams if s.kind == kind), None)

    @property
    def audio_duration(self) -> float:
        """Duration of the first audio stream (container duration as fallback; NaN if neither)."""
        audio = self.first("audio")
        if audio is None:
            raise MediaError(f"{self.path} has no audio stream")
        return audio.duration if math.isfinite(audio.duration) else self.duration

    def truncated(self) -> list[str]:
        """Streams that end before their header says: a video stream whose container index
        promises more packets than the file holds, an audio stream that decodes to less than its
        declared duration (by more than 1 % or 0.25 s)."""
        out = [
            f"{s.kind} stream: {s.read_packets or 0} of {s.declared_packets} packets readable"
            for s in self.streams
            if s.kind != "audio"
            and s.declared_packets
            and s.read_packets is not None
            and s.read_packets < s.declared_packets
        ]
        audio = self.first("audio")
        if audio is not None and self.audio_decoded is not None:
            declared = self.audio_duration
            if math.isfinite(declared) and self.audio_decoded < declared - max(0.25, 0.01 * declared):
                out.append(
                    f"audio stream: decodes to {self.audio_decoded:.3f} s of the {declared:.3f} s its header declares"
                )
        return out


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):  # absent or "N/A"
        return float("nan")


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse(path: str, info: dict, counted: bool) -> MediaInfo:
    """ffprobe's JSON (``-show_entries stream=...:format=...``) → :class:`MediaInfo`."""
    streams = tuple(
        Stream(
            kind=str(s.get("codec_type", "")),
            codec=str(s.get("codec_name", "")),
            duration=_float(s.get("duration")),
            declared_packets=_int(s.get("nb_frames")),
            # A counted stream without the key had nothing readable (ffprobe omits a zero).
            read_packets=(_int(s.get("nb_read_packets")) or 0) if counted else None,
        )
        for s in info.get("streams") or []
    )
    fmt = info.get("format") or {}
    return MediaInfo(str(path), str(fmt.get("format_name", "")), _float(fmt.get("duration")), streams)


def probe(
    path: str | os.PathLike,
    ffprobe: str = "ffprobe",
    timeout: float = 120,
    count_packets: bool = True,
) -> MediaInfo:
    """Streams and durations of ``path``; MediaError when ffprobe cannot read it at all."""
    cmd = [tool(ffprobe), "-v", "error"]
    if count_packets:
        cmd.append("-count_packets")
    cmd += [
        "-show_entries",
        "stream=codec_type,codec_name,duration,nb_frames,nb_read_packets:format=format_name,duration",
        "-of",
        "json",
        str(path),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"ffprobe took more than {timeout} s on {path}") from exc
    if proc.returncode != 0:
        why = in_words(proc.stderr, "ffprobe does not recognise it")
        raise ToolFailed(f"ffprobe cannot read {path}: {why}", stderr_tail(proc.stderr))
    try:
        info = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError as exc:
        raise MediaError(f"ffprobe gave unreadable output for {path}: {exc}") from exc
    parsed = parse(str(path), info, count_packets)
    if count_packets and parsed.first("audio") is not None:
        ffmpeg = Path(tool(ffprobe)).with_name("ffmpeg")
        decoded = decoded_audio_seconds(path, str(ffmpeg) if ffmpeg.is_file() else "ffmpeg", timeout)
        parsed = dataclasses.replace(parsed, audio_decoded=decoded)
    return parsed


def decoded_audio_seconds(path: str | os.PathLike, ffmpeg: str = "ffmpeg", timeout: float = 120) -> float:
    """Seconds of ``path``'s first audio stream that ffmpeg decodes (0.0 when none does)."""
    cmd = [tool(ffmpeg), "-nostdin", "-v", "error", "-nostats", "-i", str(path), "-map", "0:a:0"]
    cmd += ["-f", "null", "-", "-progress", "pipe:1"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"ffmpeg took more than {timeout} s to decode the audio of {path}") from exc
    times = re.findall(r"^out_time_us=(\d+)$", proc.stdout, re.M)
    return int(times[-1]) / 1e6 if times else 0.0


def media_problems(
    info: MediaInfo, last_end: float | None = None, tolerance: float = 0.1, need_video: bool = True
) -> list[str]:
    """What makes a probed file unusable for the pipeline (empty list: nothing).

    ``last_end``: the latest segment end (s) the manifest places in this file's audio.
    """
    problems = []
    if need_video and info.first("video") is None:
        problems.append("no video stream")
    if info.first("audio") is None:
        problems.append("no audio stream")
    problems += [f"truncated ({why})" for why in info.truncated()]
    if info.first("audio") is not None and last_end is not None:
        audio = info.audio_duration
        if not math.isfinite(audio):
            problems.append("no duration reported for the audio stream")
        elif last_end > audio + tolerance:
            problems.append(
                f"segments end at {last_end:.3f} s but the audio lasts {audio:.3f} s (tolerance {tolerance} s)"
            )
    return problems
