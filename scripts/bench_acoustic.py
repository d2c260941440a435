"""Benchmark the acoustic stage side by side on the same demo WAVs; prints a Markdown report.

    .venv/bin/python scripts/bench_acoustic.py --peer-python /tmp/mmsafet-venv/bin/python \
        [--videos 3] [--repeat 3] [--baseline-ref 989217c]

Builds a small demo corpus (``polysent demo``, fr + es, --videos per language) and its media
stage (22 050 Hz WAVs) in a temporary folder, then times, interleaved in one run:

(a) today's per-segment path (``src/polysent/features/acoustic.py`` at --baseline-ref, loaded
    from git) against the new whole-WAV path, both through the stage's entry point on every shard, at
    the paper's HPSS setting and at the demo's setting (no HPSS);
(b) at the MMSA-FET-equivalent setting (``tonnetz_harmonic: false, tonnetz_chroma: cqt,
    chroma_power: 2``; n_fft 2048, hop 512) against MMSA-FET 0.4.1's ``librosaExtractor``
    (features chroma_stft + spectral_contrast + tonnetz, its defaults otherwise) run by
    --peer-python, once on per-segment clips of the WAVs (how MMSA-FET extracts a dataset) and
    once on the whole WAVs.

Times are CPU seconds of the measuring process (BLAS pinned to one thread), medians over
--repeat; every repeat starts with an empty constant-Q filter cache, as a fresh shard job does.
Outputs are compared: same-frame features must be allclose (rtol 1e-4, atol 1e-4); whole-WAV
frames are compared with the same frames of a whole-WAV computation by the other side.
MMSA-FET must live in its own environment (it pins scenedetect==0.5.6.1), never this project's.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"  # per-core numbers: no hidden BLAS/OpenMP threads

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import soundfile as sf  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAPER = {"tonnetz_harmonic": True, "tonnetz_chroma": "cqt"}
DEMO = {"tonnetz_harmonic": False, "tonnetz_chroma": "cqt"}
MMSA = {"tonnetz_harmonic": False, "tonnetz_chroma": "cqt", "chroma_power": 2.0}
TOL = dict(rtol=1e-4, atol=1e-4)

# Runs in the peer's interpreter: MMSA-FET's own extractor, timed per file, features saved.
PEER_CHILD = r"""
import json, logging, os, sys, time
import numpy as np
from MSA_FET.extractors.audio.librosa import librosaExtractor
files, out = dict(json.loads(sys.argv[1])), sys.argv[2]  # {key: path}
cfg = {"tool": "librosa", "sample_rate": 22050, "n_fft": 2048, "hop_length": 512,
       "features": {"chroma_stft": {}, "spectral_contrast": {}, "tonnetz": {}}}
ex = librosaExtractor(json.loads(json.dumps(cfg)), logging.getLogger("mmsa"))
ex.extract(next(iter(files.values())))  # warm-up: imports, numba JIT
feats = {}
t0 = time.process_time()
for key, path in files.items():
    feats[key] = ex.extract(path)
cpu = time.process_time() - t0
np.savez(out, **feats)
import MSA_FET, librosa
print(json.dumps({"cpu_s": cpu, "librosa": librosa.__version__}))
"""


def check_peer(python: str) -> str:
    """The peer's MMSA-FET version, or exit with a message saying how to install it."""
    probe = "import importlib.metadata as m, MSA_FET; print(m.version('MMSA-FET'))"
    try:
        done = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=300, check=False)
    except (FileNotFoundError, PermissionError) as err:
        done = None
        msg = str(err)
    if done is None or done.returncode != 0:
        msg = msg if done is None else " ".join(done.stderr.strip().splitlines()[-1:])
        raise SystemExit(
            f"--peer-python {python!r} cannot import MMSA-FET ({msg}). Install it in a throwaway "
            "venv outside the repository: python3.11 -m venv /tmp/mmsafet-venv && "
            "/tmp/mmsafet-venv/bin/pip install MMSA-FET==0.4.1 scenedetect==0.5.6.1"
        )
    return done.stdout.strip()


def load_today(ref: str, tmp: Path):
    """``polysent.features.acoustic`` as committed at ``ref`` (today's per-segment path)."""
    src = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{ref}:src/polysent/features/acoustic.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = tmp / "acoustic_today.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("acoustic_today", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_corpus(tmp: Path, videos: int) -> tuple[Path, list]:
    from polysent.cli import main as cli_main
    from polysent.media import run_shard

    corpus = tmp / "corpus"
    cli_main(
        ["demo", "--config", str(ROOT / "config/config.yaml"), "--out", str(corpus),
         "--set", f"videos_per_language={videos}"]
    )  # fmt: skip
    manifest = corpus / "manifest.parquet"
    shards = sorted(set(pq.read_table(manifest).column("shard").to_pylist()))
    for shard in shards:
        run_shard(manifest, shard, tmp / f"media/{shard}", tmp / f"qc/media_{shard}.parquet",
                  {"sample_rates": [22050]}, threads=1, progress=False)  # fmt: skip
    return manifest, shards


def run_stage(module, manifest, shards, tmp: Path, cfg: dict, name: str) -> tuple[float, dict]:
    """CPU seconds of the stage's entry point in ``module`` over every shard, and {segment:
    (time, feats)}. A module from an older commit may have the entry point's former name and order."""
    if hasattr(module, "constant_q"):
        module.constant_q.cache_clear()  # a fresh shard job builds its filter bank once
    module._cached_extractor.cache_clear()
    t0 = time.process_time()

    def one(s):
        out, qc = tmp / f"out/{name}_{s}.parquet", tmp / f"out/{name}_{s}.qc.parquet"
        if hasattr(module, "run_shard"):
            return module.run_shard(manifest, s, out, qc, cfg, threads=1, media_dir=tmp / f"media/{s}", progress=False)
        return module.extract_shard(manifest, tmp / f"media/{s}", s, out, qc, cfg, progress=False)

    tables = [one(s) for s in shards]
    cpu = time.process_time() - t0
    out = {}
    for table in tables:
        df = table.to_pandas()
        for seg, g in df.groupby("segment_id", sort=True):
            out[seg] = (g["time"].to_numpy(), g.iloc[:, 2:].to_numpy(np.float32))
    return cpu, out


def segments_and_wavs(manifest, shards, tmp: Path) -> tuple[list[dict], dict[str, str]]:
    from polysent.media import read_index

    segs = pq.read_table(manifest).to_pylist()
    wavs = {}
    for s in shards:
        for r in read_index(tmp / f"media/{s}").to_pylist():
            if int(r["sample_rate"]) == 22050:
                wavs[r["video_id"]] = r["wav"]
    return [s for s in segs if s["video_id"] in wavs], wavs


def cut_clips(segs: list[dict], wavs: dict[str, str], tmp: Path) -> dict[str, str]:
    """Each segment's samples as its own WAV (exact sample copy), as MMSA-FET expects a dataset."""
    clips = {}
    (tmp / "clips").mkdir(exist_ok=True)
    for s in segs:
        info = sf.info(wavs[s["video_id"]])
        i0, i1 = int(round(s["start"] * info.samplerate)), int(round(s["end"] * info.samplerate))
        # int16 in, int16 out: the clip's samples are bit-identical to the stage's (PCM_16 WAVs)
        y, sr = sf.read(wavs[s["video_id"]], start=i0, stop=min(i1, info.frames), dtype="int16")
        path = tmp / "clips" / f"{s['segment_id']}.wav"
        sf.write(path, y, sr, subtype=info.subtype)
        clips[s["segment_id"]] = str(path)
    return clips


def run_peer(python: str, files: dict[str, str], out: Path) -> tuple[float, dict]:
    done = subprocess.run([python, "-c", PEER_CHILD, json.dumps(sorted(files.items())), str(out)],
                          capture_output=True, text=True, env=os.environ)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"MMSA-FET run failed:\n{done.stderr[-3000:]}")
    res = json.loads(done.stdout.strip().splitlines()[-1])
    with np.load(out) as z:
        feats = {k: z[k] for k in z.files}
    return res["cpu_s"], feats


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b))) if a.size else 0.0


def compare_same_frames(ours: dict, ref: dict) -> dict:
    """ours/ref: {segment: (time, feats)}; frames at equal times must be allclose."""
    worst, n, bad = 0.0, 0, 0
    for seg, (t, f) in ours.items():
        rt, rf = ref[seg]
        common, i, j = np.intersect1d(np.round(t, 6), np.round(rt, 6), return_indices=True)
        n += len(common)
        worst = max(worst, max_diff(f[i], rf[j]))
        bad += int((~np.isclose(f[i], rf[j], **TOL)).any(axis=1).sum())
    return {"frames": n, "max_abs_diff": worst, "frames_not_allclose": bad}


def whole_wav_reference(ours: dict, segs: list[dict], whole: dict[str, np.ndarray]) -> dict:
    """Our whole-WAV frames vs the frames at the same WAV position of a whole-WAV computation."""
    ref = {}
    for s in segs:
        if s["segment_id"] not in ours:
            continue
        t, _ = ours[s["segment_id"]]
        k = np.round((t + s["start"]) * 22050 / 512).astype(int)
        ref[s["segment_id"]] = (t, whole[s["video_id"]][k])
    return compare_same_frames(ours, ref)


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer-python", required=True, help="python of a venv with MMSA-FET 0.4.1")
    ap.add_argument("--videos", type=int, default=3, help="demo videos per language (fr, es)")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved runs (median reported)")
    ap.add_argument("--baseline-ref", default="989217c", help="git ref of today's acoustic.py")
    args = ap.parse_args()
    peer_version = check_peer(args.peer_python)

    from polysent.features import acoustic as new

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "out").mkdir()
        today = load_today(args.baseline_ref, tmp)
        manifest, shards = build_corpus(tmp, args.videos)
        segs, wavs = segments_and_wavs(manifest, shards, tmp)
        clips = cut_clips(segs, wavs, tmp)
        audio_s = sum(sf.info(w).duration for w in wavs.values())
        seg_s = sum(s["end"] - s["start"] for s in segs)

        def lib(setting, mode=None):
            cfg = {"backend": "librosa", "librosa": dict(setting)}
            return cfg if mode is None else {**cfg, "mode": mode}

        runs = {
            "paper: today per-segment": (today, lib(PAPER)),
            "paper: new per-segment": (new, lib(PAPER, "per_segment")),
            "paper: new whole-WAV": (new, lib(PAPER, "whole_wav")),
            "demo: today per-segment": (today, lib(DEMO)),
            "demo: new whole-WAV": (new, lib(DEMO, "whole_wav")),
            "mmsa: today per-segment": (today, lib(MMSA)),
            "mmsa: new per-segment": (new, lib(MMSA, "per_segment")),
            "mmsa: new whole-WAV": (new, lib(MMSA, "whole_wav")),
        }
        for module, cfg in {id(m): (m, c) for m, c in runs.values()}.values():
            run_stage(module, manifest, shards[:1], tmp, cfg, "warm")  # imports, numba JIT
        cpu: dict[str, list[float]] = {k: [] for k in [*runs, "mmsa: MMSA-FET per clip",
                                                       "mmsa: MMSA-FET whole WAV"]}  # fmt: skip
        feats: dict[str, dict] = {}
        for rep in range(args.repeat):
            for key, (module, cfg) in runs.items():
                c, feats[key] = run_stage(module, manifest, shards, tmp, cfg, f"r{rep}")
                cpu[key].append(c)
            c, peer_clips = run_peer(args.peer_python, clips, tmp / "peer_clips.npz")
            cpu["mmsa: MMSA-FET per clip"].append(c)
            c, peer_whole = run_peer(args.peer_python, wavs, tmp / "peer_whole.npz")
            cpu["mmsa: MMSA-FET whole WAV"].append(c)

        hop_t = 512 / 22050
        peer_seg = {seg: (np.arange(len(f)) * hop_t, f) for seg, f in peer_clips.items()}
        peer_vid = peer_whole
        checks = {
            "paper: new per-segment = today per-segment": compare_same_frames(
                feats["paper: new per-segment"], feats["paper: today per-segment"]
            ),
            "mmsa: new per-segment = MMSA-FET per clip": compare_same_frames(feats["mmsa: new per-segment"], peer_seg),
            "mmsa: new whole-WAV = MMSA-FET whole WAV (same frames)": whole_wav_reference(
                feats["mmsa: new whole-WAV"], segs, peer_vid
            ),
        }
        frames = {k: sum(len(t) for t, _ in v.values()) for k, v in feats.items()}

    med = {k: median(v) for k, v in cpu.items()}
    load = os.getloadavg()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load avg {load[0]:.1f} at the end; python {platform.python_version()}; "
        f"MMSA-FET {peer_version} in {args.peer_python}"
    )
    print(
        f"command: .venv/bin/python scripts/bench_acoustic.py --peer-python {args.peer_python} "
        f"--videos {args.videos} --repeat {args.repeat} --baseline-ref {args.baseline_ref}"
    )
    print(f"data: {len(wavs)} demo videos, {audio_s:.0f} s of WAV, {len(segs)} segments ({seg_s:.0f} s)\n")
    print("| setting: path | frames | CPU s (median) | all CPU s |")
    print("|---|---:|---:|---|")
    for k, v in cpu.items():
        n = frames.get(k, "")
        print(f"| {k} | {n} | {med[k]:.2f} | {', '.join(f'{x:.2f}' for x in v)} |")
    print("\n| ratio | value |")
    print("|---|---:|")
    ratios = [
        ("(a) MMSA-FET setting: today per-segment / new whole-WAV (target >= 3x)",
         "mmsa: today per-segment", "mmsa: new whole-WAV"),
        ("(a) paper HPSS: today per-segment / new whole-WAV", "paper: today per-segment",
         "paper: new whole-WAV"),
        ("(a) demo setting: today per-segment / new whole-WAV", "demo: today per-segment",
         "demo: new whole-WAV"),
        ("(a) demo default before -> after (paper per-segment / demo whole-WAV)",
         "paper: today per-segment", "demo: new whole-WAV"),
        ("(b) MMSA-FET per clip / new whole-WAV (target >= 1.5x)", "mmsa: MMSA-FET per clip",
         "mmsa: new whole-WAV"),
        ("(b) MMSA-FET whole WAV / new whole-WAV", "mmsa: MMSA-FET whole WAV",
         "mmsa: new whole-WAV"),
        ("(b) MMSA-FET per clip / new per-segment", "mmsa: MMSA-FET per clip",
         "mmsa: new per-segment"),
        ("MMSA-FET setting: today per-segment / new per-segment (same frames, no slicing)",
         "mmsa: today per-segment", "mmsa: new per-segment"),
    ]  # fmt: skip
    for label, num, den in ratios:
        print(f"| {label} | {med[num] / med[den]:.2f}x |")
    print("\n| outputs compared | frames | max abs diff | frames not allclose |")
    print("|---|---:|---:|---:|")
    for k, v in checks.items():
        print(f"| {k} | {v['frames']} | {v['max_abs_diff']:.2e} | {v['frames_not_allclose']} |")
    if any(v["frames_not_allclose"] or not v["frames"] for v in checks.values()):
        sys.exit("outputs differ beyond rtol 1e-4 / atol 1e-4")


if __name__ == "__main__":
    main()
