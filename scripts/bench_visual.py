"""Visual stage (landmarks backend): baseline, box tracking and optical flow, side by side.

    .venv/bin/python scripts/bench_visual.py [--videos-per-language 4] [--repeat 3]
        [--baseline-rev 989217c] [--corpus DIR] [--detect-every N] [--predict-every K]
        [--flow-max-error PX] [--restart detection] [--decoder bundled]

Inputs: demo videos synthesized for the run (``polysent demo`` with ``config/config.yaml``'s
corpus settings and ``--videos-per-language`` videos per language; 224x224, 15 fps, with
face-less cutaways), or the corpus in ``--corpus`` (a folder with ``manifest.parquet`` and
``cutaways.parquet``, e.g. ``results/corpus``). Every video's segments go through

* ``baseline``: ``polysent.features.visual.landmarks_video`` as it was at ``--baseline-rev``
  (loaded from git: ffprobe + multi-threaded ffmpeg, dlib detection on every frame);
* ``detect every frame``: today's decoder, ``detect_every: 1``;
* ``today``: ``landmarks_video`` as it was at ``--today-rev`` (loaded from git), the demo's
  ``detect_every: N`` box tracking with the shape predictor on every frame;
* ``flow``: ``detect_every: N`` plus ``predict_every: K`` (Lucas-Kanade optical flow between
  predictor frames, forward-backward check ``--flow-max-error``, a frame flow does not carry
  restarted as ``--restart`` says) and ``decoder`` (default: the static ffmpeg of
  ``imageio-ffmpeg``). Real faces: ``scripts/bench_real_faces.py``.

All three run in this one process, one after the other inside each repeat (so load changes hit
them alike), on one core (BLAS pinned; ffmpeg decodes single-threaded in the new path and with
its default threads in the baseline). frames/s per core = analysed frames / CPU seconds of this
process and its ffmpeg/ffprobe children; medians over ``--repeat``. Outputs are compared: the
detect-every-frame store must equal the baseline's; for tracking, the absolute difference of
every feature on frames where both found a face (median, p99, max), the per-segment mean
difference, success agreement, cutaway frames with a face (must be 0), and - for scale - how much
the features move when the detector's own box is shifted by 2 px (the noise detect-every-frame
carries anyway).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # per-core numbers: no hidden BLAS/OpenMP threads

import argparse  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import types  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def git_show(rev: str, path: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:{path}"], check=True, capture_output=True, text=True
    ).stdout


def load_baseline(rev: str) -> types.ModuleType:
    """``polysent.features.visual`` (and its ``landmarks``) as of ``rev``, as a private module."""
    tag = "".join(c if c.isalnum() else "_" for c in rev)
    lm = types.ModuleType(f"_landmarks_{tag}")
    exec(compile(git_show(rev, "src/polysent/features/landmarks.py"), f"{rev}:landmarks.py", "exec"), lm.__dict__)  # fmt: skip
    sys.modules[lm.__name__] = lm
    src = git_show(rev, "src/polysent/features/visual.py")
    vis = types.ModuleType(f"_visual_{tag}")
    line, item = "from polysent.features import landmarks as lm", "    landmarks as lm,\n"
    if line in src:
        code = src.replace(line, f"import {lm.__name__} as lm")
    elif item in src:  # imported in a parenthesised list: rebind lm after the module's imports
        code = src.replace(item, "") + f"\nimport {lm.__name__} as lm\n"
    else:
        raise SystemExit(f"{rev}: visual.py does not import landmarks as expected")
    exec(compile(code, f"{rev}:visual.py", "exec"), vis.__dict__)
    return vis


def demo_corpus(out: Path, videos_per_language: int) -> Path:
    exe = Path(sys.executable).with_name("polysent")
    cmd = [str(exe), "demo", "--config", str(ROOT / "config/config.yaml"), "--out", str(out)]
    cmd += ["--set", f"videos_per_language={videos_per_language}", "--workers", "2"]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def videos(corpus: Path) -> dict[str, list]:
    from polysent.features import group_by_video, shard_segments

    segs = shard_segments(corpus / "manifest.parquet", None)
    fixed = [s.__class__(**{**s.__dict__, "video_path": _abs(corpus, s.video_path)}) for s in segs]
    return group_by_video(fixed)


def _abs(corpus: Path, path: str) -> str:
    p = Path(path)
    return str(p if p.is_absolute() or p.is_file() else corpus.parent.parent / p)


def run(fn, cfg: dict, per_video: dict[str, list]) -> tuple[float, dict]:
    """CPU seconds and {segment_id: SegmentFrames} of one pass over every video."""
    c0, out = cpu_seconds(), {}
    for segs in per_video.values():
        frames, failures = fn(cfg, segs[0].video_path, segs)
        assert not failures, failures[:3]
        out |= {f.segment_id: f for f in frames}
    return cpu_seconds() - c0, out


def stacked(result: dict, order: list[str]):
    ok = np.concatenate([result[s].success for s in order])
    feats = np.concatenate([result[s].features for s in order])
    return ok, feats


def box_shift_noise(per_video: dict[str, list], cfg: dict, step: int = 5) -> np.ndarray:
    """|features(detector box moved 2 px) - features(detector box)| on every ``step``-th frame."""
    import dlib

    from polysent.features import landmarks as lm
    from polysent.features.visual import iter_frames

    ex, diffs = lm.LandmarkExtractor(cfg), []
    for segs in per_video.values():
        for k, (_, gray) in enumerate(iter_frames(segs[0].video_path, cfg["fps"], 1e9)):
            found = ex.detect(gray) if k % step == 0 else None
            if found is None:
                continue
            r = found[0]
            base = lm.geometry(ex.landmarks(gray, r), gray.shape[1])
            for dx, dy in ((2, 0), (-2, 0), (0, 2), (0, -2)):
                moved = dlib.rectangle(r.left() + dx, r.top() + dy, r.right() + dx, r.bottom() + dy)
                diffs.append(np.abs(lm.geometry(ex.landmarks(gray, moved), gray.shape[1]) - base))
    return np.array(diffs)


def cutaway_faces(corpus: Path, per_video, result: dict) -> tuple[int, int]:
    """(cutaway frames analysed, of which success = 1) for one result."""
    cut = pd.read_parquet(corpus / "cutaways.parquet")
    timed = cut[cut.time > 0]
    if timed.empty:
        return 0, 0
    video_fps = float((timed.frame / timed.time).median())  # the demo's frame rate
    cut_frames = set(zip(cut.video_id, cut.frame))
    n = hits = 0
    for vid, segs in per_video.items():
        for s in segs:
            f = result[s.segment_id]
            shown = np.round((f.time + s.start) * video_fps).astype(int)
            is_cut = np.array([(vid, int(k)) in cut_frames for k in shown])
            n += int(is_cut.sum())
            hits += int(f.success[is_cut].sum())
    return n, hits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos-per-language", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline-rev", default="989217c", help="git revision of the detect-every-frame baseline")
    ap.add_argument("--corpus", type=Path, help="existing corpus folder (default: synthesize)")
    ap.add_argument("--today-rev", default="8f74411", help="git revision of the box tracker")
    ap.add_argument("--detect-every", type=int, default=10)
    ap.add_argument("--predict-every", type=int, default=5)
    ap.add_argument("--flow-max-error", type=float, default=0.5)
    ap.add_argument("--restart", default="detection", choices=["detection", "tracked_box"])
    ap.add_argument("--decoder", default="bundled", choices=["system", "bundled"])
    args = ap.parse_args()

    from polysent.config import complete
    from polysent.features.visual import landmarks_video

    demo_cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())["visual"]["landmarks"]
    every = args.detect_every
    base_cfg = {k: v for k, v in demo_cfg.items() if k in ("fps", "max_side", "upsample")}
    flow_keys = ("predict_every", "flow_max_error", "flow_window", "decoder", "restart")
    plain = {k: v for k, v in demo_cfg.items() if k not in flow_keys}
    flow_cfg = {
        **demo_cfg,
        "detect_every": every,
        "predict_every": args.predict_every,
        "flow_max_error": args.flow_max_error,
        "restart": args.restart,
        "decoder": args.decoder,
    }
    flow_name = (
        f"flow, detect_every {every}, predict_every {args.predict_every}, "
        f"flow_max_error {args.flow_max_error}, restart {args.restart}, decoder {args.decoder}"
    )
    variants = {
        "baseline": (load_baseline(args.baseline_rev).landmarks_video, base_cfg),
        "detect every frame": (landmarks_video, {**plain, "detect_every": 1}),
        f"today ({args.today_rev}), detect_every {every}": (
            load_baseline(args.today_rev).landmarks_video,
            {**plain, "detect_every": every, "restart": "tracked_box"},
        ),
        flow_name: (landmarks_video, flow_cfg),
    }
    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus or demo_corpus(Path(tmp) / "corpus", args.videos_per_language)
        per_video = videos(corpus)
        order = [s.segment_id for segs in per_video.values() for s in segs]
        for fn, _ in variants.values():  # model load is not part of any variant
            fn.__globals__["lm"]._dlib_models()
        cpu: dict[str, list[float]] = {k: [] for k in variants}
        results: dict[str, dict] = {}
        for _ in range(args.repeat):
            for name, (fn, cfg) in variants.items():
                seconds, results[name] = run(fn, cfg, per_video)
                cpu[name].append(seconds)
        noise = box_shift_noise(per_video, complete(demo_cfg, "visual", "landmarks"))
        cuts = {k: cutaway_faces(corpus, per_video, r) for k, r in results.items()}

    n_frames = sum(len(results["baseline"][s].time) for s in order)
    med = {k: statistics.median(v) for k, v in cpu.items()}
    fps = {k: n_frames / v for k, v in med.items()}
    ok_b, f_b = stacked(results["baseline"], order)
    ok_1, f_1 = stacked(results["detect every frame"], order)
    same = bool((ok_b == ok_1).all() and np.array_equal(f_b, f_1, equal_nan=True))

    load = os.getloadavg()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load avg "
        f"{load[0]:.1f}; python {platform.python_version()}; corpus: {len(per_video)} videos, "
        f"{len(order)} segments, {n_frames} analysed frames at {demo_cfg['fps']} fps"
    )
    print(
        f"command: .venv/bin/python scripts/bench_visual.py --videos-per-language "
        f"{args.videos_per_language} --repeat {args.repeat} --baseline-rev {args.baseline_rev} "
        f"--today-rev {args.today_rev} "
        f"--detect-every {every} --predict-every {args.predict_every} --flow-max-error "
        f"{args.flow_max_error} --restart {args.restart} --decoder {args.decoder}\n"
    )
    print("| variant | CPU s (median) | frames/s per core | vs baseline | faces | cutaway frames with a face |")
    print("|---|---:|---:|---:|---:|---:|")
    for k in variants:
        ok = stacked(results[k], order)[0]
        print(
            f"| {k} | {med[k]:.2f} | {fps[k]:.0f} | {fps[k] / fps['baseline']:.2f}x | "
            f"{int(ok.sum())}/{n_frames} | {cuts[k][1]}/{cuts[k][0]} |"
        )
    print(f"\ndetect-every-frame store identical to the baseline's: {same}")
    print(f"all runs (s): { {k: [round(x, 2) for x in v] for k, v in cpu.items()} }")
    for name in list(variants)[2:]:
        feature_table(name, results, order, noise)


def feature_table(name: str, results: dict, order: list[str], noise: np.ndarray) -> None:
    """|variant - detect every frame| per feature on frames where both found a face."""
    ok_1, f_1 = stacked(results["detect every frame"], order)
    ok_t, f_t = stacked(results[name], order)
    both = ok_1 & ok_t
    diff = np.abs(f_t[both] - f_1[both])
    seg_diff = np.array(
        [
            np.abs(np.nanmean(results[name][s].features, 0) - np.nanmean(results["detect every frame"][s].features, 0))
            for s in order
            if results["detect every frame"][s].success.any()
        ]
    )
    from polysent.features import landmarks as lm

    print(f"\n{name} vs detect every frame: success agreement {(ok_t == ok_1).mean():.4f}\n")
    print("| feature | median abs diff | p99 | max | segment-mean max | 2-px box shift p99 |")
    print("|---|---:|---:|---:|---:|---:|")
    for i, feat in enumerate(lm.FEATURES):
        print(
            f"| {feat} | {np.median(diff[:, i]):.4f} | {np.percentile(diff[:, i], 99):.4f} | "
            f"{diff[:, i].max():.4f} | {seg_diff[:, i].max():.4f} | "
            f"{np.percentile(noise[:, i], 99):.4f} |"
        )
    print(
        f"| all features (worst p99: {lm.FEATURES[int(np.percentile(diff, 99, axis=0).argmax())]}) "
        f"| {np.median(diff):.4f} | {np.percentile(diff, 99, axis=0).max():.4f} | "
        f"{diff.max():.4f} | {seg_diff.max():.4f} | {np.percentile(noise, 99):.4f} |"
    )


if __name__ == "__main__":
    main()
