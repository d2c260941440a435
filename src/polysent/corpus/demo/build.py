"""Build the demo corpus: plan every random draw, render videos in parallel, write the tables.

:func:`plan_corpus` draws everything random (speakers, latents, texts, labels, prosody, pauses)
from generators seeded by ``[seed, stable id]``, so a video's content never depends on how many
other videos there are or on the order of work. :func:`render_video` synthesizes its speech,
writes the WAV and the mp4 (run in a process pool; the face bank is built once and inherited).
Its speech comes from a fresh libespeak-ng state per video (:func:`.speech.video_voice`), its
frames are crops of the speaker's exposure-adjusted, mirrored bank images (:class:`SpeakerBank`),
so a video's bytes depend neither on the worker that renders it nor on the worker count.
:func:`build_demo_corpus` writes

* ``manifest.parquet`` (contract ``MANIFEST``), byte-identical for identical config + seed;
* ``word_truth.parquet`` (contract ``WORDS``): exact word times, seconds from segment start;
* ``demo_truth.parquet``: the latents and generative parameters of each segment;
* ``cutaways.parquet``: the face-less frames of each video (video_id, frame, time).
"""

from __future__ import annotations

import hashlib
import logging
import math
import multiprocessing
import os
import subprocess
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

import polysent
from polysent import contracts, languages
from polysent.corpus.demo import labels as lab, speech, video
from polysent.corpus.demo.face import FaceBank, cutaway_images, neutral_face
from polysent.corpus.demo.text import Concept, choose_concept, load_lexicon, words_of
from polysent.corpus.sharding import shard_of
from polysent.corpus.splits import assign_splits
from polysent.io import atomic_path, write_parquet
from polysent.qc import QCLog

log = logging.getLogger("polysent.corpus.demo")

BACKEND = "demo (synthetic corpus: espeak-ng speech, warped skimage astronaut face)"
ALL_LANGS = languages.codes("demo")  # languages with a lexicon in resources/demo
VOICE_VARIANTS = {"m": ("m1", "m2", "m3", "m4", "m5", "m7"), "f": ("f1", "f2", "f3", "f4", "f5")}


def _key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=4).digest(), "big")


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    """Generator for one named thing (``rng_for(seed, "video", "demo_fr_003")``)."""
    return np.random.default_rng([seed, _key("/".join(map(str, parts)))])


@dataclass
class SegmentPlan:
    segment_id: str
    concept: Concept
    transcript: str
    words: list[str]
    latent: float
    latent_text: float
    latent_audio: float
    latent_visual: float
    text_score: float
    sentiment: float
    emotions: dict[str, float]
    prosody: speech.Prosody
    smile: float  # face expression in [-1, 1] during the segment
    pause_before: float
    silence_after: float
    word_gaps: list[float]
    cutaway: tuple[float, float] | None  # (position in [0, 1] of the segment, duration s)
    translations: dict[str, str] = field(default_factory=dict)


@dataclass
class VideoPlan:
    video_id: str
    lang: str
    speaker: dict
    segments: list[SegmentPlan]
    lead_s: float
    tail_s: float


def check_config(cfg: dict) -> None:
    """Range checks the JSON schema cannot express; the message names the ``corpus.demo`` key."""
    problems = []
    spv = cfg["segments_per_video"]
    if spv["min"] > spv["max"]:
        problems.append(f"segments_per_video: min {spv['min']} > max {spv['max']}")
    for key in ("word_gap_s", "pause_s", "silence_s"):
        lo, hi = cfg["speech"][key]
        if lo > hi:
            problems.append(f"speech.{key}: low {lo} > high {hi}")
    if cfg["cutaway"]["min_s"] > cfg["cutaway"]["max_s"]:
        problems.append(f"cutaway: min_s {cfg['cutaway']['min_s']} > max_s {cfg['cutaway']['max_s']}")
    if abs(sum(cfg["splits"]) - 1.0) > 1e-9:
        problems.append(f"splits: {cfg['splits']} must sum to 1")
    if cfg["face"]["jitter_px"] > cfg["face"]["pad_px"]:
        problems.append(f"face.jitter_px {cfg['face']['jitter_px']} > face.pad_px {cfg['face']['pad_px']}")
    if problems:
        raise ValueError("invalid corpus.demo config: " + "; ".join(problems))


def plan_corpus(cfg: dict, languages: list[str], seed: int, resources_dir: str | os.PathLike) -> list[VideoPlan]:
    """Every random choice of the corpus, cheap and in a fixed order (see module doc)."""
    resources_dir = str(resources_dir)
    check_config(cfg)
    unknown = [lang for lang in languages if lang not in ALL_LANGS]
    if unknown:
        raise ValueError(
            f"the demo corpus has no lexicon for {unknown}; it supports {list(ALL_LANGS)} "
            f"(add resources/demo/<lang>.yaml to extend it)"
        )
    lex = load_lexicon(resources_dir, ALL_LANGS)
    emo_models = lab.load_emotions(resources_dir, cfg["emotions"])
    st = cfg["strengths"]
    sp = cfg["speech"]
    plans = []
    for lang in languages:
        for v in range(cfg["videos_per_language"]):
            vid = f"demo_{lang}_{v:03d}"
            rng = rng_for(seed, "video", vid)
            gender = "f" if rng.random() < 0.5 else "m"
            speaker = {
                "speaker_id": vid,  # one speaker per video, as in MOSEAS monologues
                "gender": gender,
                "voice": f"{lex.voice(lang)}+{VOICE_VARIANTS[gender][rng.integers(len(VOICE_VARIANTS[gender]))]}",
                "pitch": float(rng.normal(58 if gender == "f" else 40, 6)),
                "rate": float(rng.normal(165, 12)),
                "amplitude": float(rng.normal(110, 10)),
                "rest_smile": float(rng.normal(0.05, 0.1)),
                # Visual speaker differences on the one photograph: mirrored or not, exposure.
                "mirrored": bool(rng.random() < 0.5),
                "brightness": float(rng.uniform(0.85, 1.12)),
                "attitude": float(rng.normal(cfg["labels"]["video_mean"], cfg["labels"]["video_sd"])),
            }
            lo, hi = cfg["segments_per_video"]["min"], cfg["segments_per_video"]["max"]
            n_seg = int(rng.integers(lo, hi + 1))
            segments = []
            for s in range(n_seg):
                segments.append(_plan_segment(f"{vid}_{s}", lang, speaker, lex, emo_models, cfg, st, sp, seed))
            plans.append(
                VideoPlan(vid, lang, speaker, segments, float(rng.uniform(0.3, 0.6)), float(rng.uniform(0.3, 0.6)))
            )
    return plans


def _plan_segment(seg_id, lang, speaker, lex, emo_models, cfg, st, sp, seed) -> SegmentPlan:
    rng = rng_for(seed, "segment", seg_id)
    z = lab.segment_latent(rng, speaker["attitude"], cfg["labels"])
    zt = lab.modality_latent(rng, z, st["text"])
    za = lab.modality_latent(rng, z, st["audio"])
    zv = lab.modality_latent(rng, z, st["visual"])
    concept = choose_concept(
        lex, zt, rng, cfg["text"]["neutral_band"], cfg["text"]["temperature"], idiom_share=cfg["text"]["idiom_share"]
    )
    transcript = lex.render(concept, lang)
    words = words_of(transcript)
    sentiment = lab.annotate(rng, z, cfg["labels"]["annotators"], cfg["labels"]["annotator_sd"])
    emotions = lab.emotions(rng, z, emo_models)
    pe = sp["prosody_per_unit"]
    prosody = speech.Prosody(
        voice=speaker["voice"],
        rate=int(np.clip(round(speaker["rate"] + pe["rate"] * za), 80, 450)),
        pitch=int(np.clip(round(speaker["pitch"] + pe["pitch"] * za), 0, 99)),
        amplitude=int(np.clip(round(speaker["amplitude"] + pe["amplitude"] * za), 20, 200)),
    )
    smile = float(np.clip(speaker["rest_smile"] + zv / cfg["face"]["latent_for_full_smile"], -1, 1))
    gaps = [float(rng.uniform(*sp["word_gap_s"])) for _ in words[:-1]]
    silence = float(rng.uniform(*sp["silence_s"])) if rng.random() < sp["silence_prob"] else 0.0
    cut = cfg["cutaway"]
    cutaway = (
        (float(rng.random()), float(rng.uniform(cut["min_s"], cut["max_s"]))) if rng.random() < cut["prob"] else None
    )
    return SegmentPlan(
        segment_id=seg_id,
        concept=concept,
        transcript=transcript,
        words=words,
        latent=z,
        latent_text=zt,
        latent_audio=za,
        latent_visual=zv,
        text_score=lex.score(concept),
        sentiment=sentiment,
        emotions=emotions,
        prosody=prosody,
        smile=smile,
        pause_before=float(rng.uniform(*sp["pause_s"])),
        silence_after=silence,
        word_gaps=gaps,
        cutaway=cutaway,
        translations={lang: lex.render(concept, lang) for lang in ALL_LANGS},
    )


# --- rendering (runs in worker processes) ---------------------------------------------------

_BANK: FaceBank | None = None
_BANK_YUV: BankYuv | None = None
_CUTAWAYS: list[np.ndarray] | None = None


def _init_worker(bank: FaceBank, cutaways: list[np.ndarray]) -> None:
    global _BANK, _BANK_YUV, _CUTAWAYS
    _BANK, _BANK_YUV, _CUTAWAYS = bank, BankYuv(bank), cutaways


def render_video(plan: VideoPlan, media_dir: str, cfg: dict, seed: int) -> dict:
    """Synthesize, write ``{media_dir}/{lang}/{video_id}.wav`` and ``.mp4``; return the timeline."""
    bank, cutaway_imgs = _BANK, _CUTAWAYS
    assert bank is not None and cutaway_imgs is not None, "worker not initialised with the face bank"
    sr = speech.SAMPLE_RATE
    sp = cfg["speech"]
    fps = cfg["fps"]
    say = speech.video_voice(plan.speaker["voice"])  # a fresh synthesizer state per video
    pieces: list[np.ndarray] = []
    pos = int(round(plan.lead_s * sr))
    pieces.append(np.zeros(pos, dtype=np.float32))
    seg_rows, word_rows, seg_times, word_times, cut_intervals = [], [], [], [], []
    margin = int(round(sp["margin_s"] * sr))
    for seg in plan.segments:
        pause = int(round(seg.pause_before * sr))
        pieces.append(np.zeros(pause, dtype=np.float32))
        pos += pause
        spans = []
        for i, word in enumerate(seg.words):
            x = say(word, seg.prosody)
            spans.append((pos, pos + len(x)))
            pieces.append(x)
            pos += len(x)
            if i < len(seg.words) - 1:
                gap = int(round(seg.word_gaps[i] * sr))
                pieces.append(np.zeros(gap, dtype=np.float32))
                pos += gap
        seg_start = spans[0][0] - margin
        seg_end = spans[-1][1] + margin
        tail = margin + int(round(seg.silence_after * sr))
        pieces.append(np.zeros(tail, dtype=np.float32))
        pos += tail
        start_s, end_s = seg_start / sr, seg_end / sr
        seg_rows.append({"segment_id": seg.segment_id, "start": start_s, "end": end_s})
        for k, (a, b) in enumerate(spans):
            word_rows.append(
                {"segment_id": seg.segment_id, "word_idx": k, "word": seg.words[k],
                 "start": (a - seg_start) / sr, "end": (b - seg_start) / sr}
            )  # fmt: skip
            word_times.append((a / sr, b / sr))
        seg_times.append((start_s, end_s, seg.smile))
        if seg.cutaway is not None:
            where, dur = seg.cutaway
            dur = min(dur, 0.6 * (end_s - start_s))
            c0 = start_s + where * (end_s - start_s - dur)
            cut_intervals.append((c0, c0 + dur))
    tail = int(round(plan.tail_s * sr))
    pieces.append(np.zeros(tail, dtype=np.float32))
    track = np.concatenate(pieces)
    rng = rng_for(seed, "render", plan.video_id)
    track = speech.add_noise(track, rng, sp["snr_db"])
    duration = len(track) / sr
    n_frames = int(math.ceil(duration * fps))

    out_dir = Path(media_dir) / plan.lang
    out_dir.mkdir(parents=True, exist_ok=True)
    wav_path = out_dir / f"{plan.video_id}.wav"
    mp4_path = out_dir / f"{plan.video_id}.mp4"
    with atomic_path(wav_path, suffix=".wav") as tmp:
        speech.write_wav(tmp, track, sr)

    sched = video.frame_schedule(
        rng, bank, n_frames, fps, seg_times, word_times, cut_intervals, plan.speaker["rest_smile"], cfg["face"]
    )
    cut_img = cutaway_imgs[int(rng.integers(len(cutaway_imgs)))]

    speaker_bank = SpeakerBank(bank, plan.speaker["brightness"], plan.speaker["mirrored"], _BANK_YUV)
    cut_frame = _cutaway_frame(cut_img)
    heard = speech.to_int16(track).astype(np.float32) / 32768.0  # the WAV's samples, as AAC

    with atomic_path(mp4_path, suffix=".mp4") as tmp:
        writer = video.Mp4Writer(tmp, bank.size, fps, heard, sr, crf=cfg["crf"])
        try:
            for i in range(n_frames):
                if sched.cutaway[i]:
                    writer.write_frame(cut_frame)
                else:
                    writer.write_frame(
                        speaker_bank.frame_i420(sched.smile_i[i], sched.blink_i[i], sched.mouth_i[i], sched.roll_i[i], sched.dx[i], sched.dy[i])
                    )  # fmt: skip
        finally:
            writer.close()

    t = np.arange(n_frames) / fps
    per_seg = []
    for (start_s, end_s, _), row in zip(seg_times, seg_rows):
        inside = (t >= start_s) & (t < end_s)
        per_seg.append(
            {
                "segment_id": row["segment_id"],
                "n_frames": int(inside.sum()),
                "n_cutaway_frames": int((inside & sched.cutaway).sum()),
                "smile_shown": float(sched.smile[inside & ~sched.cutaway].mean()) if (inside & ~sched.cutaway).any() else float("nan"),
            }
        )  # fmt: skip
    cut_frames = np.flatnonzero(sched.cutaway)
    return {
        "video_id": plan.video_id,
        "segments": seg_rows,
        "words": word_rows,
        "per_segment": per_seg,
        "duration": duration,
        "n_frames": n_frames,
        "cutaway_frames": cut_frames.tolist(),
        "video_path": str(mp4_path),
        "audio_path": str(wav_path),
    }


class SpeakerBank:
    """The face bank as one speaker shows it: exposure (a LUT) and mirroring, per bank image once.

    The previous renderer applied the LUT and the flip to every frame; here each bank image a
    video uses is converted the first time it is needed (a video uses a few dozen of the bank's
    images for hundreds of frames) and every frame is a crop of it. The frames are the same
    pixels: the crop of the mirrored padded image starts at ``pad - dx`` instead of ``pad + dx``.

    :meth:`frame_i420` is what the renderer encodes: the same crop from the bank image's YUV
    planes (:class:`BankYuv`, converted once per worker, not per video), the exposure applied as
    the same gain in YUV (luma about black 16, chroma about neutral 128: RGB ``× brightness`` is
    exactly that, up to rounding and where RGB would clip at 255).
    """

    def __init__(self, bank: FaceBank, brightness: float, mirrored: bool, yuv: BankYuv | None = None):
        self.bank = bank
        self.lut = np.clip(np.rint(np.arange(256) * brightness), 0, 255).astype(np.uint8)
        levels = np.arange(256, dtype=np.float64)
        self.lut_luma = np.clip(np.rint(16 + brightness * (levels - 16)), 0, 255).astype(np.uint8)
        self.lut_chroma = np.clip(np.rint(128 + brightness * (levels - 128)), 0, 255).astype(np.uint8)
        self.mirrored = mirrored
        self.yuv = yuv if yuv is not None else BankYuv(bank)
        self._images: dict[tuple[int, int, int, int], np.ndarray] = {}
        self._luma: dict[tuple[int, int, int, int], np.ndarray] = {}
        self._chroma: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._last_key: tuple | None = None
        self._last_frame = None

    def image(self, smile_i: int, blink_i: int, mouth_i: int, roll_i: int) -> np.ndarray:
        key = (int(smile_i), int(blink_i), int(mouth_i), int(roll_i))
        img = self._images.get(key)
        if img is None:
            img = self.bank.images[key]
            img = self.lut[img[:, ::-1] if self.mirrored else img]
            self._images[key] = img
        return img

    def frame(self, smile_i: int, blink_i: int, mouth_i: int, roll_i: int, dx: int, dy: int) -> np.ndarray:
        p, size = self.bank.pad, self.bank.size
        x0 = p - dx if self.mirrored else p + dx
        return self.image(smile_i, blink_i, mouth_i, roll_i)[p + dy : p + dy + size, x0 : x0 + size]

    def frame_i420(self, smile_i: int, blink_i: int, mouth_i: int, roll_i: int, dx: int, dy: int):
        """:meth:`frame` as an I420 ``av.VideoFrame`` (see the class doc); a frame equal to the
        previous one is the same object (the encoder copies what it is given)."""
        key = (int(smile_i), int(blink_i), int(mouth_i), int(roll_i), int(dx), int(dy))
        if key == self._last_key:
            return self._last_frame
        p, size, half = self.bank.pad, self.bank.size, self.bank.size // 2
        y0 = p + dy
        x0 = p - dx if self.mirrored else p + dx
        image = key[:4]
        luma = self._luma.get(image)
        if luma is None:
            luma = self._luma[image] = self.lut_luma[self.yuv.luma(image, self.mirrored)]
        phase = (image, y0 % 2, x0 % 2)
        chroma = self._chroma.get(phase)
        if chroma is None:
            u, v = self.yuv.chroma(image, self.mirrored, y0 % 2, x0 % 2)
            chroma = self._chroma[phase] = (self.lut_chroma[u], self.lut_chroma[v])
        cy, cx = y0 // 2, x0 // 2
        u, v = chroma
        frame = video.yuv_frame(
            luma[y0 : y0 + size, x0 : x0 + size], u[cy : cy + half, cx : cx + half], v[cy : cy + half, cx : cx + half]
        )
        self._last_key, self._last_frame = key, frame
        return frame


class BankYuv:
    """The face bank's images in YUV: luma, and 4:2:0 chroma per phase and orientation, on demand.

    A pure function of the bank, so one per worker process serves every video it renders (a
    bank image is converted at most once per worker instead of once per video that shows it).
    """

    def __init__(self, bank: FaceBank):
        self.bank = bank
        self._planes: dict[tuple[int, int, int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._chroma: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def _yuv(self, image: tuple[int, int, int, int]):
        planes = self._planes.get(image)
        if planes is None:
            planes = self._planes[image] = video.rgb_to_yuv(self.bank.images[image])
        return planes

    def luma(self, image: tuple[int, int, int, int], mirrored: bool) -> np.ndarray:
        luma = self._yuv(image)[0]
        return luma[:, ::-1] if mirrored else luma

    def chroma(
        self, image: tuple[int, int, int, int], mirrored: bool, py: int, px: int
    ) -> tuple[np.ndarray, np.ndarray]:
        key = (image, mirrored, py, px)
        out = self._chroma.get(key)
        if out is None:
            _, u, v = self._yuv(image)
            if mirrored:
                u, v = u[:, ::-1], v[:, ::-1]
            out = self._chroma[key] = (video.subsample_chroma(u, py, px), video.subsample_chroma(v, py, px))
        return out


def _cutaway_frame(rgb: np.ndarray):
    luma, u, v = video.rgb_to_yuv(rgb)
    return video.yuv_frame(luma, video.subsample_chroma(u, 0, 0), video.subsample_chroma(v, 0, 0))


def _render_star(args):
    return render_video(*args)


# --- assembly ---------------------------------------------------------------------------------


def build_demo_corpus(
    cfg: dict,
    languages: list[str],
    seed: int,
    shards: int,
    resources_dir: str | os.PathLike,
    manifest_path: str | os.PathLike,
    word_truth_path: str | os.PathLike,
    truth_path: str | os.PathLike,
    cutaways_path: str | os.PathLike,
    media_dir: str | os.PathLike,
    qc_path: str | os.PathLike | None = None,
    workers: int = 1,
) -> pa.Table:
    """Synthesize the whole demo corpus and write its four tables; return the manifest."""
    from threadpoolctl import threadpool_limits

    # One BLAS thread per process: the renderers are already one process per core, and on a
    # busy 2-core machine OpenBLAS's spinning helper threads made the face bank's small solves
    # (Delaunay transforms) cost up to 0.9 CPU s a map instead of ~15 ms. Forked workers inherit it.
    with threadpool_limits(limits=1):
        return _build(
            cfg, languages, seed, shards, resources_dir, manifest_path, word_truth_path, truth_path,
            cutaways_path, media_dir, qc_path, workers,
        )  # fmt: skip


def _build(cfg, languages, seed, shards, resources_dir, manifest_path, word_truth_path, truth_path,
           cutaways_path, media_dir, qc_path, workers) -> pa.Table:  # fmt: skip
    face = cfg["face"]
    bank_args = (cfg["frame_size"], face["pad_px"], face["smile_levels"], tuple(face["roll_degrees"]))
    ctx = multiprocessing.get_context("fork")  # workers inherit the bank instead of unpickling it
    if workers > 1:
        # The serial start overlapped: one worker loads dlib and finds the neutral face, another
        # prepares the cutaway pictures, while this process plans the corpus; then the pool
        # warps the bank's smile levels.
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            neutral = None if FaceBank.is_cached(*bank_args) else pool.submit(neutral_face, *bank_args[:2])
            cut_future = pool.submit(cutaway_images, cfg["frame_size"])
            plans = _plan_and_log(cfg, languages, seed, resources_dir)
            bank = FaceBank.cached(*bank_args, map_fn=pool.map, neutral=neutral.result if neutral else None)
            cut_imgs = cut_future.result()
    else:
        plans = _plan_and_log(cfg, languages, seed, resources_dir)
        bank = FaceBank.cached(*bank_args)
        cut_imgs = cutaway_images(cfg["frame_size"])
    log.info("face bank: %s frames", bank.images.shape[:4])
    media_dir = str(media_dir)
    jobs = [(p, media_dir, cfg, seed) for p in plans]
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(bank, cut_imgs)) as pool:
            results = list(pool.map(_render_star, jobs, chunksize=1))
    else:
        _init_worker(bank, cut_imgs)
        try:
            results = [_render_star(j) for j in jobs]
        finally:
            speech.close_server()  # pool workers' servers end with their worker (end of stdin)
    log.info("rendered %d videos", len(results))
    manifest = _write_tables(
        plans, results, cfg, seed, shards, manifest_path, word_truth_path, truth_path, cutaways_path
    )
    if qc_path is not None:
        # The synthesizer loses nothing (a failure is an error in our own data and raises), but
        # every stage writes its QC file so the summary can count it.
        QCLog("corpus").write(qc_path)
    return manifest


def _plan_and_log(cfg, languages, seed, resources_dir) -> list[VideoPlan]:
    plans = plan_corpus(cfg, languages, seed, resources_dir)
    n_seg = sum(len(p.segments) for p in plans)
    log.info("demo corpus: %d videos, %d segments, languages %s", len(plans), n_seg, languages)
    return plans


def _provenance(cfg: dict, seed: int, shards: int, languages_seen: list[str]) -> dict:
    return {
        "backend": BACKEND,
        "stage": "corpus",
        "source": "demo",
        "polysent": polysent.__version__,
        "espeak_ng": _tool_version(["espeak-ng", "--version"]),
        "encoder": video.pyav_version(),
        "seed": seed,
        "shards": shards,
        "languages": languages_seen,
        "parameters": cfg,
    }


def _tool_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    except OSError:
        return "missing"
    return out.splitlines()[0].strip() if out else "unknown"


def video_splits(plans: list[VideoPlan], seed: int, fractions) -> dict[str, str]:
    """train/valid/test per video, drawn per language (a video never straddles two splits)."""
    splits: dict[str, str] = {}
    for lang in sorted({p.lang for p in plans}):
        ids = [p.video_id for p in plans if p.lang == lang]
        splits.update(assign_splits(ids, seed, fractions, group=lang))
    return splits


def _write_tables(plans, results, cfg, seed, shards, manifest_path, word_truth_path, truth_path, cutaways_path):
    emo = list(cfg["emotions"])
    splits = video_splits(plans, seed, cfg["splits"])
    m = {k: [] for k in contracts.MANIFEST.required}
    m.update({e: [] for e in emo})
    truth = {k: [] for k in TRUTH_COLUMNS}
    words = {k: [] for k in contracts.WORDS.required}
    cuts = {"video_id": [], "frame": [], "time": []}
    st = cfg["strengths"]
    for plan, res in zip(plans, results):
        assert plan.video_id == res["video_id"]
        shard = shard_of(plan.video_id, shards)
        for seg, row, per in zip(plan.segments, res["segments"], res["per_segment"]):
            m["segment_id"].append(seg.segment_id)
            m["video_id"].append(plan.video_id)
            m["lang"].append(plan.lang)
            m["split"].append(splits[plan.video_id])
            m["start"].append(row["start"])
            m["end"].append(row["end"])
            m["transcript"].append(seg.transcript)
            m["sentiment"].append(seg.sentiment)
            m["video_path"].append(res["video_path"])
            m["audio_path"].append(res["audio_path"])
            m["shard"].append(shard)
            for e in emo:
                m[e].append(seg.emotions[e])
            t = truth
            t["segment_id"].append(seg.segment_id)
            t["video_id"].append(plan.video_id)
            t["lang"].append(plan.lang)
            t["speaker_gender"].append(plan.speaker["gender"])
            t["voice"].append(seg.prosody.voice)
            t["mirrored"].append(plan.speaker["mirrored"])
            t["brightness"].append(plan.speaker["brightness"])
            t["latent_sentiment"].append(seg.latent)
            t["latent_text"].append(seg.latent_text)
            t["latent_audio"].append(seg.latent_audio)
            t["latent_visual"].append(seg.latent_visual)
            t["strength_text"].append(st["text"])
            t["strength_audio"].append(st["audio"])
            t["strength_visual"].append(st["visual"])
            t["text_score"].append(seg.text_score)
            t["concept"].append(seg.concept.key)
            t["neutral_text"].append(not seg.concept.adjective)
            t["smile"].append(seg.smile)
            t["smile_shown"].append(per["smile_shown"])
            t["pitch"].append(seg.prosody.pitch)
            t["rate"].append(seg.prosody.rate)
            t["amplitude"].append(seg.prosody.amplitude)
            t["n_frames"].append(per["n_frames"])
            t["n_cutaway_frames"].append(per["n_cutaway_frames"])
            for lang in ALL_LANGS:
                t[f"text_{lang}"].append(seg.translations[lang])
        for w in res["words"]:
            for k in contracts.WORDS.required:
                words[k].append(w[k])
        for f in res["cutaway_frames"]:
            cuts["video_id"].append(plan.video_id)
            cuts["frame"].append(f)
            cuts["time"].append(f / cfg["fps"])

    manifest = pa.Table.from_pydict(m, schema=contracts.manifest_schema(emo))
    contracts.check(manifest, contracts.MANIFEST, where=str(manifest_path))
    word_table = pa.Table.from_pydict(words, schema=pa.schema(list(contracts.WORDS.required.items())))
    contracts.check(word_table, contracts.WORDS, where=str(word_truth_path))
    truth_table = pa.Table.from_pydict(truth, schema=TRUTH_SCHEMA)
    cut_table = pa.Table.from_pydict(
        cuts, schema=pa.schema([("video_id", pa.string()), ("frame", pa.int32()), ("time", pa.float64())])
    )
    prov = _provenance(cfg, seed, shards, sorted(set(m["lang"])))
    write_parquet(manifest_path, manifest, provenance=prov)
    write_parquet(
        word_truth_path, word_table, provenance={**prov, "table": "word_truth", "times": "seconds from segment start"}
    )
    write_parquet(truth_path, truth_table, provenance={**prov, "table": "demo_truth"})
    write_parquet(cutaways_path, cut_table, provenance={**prov, "table": "cutaways", "fps": cfg["fps"]})
    return manifest


TRUTH_SCHEMA = pa.schema(
    [
        ("segment_id", pa.string()),
        ("video_id", pa.string()),
        ("lang", pa.string()),
        ("speaker_gender", pa.string()),
        ("voice", pa.string()),
        ("mirrored", pa.bool_()),
        ("brightness", pa.float32()),
        ("latent_sentiment", pa.float32()),
        ("latent_text", pa.float32()),
        ("latent_audio", pa.float32()),
        ("latent_visual", pa.float32()),
        ("strength_text", pa.float32()),
        ("strength_audio", pa.float32()),
        ("strength_visual", pa.float32()),
        ("text_score", pa.float32()),
        ("concept", pa.string()),
        ("neutral_text", pa.bool_()),
        ("smile", pa.float32()),
        ("smile_shown", pa.float32()),
        ("pitch", pa.int32()),
        ("rate", pa.int32()),
        ("amplitude", pa.int32()),
        ("n_frames", pa.int32()),
        ("n_cutaway_frames", pa.int32()),
    ]
    + [(f"text_{lang}", pa.string()) for lang in ALL_LANGS]
)
TRUTH_COLUMNS = TRUTH_SCHEMA.names
