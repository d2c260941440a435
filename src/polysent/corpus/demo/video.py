"""Per-frame face state of a demo video and its H.264/AAC encoding (PyAV in-process; ffmpeg CLI).

:func:`frame_schedule` turns a video's timeline (segments, words, cutaways) into one bank index
tuple per frame: the smile follows the segment's visual latent (eased in and out, resting
expression between segments), the lower lip opens on syllables while a word is spoken, blinks
come at random, and the head rolls and translates a little (smoothed random walks).
:func:`encode` pipes the raw frames to ffmpeg and muxes the source WAV as AAC.

Encoder settings: the demo encodes with x264 ``-preset superfast`` plus the macroblock tree
and a 10-frame rate-control lookahead of ``veryfast`` (``-x264-params mbtree=1:rc-lookahead=10``;
plain superfast drops them and nearly doubles the file of these almost static shots) and ffmpeg's
``-aac_coder fast`` instead of its two-loop search. Per 18 s video (2-core EPYC, loaded) that is
~0.22 instead of ~0.32 CPU s of ffmpeg for the video stream, at +16 % video bytes for the same
CRF, and ~0.05 instead of ~0.25 CPU s of AAC (the WAV, not the mp4's AAC, is what the audio
stages read). ultrafast would save another ~0.04 s but drops CABAC and deblocking (files ~2×).

In-process encoding: the demo renderer starts no ffmpeg process per video. :class:`Mp4Writer` encodes through PyAV (the pinned ``av`` wheel bundles its
own libavcodec/libx264), fed I420 frames the renderer cuts from bank images converted to YUV once
(:func:`rgb_to_yuv`, :func:`subsample_chroma`), and the very samples of the WAV as AAC. That saves
the process start-up (~0.09 s a video), the pipe and swscale's RGB→YUV (~0.06 s). The AAC is
32 kb/s mono instead of 64 (half the audio bytes, about the same CPU: ~2 ms per second of audio):
the mp4's audio is only there so the file plays (every audio stage reads the WAV; ``media.py``
takes the manifest's ``audio_path``). x264's ``partitions=none``,
``weightp=0`` and ``scenecut=0`` are not used: they save ≤ 10 % of x264's time (within the loaded
machine's noise) for a lower PSNR. PyAV is a pinned dependency, not an optional one: one encoder, one set of bytes
(:func:`deterministic_heap` says what that took). :func:`encode` (the ffmpeg
command line, RGB frames + a WAV file, optional padding) stays for the media tests and
``scripts/bench_features.py``, which build odd files (no audio, padded audio) with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from polysent.corpus.demo.face import FaceBank

SYLLABLE_HZ = 3.5  # mouth open/close cycles per second while a word is spoken
EASE_S = 0.3  # time constant of expression changes


class EncodeError(RuntimeError):
    """ffmpeg is missing or failed to encode a demo video."""


@dataclass(frozen=True)
class Schedule:
    smile: np.ndarray  # float, the continuous expression per frame in [-1, 1]
    smile_i: np.ndarray
    blink_i: np.ndarray
    mouth_i: np.ndarray
    roll_i: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    cutaway: np.ndarray  # bool per frame


def _ar1(rng: np.random.Generator, n: int, rho: float, sd: float) -> np.ndarray:
    """Smoothed random walk (AR(1) with stationary standard deviation ``sd``)."""
    eps = rng.normal(0.0, sd * np.sqrt(1 - rho**2), size=n)
    out = np.empty(n)
    x = rng.normal(0.0, sd)
    for i in range(n):
        x = rho * x + eps[i]
        out[i] = x
    return out


def frame_schedule(
    rng: np.random.Generator,
    bank: FaceBank,
    n_frames: int,
    fps: float,
    segments: list[tuple[float, float, float]],
    words: list[tuple[float, float]],
    cutaways: list[tuple[float, float]],
    rest_smile: float,
    face_cfg: dict,
) -> Schedule:
    """Bank indices per frame.

    ``segments``: (start, end, smile) in video seconds; ``words``: (start, end) of every spoken
    word; ``cutaways``: (start, end) intervals showing a face-less picture.
    """
    t = np.arange(n_frames) / fps
    target = np.full(n_frames, rest_smile)
    for start, end, smile in segments:
        target[(t >= start) & (t < end)] = smile
    # Exponential easing so expressions change over ~EASE_S rather than jumping at boundaries.
    alpha = 1.0 - np.exp(-1.0 / (fps * EASE_S))
    smile = np.empty(n_frames)
    s = rest_smile
    for i in range(n_frames):
        s += alpha * (target[i] - s)
        smile[i] = s
    smile_i = np.array([bank.smile_index(v) for v in smile], dtype=np.int64)

    mouth = np.zeros(n_frames, dtype=np.int64)
    for ws, we in words:
        inside = (t >= ws) & (t < we)
        phase = ((t - ws) * SYLLABLE_HZ) % 1.0
        mouth[inside & (phase < 0.6)] = 1

    blink = np.zeros(n_frames, dtype=np.int64)
    duration = n_frames / fps
    n_blinks = rng.poisson(face_cfg["blink_rate_hz"] * duration)
    for bt in np.sort(rng.uniform(0, duration, size=n_blinks)):
        k = int(bt * fps)
        for off, state in ((0, 1), (1, 2), (2, 1)):  # half-closed, closed, half-closed
            if k + off < n_frames:
                blink[k + off] = max(blink[k + off], state)

    rolls = bank.roll_degrees
    roll = _ar1(rng, n_frames, 0.97, max(abs(rolls).max(), 1e-9) * 0.6)
    roll_i = np.abs(roll[:, None] - rolls[None, :]).argmin(1)
    jit = face_cfg["jitter_px"]
    dx = np.clip(np.rint(_ar1(rng, n_frames, 0.95, jit / 2.0)), -min(jit, bank.pad), min(jit, bank.pad))
    dy = np.clip(np.rint(_ar1(rng, n_frames, 0.95, jit / 2.0)), -min(jit, bank.pad), min(jit, bank.pad))

    cut = np.zeros(n_frames, dtype=bool)
    for start, end in cutaways:
        cut[(t >= start) & (t < end)] = True
    return Schedule(smile, smile_i, blink, mouth, roll_i, dx.astype(int), dy.astype(int), cut)


def ffmpeg_binary() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise EncodeError(
            "ffmpeg not found on PATH: the demo corpus encodes its videos with it "
            "(Debian/Ubuntu: apt-get install ffmpeg; see scripts/setup.sh)"
        )
    return exe


def encode(
    out_path,
    wav_path,
    frames,
    size: int,
    fps: float,
    crf: int = 23,
    pad_audio_to: float | None = None,
    preset: str = "superfast",
    aac_coder: str = "fast",
    x264_params: str | None = "mbtree=1:rc-lookahead=10",
) -> None:
    """Encode an iterable of ``size``×``size`` RGB uint8 frames + the WAV into an H.264/AAC mp4.

    ``wav_path`` None gives a video without an audio stream; ``pad_audio_to`` (seconds) pads
    the audio with silence and cuts the file to that length. Single-threaded x264 and
    bit-exact flags make the file identical across runs; no metadata (creation time, encoder
    strings) is copied in.
    """
    cmd = [
        ffmpeg_binary(), "-nostdin", "-v", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size}x{size}", "-r", str(fps), "-i", "pipe:0",
    ]  # fmt: skip
    if wav_path is not None:
        cmd += [
            "-i",
            str(wav_path),
            "-map",
            "0:v:0",
            "-map",
            "1:a:0",
            "-c:a",
            "aac",
            "-aac_coder",
            aac_coder,
            "-b:a",
            "64k",
        ]
    if pad_audio_to is not None:
        cmd += ["-af", "apad", "-t", f"{pad_audio_to}"]
    cmd += [
        "-c:v", "libx264", "-preset", preset, *(["-x264-params", x264_params] if x264_params else []),
        "-crf", str(crf), "-pix_fmt", "yuv420p",
        "-threads", "1",
        "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
        "-movflags", "+faststart", "-f", "mp4",
        str(out_path),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for frame in frames:
            proc.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).data)  # one copy, not two
    except BrokenPipeError:
        pass
    finally:
        proc.stdin.close()
    err = proc.stderr.read().decode(errors="replace")
    if proc.wait() != 0:
        raise EncodeError(f"ffmpeg failed to encode {out_path}: {err.strip()[-2000:]}")


# --- in-process encoding (PyAV) ---------------------------------------------------------------

# BT.601, limited ("TV") range: what ffmpeg's rgb24 -> yuv420p conversion uses by default and
# what players assume for an untagged SD stream.
_YUV_FROM_RGB = np.array(
    [[0.256788, 0.504129, 0.097906], [-0.148223, -0.290993, 0.439216], [0.439216, -0.367788, -0.071427]],
    dtype=np.float32,
)
_YUV_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float32)
AUDIO_BITRATE = 32_000  # mono speech for playback only; the audio stages read the WAV
_BITEXACT = 0x800000  # AV_CODEC_FLAG_BITEXACT: no encoder version strings in the stream


def rgb_to_yuv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(h, w, 3) uint8 RGB -> luma (h, w) uint8 and full-resolution chroma U, V (h, w) float32.

    Elementwise products and sums, not a matrix product: BLAS may sum in an order that depends
    on the arrays' memory alignment, and a last-bit difference flips a rounding (a video's bytes
    would then depend on what its worker rendered before). Limited range keeps every value
    inside [16, 240], so rounding is a cast of value + 0.5.
    """
    r, g, b = (rgb[..., c].astype(np.float32) for c in range(3))
    (yr, yg, yb), (ur, ug, ub), (vr, vg, vb) = _YUV_FROM_RGB
    luma = (r * yr + g * yg + b * yb + (_YUV_OFFSET[0] + 0.5)).astype(np.uint8)
    u = r * ur + g * ug + b * ub + _YUV_OFFSET[1]
    v = r * vr + g * vg + b * vb + _YUV_OFFSET[2]
    return luma, u, v


def subsample_chroma(plane: np.ndarray, py: int, px: int) -> np.ndarray:
    """4:2:0 chroma of a full-resolution plane: the mean of each 2×2 block starting at (py, px).

    A frame cut at (y0, x0) from a bigger image has the chroma ``subsample_chroma(c, y0 % 2,
    x0 % 2)[y0 // 2 :, x0 // 2 :]`` (cropped to half the frame), so a renderer converts an image
    once per phase instead of once per frame. Rounded half up (chroma lies in [16, 240]).
    """
    h, w = plane.shape
    c = plane[py : py + (h - py) // 2 * 2, px : px + (w - px) // 2 * 2]
    total = c[0::2, 0::2] + c[1::2, 0::2] + c[0::2, 1::2] + c[1::2, 1::2]
    return (total * 0.25 + 0.5).astype(np.uint8)


def yuv_frame(luma: np.ndarray, u: np.ndarray, v: np.ndarray):
    """An I420 ``av.VideoFrame`` with these planes (luma h×w, chroma h/2×w/2), copied in place."""
    import av

    h, w = luma.shape
    frame = av.VideoFrame(w, h, "yuv420p")
    for plane, values in zip(frame.planes, (luma, u, v)):
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        rows[:, : plane.width] = values
    return frame


class Mp4Writer:
    """H.264 (x264, one thread) + AAC mp4 written in-process; identical input gives identical bytes.

    ``samples`` (float in [-1, 1], mono, ``sample_rate``; None: no audio stream) are the whole
    audio track, encoded at once; its packets are muxed between the video's as the frames reach
    them, so the file interleaves the two streams. :meth:`write_frame` takes I420 frames
    (:func:`yuv_frame`), :meth:`close` flushes x264 and the audio left and finishes the file.
    """

    AUDIO_CHUNK = 1024  # samples per AAC frame

    def __init__(
        self,
        path,
        size: int,
        fps: int,
        samples: np.ndarray | None = None,
        sample_rate: int | None = None,
        crf: int = 23,
        preset: str = "superfast",
        x264_params: str | None = "mbtree=1:rc-lookahead=10",
        audio_bitrate: int = AUDIO_BITRATE,
    ):
        import av

        self._av = av
        self.path = str(path)
        self.fps = fps
        self._heap = deterministic_heap()
        self._heap.__enter__()
        self.samples = None if samples is None else np.ascontiguousarray(samples, dtype=np.float32)
        self.sample_rate = sample_rate
        try:
            self.container = av.open(
                self.path, "w", format="mp4",
                options={"movflags": "+faststart"}, container_options={"fflags": "+bitexact"},
            )  # fmt: skip
            opts = {"preset": preset, "crf": str(crf), **({"x264-params": x264_params} if x264_params else {})}
            self.video = self.container.add_stream("libx264", rate=fps, options=opts)
            self.video.width = self.video.height = size
            self.video.pix_fmt = "yuv420p"
            self.video.time_base = Fraction(1, fps)
            self.video.codec_context.thread_count = 1  # x264's threads would change the bytes
            self.video.codec_context.flags |= _BITEXACT
            self.audio = None
            if self.samples is not None:
                self.audio = self.container.add_stream("aac", rate=sample_rate, options={"aac_coder": "fast"})
                self.audio.layout = "mono"
                self.audio.bit_rate = audio_bitrate
                self.audio.codec_context.flags |= _BITEXACT
        except (av.error.FFmpegError, ValueError) as exc:
            self._heap.__exit__(None, None, None)
            raise EncodeError(f"cannot open {self.path} for H.264/AAC encoding: {exc}") from exc
        self.n_frames = 0
        # The whole track is encoded first (one tight loop, the AAC encoder's state stays hot) and
        # its packets muxed as the video reaches them.
        self._audio_packets = self._encode_audio() if self.audio is not None else []

    def write_frame(self, frame) -> None:
        """Encode one I420 ``av.VideoFrame``; the same object may come again (its pts is reset)."""
        frame.pts = self.n_frames
        self.n_frames += 1
        self.container.mux(self.video.encode(frame))
        self._mux_audio_until(Fraction(self.n_frames, self.fps))

    def _encode_audio(self) -> list:
        """All AAC packets of the track, encoded before any video frame (see the class doc)."""
        x, chunk, packets = self.samples, self.AUDIO_CHUNK, []
        for start in range(0, len(x), chunk):
            frame = self._av.AudioFrame.from_ndarray(x[None, start : start + chunk], format="fltp", layout="mono")
            frame.sample_rate = self.sample_rate
            frame.pts = start
            packets += self.audio.encode(frame)
        packets += self.audio.encode(None)
        return packets

    def _mux_audio_until(self, seconds: Fraction | None) -> None:
        """Mux the audio packets that start before ``seconds`` (None: all that are left)."""
        while self._audio_packets and (
            seconds is None or self._audio_packets[0].pts * self._audio_packets[0].time_base < seconds
        ):
            self.container.mux(self._audio_packets.pop(0))

    def close(self) -> None:
        try:
            self.container.mux(self.video.encode(None))
            self._mux_audio_until(None)
        finally:
            self.container.close()
            self._heap.__exit__(None, None, None)


_M_PERTURB = -6  # glibc mallopt parameter: fill every malloc'd block with a fixed byte


@contextmanager
def deterministic_heap():
    """Inside: glibc hands out heap memory filled with a fixed byte instead of old contents.

    Why: libx264 (through PyAV, mbtree + B-frames) reads some memory it has not written, so in
    a long-lived process its output changed from one file to the next (same frames, same
    settings: 4 different streams in 10 encodes). In a fresh process, as with one ffmpeg per
    video before, the heap starts the same and so did the bytes. With the heap's garbage made
    constant the same input gives the same file whatever the process did before (tests check
    it across runs and worker counts). Costs no measurable time; a no-op where glibc's
    ``mallopt`` is missing (there the corpus tests would show a difference).
    """
    mallopt = _mallopt()
    if mallopt is None:
        yield
        return
    mallopt(_M_PERTURB, 0x5A)
    try:
        yield
    finally:
        mallopt(_M_PERTURB, int(os.environ.get("MALLOC_PERTURB_", "0") or 0))


def _mallopt():
    import ctypes

    try:
        return ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None


def pyav_version() -> str:
    """PyAV and the libavcodec it bundles, for provenance."""
    try:
        import av
    except ImportError:
        return "missing"
    major, minor, micro = av.library_versions["libavcodec"]
    return f"PyAV {av.__version__} (libavcodec {major}.{minor}.{micro})"
