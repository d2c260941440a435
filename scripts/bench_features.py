"""Benchmark the frame-level feature extractors on one core; prints a Markdown table.

    .venv/bin/python scripts/bench_features.py [--seconds 60] [--frames 450] [--repeat 3]

Acoustic: espeak-ng French speech (real synthesis, several sentences looped to --seconds), cut
into 5 s segments like the pipeline does, every backend configuration of interest; reported as
x real time per core = audio seconds / CPU seconds (this process only, BLAS pinned to one thread).

Visual (landmarks backend): a demo-resolution video (224x224, 15 fps: the astronaut face cropped
as the demo corpus does, 5 % black cutaway frames) encoded by ffmpeg; frames/s per core =
frames / (CPU seconds of this process + of the ffmpeg decoder child), and the extractor alone on
pre-decoded frames. Medians over --repeat runs. Targets: >= 100x real time for the 25-d
librosa set without harmonic separation, >= 50 frames/s per core at demo resolution.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"  # per-core numbers: no hidden BLAS/OpenMP threads

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

SENTENCES = [
    "Bonjour à tous, aujourd'hui je vais vous parler de ce nouveau téléphone.",
    "Honnêtement, je suis très content de la qualité de l'écran et de la batterie.",
    "Par contre, le prix est un peu élevé et l'appareil photo est décevant la nuit.",
    "Dans l'ensemble, je le recommande, surtout si vous aimez les jeux vidéo.",
]

ACOUSTIC_CONFIGS = [
    ("librosa 25-d, paper (tonnetz on HPSS harmonic, chroma_cqt)", {"backend": "librosa"}),
    (
        "librosa 25-d, no harmonic separation (chroma_cqt tonnetz)",
        {"backend": "librosa", "librosa": {"tonnetz_harmonic": False}},
    ),
    (
        "librosa 25-d, no harmonic separation, chroma_cqt at 12 bins/octave",
        {"backend": "librosa", "librosa": {"tonnetz_harmonic": False, "cqt_bins_per_octave": 12}},
    ),
    (
        "librosa 25-d, no harmonic separation, tonnetz on shared STFT chroma",
        {"backend": "librosa", "librosa": {"tonnetz_harmonic": False, "tonnetz_chroma": "stft"}},
    ),
    ("opensmile eGeMAPSv02 LLD (25), 16 kHz", {"backend": "opensmile"}),
]


def cpu_times() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def speech_signal(tmp: Path, seconds: float, sr: int) -> np.ndarray:
    import librosa

    parts = []
    for i, text in enumerate(SENTENCES):
        wav = tmp / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-v", "fr", "-w", str(wav), text], check=True)
        parts.append(librosa.load(wav, sr=sr)[0])
    y = np.concatenate(parts)
    reps = int(np.ceil(seconds * sr / len(y)))
    return np.tile(y, reps)[: int(seconds * sr)]


# 80 % of chroma_cqt's time is building the CQT filter bank, every call. librosa can keep those
# filters in a joblib disk cache (env LIBROSA_CACHE_DIR, read when librosa is imported), so this
# row runs in a child process with the variable set. Estimated tuning differs between segments
# and is part of the cache key, so hits are not guaranteed.
CACHED_LABEL = "librosa 25-d, no harmonic separation (chroma_cqt tonnetz), LIBROSA_CACHE_DIR set"
CACHED_CONFIG = {"backend": "librosa", "librosa": {"tonnetz_harmonic": False}}


def bench_acoustic_cached(seconds: float, repeat: int, tmp: Path) -> list[dict]:
    env = {**os.environ, "LIBROSA_CACHE_DIR": str(tmp / "librosa-cache")}
    cmd = [
        sys.executable,
        __file__,
        "--cached-child",
        "--seconds",
        str(seconds),
        "--repeat",
        str(repeat),
    ]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def bench_acoustic(seconds: float, repeat: int, tmp: Path, configs=None) -> list[dict]:
    from polysent.features.acoustic import make_extractor

    rows = []
    for label, cfg in configs or ACOUSTIC_CONFIGS:
        ex = make_extractor(cfg)
        y = speech_signal(tmp, seconds, ex.sr)
        seg = 5 * ex.sr
        ex(y[:seg])  # warm-up: filter banks and caches are built once per process
        cpu, wall = [], []
        for _ in range(repeat):
            c0, w0 = cpu_times()[0], time.perf_counter()
            for i in range(0, len(y), seg):
                ex(y[i : i + seg])
            cpu.append(cpu_times()[0] - c0)
            wall.append(time.perf_counter() - w0)
        rows.append(
            {
                "what": label,
                "audio_s": len(y) / ex.sr,
                "cpu_s": statistics.median(cpu),
                "wall_s": statistics.median(wall),
                "xrt": len(y) / ex.sr / statistics.median(cpu),
            }
        )
    return rows


def demo_frame(size: int = 224) -> np.ndarray:
    from PIL import Image
    from skimage import data

    from polysent.features.landmarks import _dlib_models

    img = data.astronaut()
    gray = np.asarray(Image.fromarray(img).convert("L"))
    rect = max(_dlib_models()[0](gray, 0), key=lambda r: r.area())
    cx, cy = rect.center().x, rect.center().y
    half = int(rect.width() * 2.2 / 2)
    crop = img[max(cy - half, 0) : cy + half, max(cx - half, 0) : cx + half]
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.BILINEAR))


def bench_visual(n_frames: int, repeat: int, tmp: Path) -> list[dict]:
    from polysent.corpus.demo.video import encode
    from polysent.features import Segment
    from polysent.features.landmarks import LandmarkExtractor
    from polysent.features.visual import iter_frames, landmarks_video

    fps, size = 15, 224
    face = demo_frame(size)
    video = tmp / "demo.mp4"
    blank = np.zeros_like(face)
    encode(video, None, (blank if k % 20 == 19 else face for k in range(n_frames)), size, fps)
    seconds = n_frames / fps
    seg = Segment("s", "demo", 0.0, seconds, str(video), "")
    cfg = {"fps": fps}
    landmarks_video(cfg, str(video), [seg])  # warm-up (model load)
    pipe_cpu, pipe_wall, n_ok = [], [], 0
    for _ in range(repeat):
        (c0, k0), w0 = cpu_times(), time.perf_counter()
        frames, failures = landmarks_video(cfg, str(video), [seg])
        c1, k1 = cpu_times()
        pipe_cpu.append((c1 - c0) + (k1 - k0))
        pipe_wall.append(time.perf_counter() - w0)
        assert not failures and len(frames[0].time) == n_frames
        n_ok = int(frames[0].success.sum())
    grays = [g.copy() for _, g in iter_frames(video, fps, seconds)]
    ex = LandmarkExtractor(cfg)
    ex_cpu = []
    for _ in range(repeat):
        c0 = cpu_times()[0]
        for g in grays:
            ex(g)
        ex_cpu.append(cpu_times()[0] - c0)
    return [
        {
            "what": f"landmarks, decode + detect + 68 points ({size}x{size}, {fps} fps, {n_ok}/{n_frames} faces)",
            "frames": n_frames,
            "cpu_s": statistics.median(pipe_cpu),
            "wall_s": statistics.median(pipe_wall),
            "fps": n_frames / statistics.median(pipe_cpu),
        },
        {
            "what": "landmarks extractor only (pre-decoded frames)",
            "frames": n_frames,
            "cpu_s": statistics.median(ex_cpu),
            "wall_s": float("nan"),
            "fps": n_frames / statistics.median(ex_cpu),
        },
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="audio seconds per acoustic config")
    ap.add_argument("--frames", type=int, default=450, help="video frames for the visual benchmark")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (median reported)")
    ap.add_argument("--cached-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cached_child:
        with tempfile.TemporaryDirectory() as tmp:
            rows = bench_acoustic(args.seconds, args.repeat, Path(tmp), [(CACHED_LABEL, CACHED_CONFIG)])
        print(json.dumps(rows))
        return
    with tempfile.TemporaryDirectory() as tmp:
        ac = bench_acoustic(args.seconds, args.repeat, Path(tmp))
        ac.insert(2, bench_acoustic_cached(args.seconds, args.repeat, Path(tmp))[0])
        vi = bench_visual(args.frames, args.repeat, Path(tmp))
    load = os.getloadavg()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load avg {load[0]:.1f} at start of print; python {platform.python_version()}"
    )
    print(
        f"command: .venv/bin/python scripts/bench_features.py --seconds {args.seconds:g} "
        f"--frames {args.frames} --repeat {args.repeat}\n"
    )
    print("| acoustic extractor | audio s | CPU s (median) | x real time per core |")
    print("|---|---:|---:|---:|")
    for r in ac:
        print(f"| {r['what']} | {r['audio_s']:.0f} | {r['cpu_s']:.2f} | {r['xrt']:.0f}x |")
    print("\n| visual extractor | frames | CPU s (median) | frames/s per core |")
    print("|---|---:|---:|---:|")
    for r in vi:
        print(f"| {r['what']} | {r['frames']} | {r['cpu_s']:.2f} | {r['fps']:.0f} |")


if __name__ == "__main__":
    main()
