"""OpenFace 2 backend: ``FeatureExtraction`` per video, its CSV parsed into per-segment AU frames.

How it runs (as on a cluster): ``FeatureExtraction -f VIDEO -out_dir DIR -of NAME -aus`` — only
the AU block is requested, so OpenFace writes just ``NAME.csv`` with ``frame, face_id, timestamp,
confidence, success`` and the 35 AU columns (``-aus`` alone; with no output flag at all OpenFace
would also write HOG files, aligned crops and a tracked video). The binary comes from config
``visual.openface.binary`` (a path or a name on PATH) or from a container image
``visual.openface.container`` run with apptainer/singularity (``exec``) or docker
(``--entrypoint``), the executable inside the image being ``visual.openface.container_binary``
(``/home/openface-build/build/bin/FeatureExtraction`` in ``algebr/openface``).

Parsing follows OpenFace's real output: the Windows builds and the dynamic-AU post-processing
write ``", "``-separated files whose header names carry a leading space (``' AU45_r'``), Linux
builds write plain ``","``; both are read. ``timestamp`` is ``frame_index / fps`` from the
container's nominal fps (not the PTS), so variable-frame-rate videos should be transcoded to a
constant rate first (``visual.openface.cfr_fps``). On ``success = 0`` frames OpenFace still writes
a row (AUs forced to 0); they are kept with ``success = false`` and NaN AU values.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from polysent.config import complete
from polysent.features import Segment, SegmentFrames

log = logging.getLogger(__name__)

AU_INTENSITY = [f"AU{n:02d}_r" for n in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)]
AU_PRESENCE = [f"AU{n:02d}_c" for n in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 28, 45)]
AU_COLUMNS = AU_INTENSITY + AU_PRESENCE  # 17 + 18 = the paper's 35 visual dims
META_COLUMNS = ["frame", "face_id", "timestamp", "confidence", "success"]

HOW_TO_PROVIDE = (
    "Provide OpenFace 2 (https://github.com/TadasBaltrusaitis/OpenFace/wiki, built with its "
    "download_models.sh) in one of these ways: (1) set visual.openface.binary to the path of "
    "FeatureExtraction (or put it on PATH); (2) set visual.openface.container to an image, e.g. "
    "docker://algebr/openface:latest, with apptainer, singularity or docker on PATH "
    "(visual.openface.container_binary is the executable inside the image); or (3) use the "
    "offline backend: visual.backend: landmarks."
)


class OpenFaceError(RuntimeError):
    pass


class OpenFaceNotFound(OpenFaceError):
    pass


def read_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a FeatureExtraction CSV (either header variant); check the columns this stage needs."""
    df = pd.read_csv(path, skipinitialspace=True)
    df.columns = df.columns.str.strip()
    missing = [c for c in ["timestamp", "confidence", "success", *AU_COLUMNS] if c not in df.columns]
    if missing:
        raise OpenFaceError(
            f"{path}: not an OpenFace FeatureExtraction CSV with AUs; missing columns "
            f"{missing[:6]}{' ...' if len(missing) > 6 else ''} (was it run with -aus?)"
        )
    return df


def segment_frames(df: pd.DataFrame, segments: list[Segment], where: str = "") -> tuple[list, list]:
    """Cut OpenFace rows into segments: ``start <= timestamp < end``, time from segment start.

    Rows with ``success = 0`` keep their time and confidence; their AUs become NaN (OpenFace sets
    them to 0, which would read as "AU absent" rather than "no face").
    """
    ts = df["timestamp"].to_numpy(np.float64)
    success = df["success"].to_numpy() == 1
    conf = df["confidence"].to_numpy(np.float32)
    aus = df[AU_COLUMNS].to_numpy(np.float32)
    aus[~success] = np.nan
    frames, failures = [], []
    for s in segments:
        m = (ts >= s.start) & (ts < s.end)
        if not m.any():
            last = float(ts.max()) if len(ts) else float("nan")
            failures.append(
                (
                    s.segment_id,
                    f"no OpenFace frame in [{s.start:.3f}, {s.end:.3f}) s {where}(last timestamp {last:.3f} s)",
                )
            )
            continue
        frames.append(SegmentFrames(s.segment_id, ts[m] - s.start, aus[m], success[m], conf[m]))
    return frames, failures


def _container_runtime(cfg: dict) -> str:
    wanted = cfg.get("container_runtime")
    for name in [wanted] if wanted else ["apptainer", "singularity", "docker"]:
        if shutil.which(name):
            return name
    raise OpenFaceNotFound(
        f"visual.openface.container is {cfg['container']!r} but no container runtime "
        f"({wanted or 'apptainer, singularity or docker'}) is on PATH. " + HOW_TO_PROVIDE
    )


def command(cfg: dict, video: str | os.PathLike, out_dir: str | os.PathLike, name: str) -> list[str]:
    """The FeatureExtraction command line (with its container wrapper when configured)."""
    cfg = complete(cfg, "visual", "openface")
    video, out_dir = str(Path(video).resolve()), str(Path(out_dir).resolve())
    args = ["-f", video, "-out_dir", out_dir, "-of", name, *cfg["flags"], *cfg["extra_args"]]
    if cfg.get("container"):
        runtime = _container_runtime(cfg)
        binds = sorted({str(Path(video).parent), out_dir})
        image = cfg["container"]
        if Path(runtime).name == "docker":
            image = image.removeprefix("docker://")
            uid = f"{os.getuid()}:{os.getgid()}"
            vols = [a for b in binds for a in ("-v", f"{b}:{b}")]
            return [
                runtime,
                "run",
                "--rm",
                "-u",
                uid,
                *vols,
                "--entrypoint",
                cfg["container_binary"],
                image,
                *args,
            ]
        return [runtime, "exec", "--bind", ",".join(binds), image, cfg["container_binary"], *args]
    binary = cfg["binary"]
    path = shutil.which(binary) if binary else None
    if path is None:
        raise OpenFaceNotFound(
            f"OpenFace FeatureExtraction not found (visual.openface.binary = {binary!r}). " + HOW_TO_PROVIDE
        )
    return [path, *args]


def run(cfg: dict, video: str | os.PathLike, out_dir: str | os.PathLike, name: str) -> Path:
    """Run FeatureExtraction on ``video``; return the CSV it wrote."""
    cfg = complete(cfg, "visual", "openface")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    src = Path(video)
    if cfg.get("cfr_fps"):
        src = _to_constant_fps(video, out_dir / f"{name}.cfr.mp4", float(cfg["cfr_fps"]))
    cmd = command(cfg, src, out_dir, name)
    log.info("running %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=cfg["timeout"])
    csv = out_dir / f"{name}.csv"
    # FeatureExtraction can exit 0 after an error (e.g. unreadable video), so the CSV decides.
    if proc.returncode != 0 or not csv.is_file() or csv.stat().st_size == 0:
        tail = (proc.stderr or proc.stdout or "").strip()[-400:]
        raise OpenFaceError(f"FeatureExtraction produced no CSV for {video} (exit {proc.returncode}): {tail}")
    return csv


def _to_constant_fps(video, target: Path, fps: float) -> Path:
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(video),
        "-vf",
        f"fps={fps}",
        "-an",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "18",
        str(target),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise OpenFaceError(f"ffmpeg could not transcode {video} to {fps} fps: {proc.stderr[-300:]}")
    return target


def process_video(cfg: dict, video: str, segments: list[Segment]) -> tuple[list, list]:
    """OpenFace frames of one video's segments: (frames, failures). Raises only OpenFaceNotFound."""
    with tempfile.TemporaryDirectory(prefix="openface-") as tmp:
        try:
            # A fixed dot-free base name: OpenFace strips anything after a dot from -of.
            csv = run(cfg, video, tmp, "openface")
            df = read_csv(csv)
        except OpenFaceNotFound:
            raise  # a setup problem, not a bad file: fail the job with the instructions
        except (OpenFaceError, subprocess.TimeoutExpired, OSError, ValueError) as err:
            return [], [(s.segment_id, f"OpenFace failed: {err}") for s in segments]
    return segment_frames(df, segments, where=f"of {video} ")


def check_available(cfg: dict) -> None:
    """Raise :class:`OpenFaceNotFound` (with instructions) before any video is touched."""
    command(complete(cfg, "visual", "openface"), "video.mp4", tempfile.gettempdir(), "probe")
