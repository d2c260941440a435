"""Training data: feature stores -> samples -> padded, masked batches.

A feature store (``results/store/{lang}.parquet``) has one row per segment with word-aligned
``text``/``visual``/``acoustic`` sequences (``list<fixed_size_list<float32>[D]>``, equal length L
per row) and the translation of the segment as a full aligned sample in another language
(``text_tr``/``visual_tr``/``acoustic_tr``, its own length). Feature dimensions are read from the
Arrow types, never assumed.

What an experiment trains and evaluates on (:func:`build_splits`):

* **train**: the ``train`` split of every language in ``exp["train"]``, whole (``1.0``) or a
  few-shot subset (:func:`subset_spec`): ``{count: 230}`` (the paper's "13 %" of ES: 230
  segments; "1 %": 30) or ``{fraction: 0.13}``, counted in ``unit: segments`` (default, as the
  paper's code slices segments) or ``videos`` (all segments of a kept video stay together). The
  subset is taken *after* ``drop_neutral`` (the paper's counts are after filtering), by
  ``draw: random`` (default): drawn with
  ``numpy.random.default_rng([subset_seed, crc32("<lang>:train")])`` across all videos, or by
  ``draw: first``: the first N units in video order (videos by id, segments in time order), as
  the paper's code slices its Spanish list (``train_segments_spanish[:100]``), which keeps few,
  contiguous videos. ``subset_seed`` (default 0) is independent of the initialisation seed, so
  every seed of a row trains on the same segments. A bare number is a fraction with these
  defaults. Whole videos redrawn per seed, with the validation split shrunk alike, is
  ``{fraction: 0.13, unit: videos, subset_seed: null, valid: same}``.
* **valid** (model selection, early stopping): the ``valid`` split of the same languages, whole
  (``valid: whole``, the default: the paper selects on the full Spanish dev split), shrunk by
  the training share (``valid: same``), or limited to the training budget (``valid: budget``:
  at most as many units as the subset kept, e.g. 30 Spanish validation segments for "1 %" —
  a strict few-shot setting; the whole Spanish split has ~7x the 30 training labels).
* **test**: the ``test`` split of ``exp["eval"]`` only. Never used for any decision.
* ``drop_neutral`` removes |y| <= 0.5 from every split (paper §3; per row in Table 1).
* ``transaug`` adds, for every training segment with a translation, the translated sample
  (translated text with the segment's own video/audio re-timed over it) with the same labels.
  Whether or not it is on, every sample carries its translation so NCE can use it as the
  positive pair.

Batches (:func:`batches`) are of segments, or of whole videos for a model over a video's
utterances (``model.batch_unit == "video"``, Multilogue-Net's default axis): videos are packed up
to ``batch_size`` original segments, and the rows say which video sequence they belong to.

Features are standardised per dimension with training statistics (valid words only), so the
25 librosa dimensions (spectral contrast in dB) and the text dimensions train on one scale;
NaN/inf (e.g. a word without a detected face) become the training mean (0 after scaling), and
padding stays exactly 0.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from polysent.config import schema_defaults
from polysent.store import read_store

log = logging.getLogger("polysent.data")

MODALITIES = ("text", "visual", "acoustic")
TR_SUFFIX = "_tr"
NEUTRAL_BAND = 0.5


class DataError(ValueError):
    """A feature store cannot be used for training; the message names the file and segment."""


@dataclass
class Sample:
    segment_id: str
    video_id: str
    lang: str
    split: str
    y: float
    emotions: np.ndarray  # (K,) float32, K may be 0
    feats: dict[str, np.ndarray]  # modality -> (L, D) float32
    tr: dict[str, np.ndarray] | None = None  # translated aligned sample, or None
    tr_lang: str | None = None
    augmented: bool = False

    @property
    def length(self) -> int:
        return int(self.feats["text"].shape[0])


@dataclass
class Splits:
    train: list[Sample]
    valid: list[Sample]
    test: list[Sample]
    dims: dict[str, int]
    emotions: list[str]
    normalizer: dict[str, dict[str, np.ndarray]] | None = None
    report: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------- reading


def _seq_column(col: pa.ChunkedArray, where: str) -> tuple[list[np.ndarray], int]:
    """A ``list<fixed_size_list<float32>[D]>`` column as one (L_i, D) float32 array per row."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if isinstance(arr, pa.ChunkedArray):  # pragma: no cover - combine_chunks of 0 chunks
        arr = pa.concat_arrays(arr.chunks) if arr.num_chunks else pa.array([], col.type)
    if not pa.types.is_list(arr.type) and not pa.types.is_large_list(arr.type):
        raise DataError(f"{where}: expected list<fixed_size_list<float32>[D]>, got {arr.type}")
    inner_type = arr.type.value_type
    if not pa.types.is_fixed_size_list(inner_type):
        raise DataError(f"{where}: expected fixed_size_list items (dimension in the type), got {inner_type}")
    if arr.null_count:
        raise DataError(f"{where}: {arr.null_count} null sequences")
    dim = inner_type.list_size
    offsets = arr.offsets.to_numpy()
    inner = arr.values
    flat = inner.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    flat = flat.reshape(-1, dim) if dim else np.zeros((len(inner), 0), np.float32)
    start = inner.offset if hasattr(inner, "offset") else 0
    rows = [flat[offsets[i] - start : offsets[i + 1] - start] for i in range(len(arr))]
    return rows, dim


def samples_from_table(table: pa.Table, where: str, emotions: list[str] = ()) -> tuple[list[Sample], dict[str, int]]:
    """Samples of a feature-store table (``where`` names it in errors)."""
    path = where
    names = set(table.column_names)
    need = {"segment_id", "video_id", "lang", "split", "sentiment", *MODALITIES}
    missing = sorted(need - names)
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}")
    missing_emo = [e for e in emotions if e not in names]
    if missing_emo:
        raise DataError(f"{path}: emotion label column(s) {missing_emo} not in the store")
    ids = table.column("segment_id").to_pylist()
    seqs, dims = {}, {}
    for m in MODALITIES:
        seqs[m], dims[m] = _seq_column(table.column(m), f"{path}:{m}")
    has_tr = all(f"{m}{TR_SUFFIX}" in names for m in MODALITIES)
    tr_seqs = {}
    if has_tr:
        for m in MODALITIES:
            tr_seqs[m], d = _seq_column(table.column(f"{m}{TR_SUFFIX}"), f"{path}:{m}{TR_SUFFIX}")
            if d != dims[m]:
                raise DataError(f"{path}: {m}{TR_SUFFIX} has dimension {d}, {m} has {dims[m]}")
    tr_lang = table.column("tr_lang").to_pylist() if "tr_lang" in names else [None] * len(ids)
    y = table.column("sentiment").to_numpy(zero_copy_only=False).astype(np.float64)
    emo = (
        np.stack([table.column(e).to_numpy(zero_copy_only=False) for e in emotions], 1).astype(np.float32)
        if emotions
        else np.zeros((len(ids), 0), np.float32)
    )
    video = table.column("video_id").to_pylist()
    lang = table.column("lang").to_pylist()
    split = table.column("split").to_pylist()
    samples = []
    for i, sid in enumerate(ids):
        lengths = {m: seqs[m][i].shape[0] for m in MODALITIES}
        if len(set(lengths.values())) != 1:
            raise DataError(f"{path}: segment {sid} has unequal modality lengths {lengths}")
        if not np.isfinite(y[i]):
            raise DataError(f"{path}: segment {sid} has a non-finite sentiment label")
        tr = None
        if has_tr and tr_seqs["text"][i].shape[0] > 0:
            tr = {m: tr_seqs[m][i] for m in MODALITIES}
            tr_len = {m: tr[m].shape[0] for m in MODALITIES}
            if len(set(tr_len.values())) != 1:
                raise DataError(f"{path}: segment {sid} translation has unequal lengths {tr_len}")
        samples.append(
            Sample(
                segment_id=sid,
                video_id=video[i],
                lang=lang[i],
                split=split[i],
                y=float(y[i]),
                emotions=emo[i],
                feats={m: seqs[m][i] for m in MODALITIES},
                tr=tr,
                tr_lang=tr_lang[i] if tr is not None else None,
            )
        )
    return samples, dims


def samples_from_store(path: str | Path, emotions: list[str] = ()) -> tuple[list[Sample], dict[str, int]]:
    """The samples of one feature store file and its per-modality dimensions, read through
    :func:`polysent.store.read_store` (which checks the contract and names the file)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"feature store {path} does not exist")
    return samples_from_table(read_store(path)[0], str(path), emotions)


class StoreSamples:
    """:func:`samples_from_store` that reads each (store, emotions) once, for the seeds and
    members of one training group (:func:`polysent.train.run_group`), which all build their
    splits from the same stores.

    Every call returns new :class:`Sample` objects with their own ``feats``/``tr`` dicts (the
    splits truncate, standardise or zero them by replacing entries), over feature arrays shared by
    all calls and made read-only, so no split can change what another seed reads.
    """

    def __init__(self):
        self._read: dict = {}

    def __call__(self, path: str | Path, emotions: list[str] = ()) -> tuple[list[Sample], dict[str, int]]:
        key = (str(path), tuple(emotions))
        if key not in self._read:
            samples, dims = samples_from_store(path, emotions)
            for s in samples:
                for array in (s.emotions, *s.feats.values(), *(s.tr or {}).values()):
                    array.flags.writeable = False
            self._read[key] = samples, dims
        samples, dims = self._read[key]
        fresh = [
            dataclasses.replace(s, feats=dict(s.feats), tr=dict(s.tr) if s.tr is not None else None) for s in samples
        ]
        return fresh, dict(dims)


# ---------------------------------------------------------------------------------- selection


def _lang_seed(seed: int, lang: str, what: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(f"{lang}:{what}".encode())])


def sample_videos(samples: list[Sample], fraction: float, seed: int, lang: str, what: str) -> list[Sample]:
    """Keep ``fraction`` of the videos (at least one when fraction > 0), all their segments."""
    if not 0.0 <= fraction <= 1.0:
        raise DataError(f"fraction for {lang} must be within [0, 1], got {fraction}")
    if fraction >= 1.0 or not samples:
        return list(samples)
    videos = sorted({s.video_id for s in samples})
    n = 0 if fraction == 0 else max(1, int(round(fraction * len(videos))))
    return sample_units(samples, "videos", n, seed, lang, what)


UNITS = {"segments": lambda s: s.segment_id, "videos": lambda s: s.video_id}


@functools.lru_cache(maxsize=1)
def subset_defaults() -> dict:
    """Defaults of a few-shot spec's optional keys, read from the experiments schema."""
    from polysent.config import load_schema, schema_dir

    entry = load_schema(schema_dir())["properties"]["experiments"]["additionalProperties"]
    alternatives = entry["properties"]["train"]["additionalProperties"]["oneOf"]
    spec = next(a for a in alternatives if a.get("type") == "object")
    return {k: v["default"] for k, v in spec["properties"].items() if "default" in v}


DRAWS = ("random", "first")


def units_in_video_order(samples: list[Sample], unit: str) -> list[str]:
    """The distinct units of ``samples`` in video order: videos by ``video_id``, a video's
    segments in store (time) order."""
    key = UNITS[unit]
    position = {id(s): i for i, s in enumerate(samples)}
    ordered = sorted(samples, key=lambda s: (s.video_id, position[id(s)]))
    return list(dict.fromkeys(key(s) for s in ordered))


def sample_units(
    samples: list[Sample], unit: str, n: int, seed: int, lang: str, what: str, draw: str = "random"
) -> list[Sample]:
    """Keep ``n`` distinct units (segments or videos), in store order.

    ``draw``: ``random`` — drawn reproducibly from ``seed`` over all units; ``first`` — the first
    ``n`` in video order (:func:`units_in_video_order`), as the paper's code slices its Spanish
    segment list (``train_segments_spanish[:100]``), so the subset covers few, contiguous videos.
    """
    if draw not in DRAWS:
        raise DataError(f"few-shot draw must be one of {list(DRAWS)}, got {draw!r}")
    key = UNITS[unit]
    units = sorted({key(s) for s in samples})  # sorted: the draw does not depend on row order
    if n >= len(units):
        return list(samples)
    if draw == "first":
        keep = set(units_in_video_order(samples, unit)[:n])
    else:
        keep = set(_lang_seed(seed, lang, what).choice(units, size=n, replace=False).tolist())
    return [s for s in samples if key(s) in keep]


VALID_RULES = ("whole", "same", "budget")


def subset_spec(lang: str, value) -> dict:
    """A ``train:`` value as a full few-shot spec (``count`` or ``fraction``, ``unit``, ``draw``,
    ``subset_seed``, ``valid``); a bare number is ``{fraction: value}``."""
    spec = dict(value) if isinstance(value, dict) else {"fraction": value}
    optional = subset_defaults()
    unknown = sorted(set(spec) - {"fraction", "count", *optional})
    if unknown:
        raise DataError(f"train.{lang}: unknown key(s) {unknown}; allowed: fraction, count, {', '.join(optional)}")
    if ("fraction" in spec) == ("count" in spec):
        raise DataError(f"train.{lang}: give exactly one of 'fraction' and 'count', got {value!r}")
    spec = {**optional, **spec}
    if "fraction" in spec and not 0.0 <= float(spec["fraction"]) <= 1.0:
        raise DataError(f"fraction for {lang} must be within [0, 1], got {spec['fraction']}")
    if "count" in spec and (not isinstance(spec["count"], int) or spec["count"] < 0):
        raise DataError(f"train.{lang}.count must be a whole number >= 0, got {spec['count']!r}")
    if spec["unit"] not in UNITS:
        raise DataError(f"train.{lang}.unit must be one of {sorted(UNITS)}, got {spec['unit']!r}")
    if spec["valid"] not in VALID_RULES:
        raise DataError(f"train.{lang}.valid must be one of {list(VALID_RULES)}, got {spec['valid']!r}")
    if spec["draw"] not in DRAWS:
        raise DataError(f"train.{lang}.draw must be one of {list(DRAWS)}, got {spec['draw']!r}")
    return spec


def few_shot_train(pool: list[Sample], spec: dict, seed: int, lang: str) -> tuple[list[Sample], dict]:
    """The training subset of one language and a record of how it was drawn."""
    subset_seed = seed if spec["subset_seed"] is None else int(spec["subset_seed"])
    n_units = len({UNITS[spec["unit"]](s) for s in pool})
    if "count" in spec:
        n = int(spec["count"])
    else:
        frac = float(spec["fraction"])
        n = n_units if frac >= 1.0 else (0 if frac == 0 else max(1, int(round(frac * n_units))))
    kept = sample_units(pool, spec["unit"], n, subset_seed, lang, "train", spec["draw"])
    record = {
        **{k: spec[k] for k in ("fraction", "count") if k in spec},
        "unit": spec["unit"],
        "draw": spec["draw"],
        "subset_seed": subset_seed,
        "valid": spec["valid"],
        "pool_units": n_units,
        "kept_units": min(n, n_units),
        "segments": len(kept),
        "videos": len({s.video_id for s in kept}),
    }
    if n > n_units:
        record["warning"] = (
            f"train.{lang}: count {n} exceeds the {n_units} training {spec['unit']} "
            f"left after filtering; all of them are used"
        )
    return kept, record


def few_shot_valid(pool: list[Sample], spec: dict, record: dict, lang: str) -> list[Sample]:
    """The validation split of a language: ``whole``; shrunk by the training share (``same``);
    or at most as many units as the training subset kept (``budget``: a strict few-shot setting,
    where checkpoint selection may not read more labels of the language than training did).
    ``same`` and ``budget`` draw their units as the training subset (``draw``)."""
    if spec["valid"] == "whole" or not pool:
        return list(pool)
    n_units = len({UNITS[spec["unit"]](s) for s in pool})
    if spec["valid"] == "budget":
        n = record["kept_units"]
    else:
        if "fraction" in spec:  # the same fraction and unit
            share = float(spec["fraction"])
        else:  # a count: the share of the training pool it kept
            share = record["kept_units"] / record["pool_units"] if record["pool_units"] else 0.0
        n = 0 if share == 0 else max(1, int(round(min(share, 1.0) * n_units)))
    return sample_units(pool, spec["unit"], n, record["subset_seed"], lang, "valid", spec["draw"])


def translated_sample(s: Sample) -> Sample:
    """The translation of ``s`` as a training sample of its own (TransAug)."""
    return Sample(
        segment_id=f"{s.segment_id}#tr-{s.tr_lang}",
        video_id=s.video_id,
        lang=s.tr_lang or "tr",
        split=s.split,
        y=s.y,
        emotions=s.emotions,
        feats=dict(s.tr),
        tr=None,
        augmented=True,
    )


def _truncate(s: Sample, max_len: int | None) -> Sample:
    if not max_len:
        return s
    s.feats = {m: x[:max_len] for m, x in s.feats.items()}
    if s.tr is not None:
        s.tr = {m: x[:max_len] for m, x in s.tr.items()}
    return s


def build_splits(
    stores: dict[str, str | Path],
    exp: dict,
    seed: int,
    max_len: int | None = None,
    standardize: bool = True,
    read_samples=samples_from_store,
) -> Splits:
    """Train/valid/test samples of one experiment (see the module docstring).

    ``read_samples(path, emotions)`` reads a store's samples: a :class:`StoreSamples` shares one
    read between the splits of several seeds.
    """
    # Schema defaults only: the few-shot specs are checked below, with messages naming the language.
    exp = {**schema_defaults("experiments", "*"), **exp}
    train_fracs: dict = dict(exp["train"])
    specs = {lang: subset_spec(lang, value) for lang, value in train_fracs.items()}
    eval_lang = exp["eval"]
    emotions = list(exp["emotions"]) if exp["task"] == "emotion" else []
    needed = sorted(set(train_fracs) | {eval_lang})
    missing = [lang for lang in needed if lang not in stores]
    if missing:
        raise DataError(f"no feature store given for language(s) {missing}; have {sorted(stores)}")
    by_lang, dims = {}, None
    for lang in needed:
        samples, d = read_samples(stores[lang], emotions)
        if dims is not None and d != dims:
            raise DataError(f"{stores[lang]}: feature dimensions {d} differ from the other stores' {dims}")
        dims = d
        by_lang[lang] = samples
    report = {"dropped_empty": [], "dropped_neutral": 0}

    def usable(samples: list[Sample]) -> list[Sample]:
        out = []
        for s in samples:
            if s.length == 0:
                report["dropped_empty"].append(s.segment_id)
                continue
            if exp["drop_neutral"] and abs(s.y) <= NEUTRAL_BAND:
                report["dropped_neutral"] += 1
                continue
            out.append(_truncate(s, max_len))
        return out

    train, valid = [], []
    report.update(subsets={}, n_train_by_lang={}, n_valid_by_lang={})
    subset_warnings = []
    for lang, spec in sorted(specs.items()):
        pool = by_lang[lang]
        kept, record = few_shot_train(usable([s for s in pool if s.split == "train"]), spec, seed, lang)
        kept_valid = few_shot_valid(usable([s for s in pool if s.split == "valid"]), spec, record, lang)
        train += kept
        valid += kept_valid
        report["n_train_by_lang"][lang] = len(kept)
        report["n_valid_by_lang"][lang] = len(kept_valid)
        if record["kept_units"] < record["pool_units"] or "warning" in record:
            report["subsets"][lang] = record
        if "warning" in record:
            subset_warnings.append(record["warning"])
            log.warning(record["warning"])
    test = usable([s for s in by_lang[eval_lang] if s.split == "test"])
    if report["dropped_empty"]:
        log.warning(
            "dropped %d segment(s) without words: %s", len(report["dropped_empty"]), report["dropped_empty"][:10]
        )
    setting = f"train={train_fracs}, eval={eval_lang}, drop_neutral={exp['drop_neutral']}"
    if not train:
        raise DataError(f"experiment has no train samples ({setting})")
    report["warnings"] = subset_warnings
    for name, part in (("valid", valid), ("test", test)):
        # A tiny corpus can leave a split empty (e.g. one test video, all neutral): the run
        # still trains and says so, rather than failing a whole DAG (see polysent.train).
        if not part:
            report["warnings"].append(f"no {name} samples ({setting})")
            log.warning("experiment has no %s samples (%s)", name, setting)
    if exp.get("transaug"):
        extra = [translated_sample(s) for s in train if s.tr is not None]
        if not extra:
            raise DataError("transaug is on but no training segment has a translation")
        report["transaug_samples"] = len(extra)
        train = train + extra
    report.update(n_train=len(train), n_valid=len(valid), n_test=len(test))
    splits = Splits(train, valid, test, dims, emotions, report=report)
    if standardize:
        splits.normalizer = fit_normalizer([s for s in train if not s.augmented])
        for part in (train, valid, test):
            for s in part:
                apply_normalizer(s, splits.normalizer)
    else:
        for part in (train, valid, test):
            for s in part:
                _zero_nonfinite(s)
    return splits


# ---------------------------------------------------------------------------- normalisation


def fit_normalizer(samples: list[Sample]) -> dict[str, dict[str, np.ndarray]]:
    """Per-dimension mean/std over the real words of ``samples`` (NaN ignored)."""
    out = {}
    for m in MODALITIES:
        x = np.concatenate([s.feats[m] for s in samples], 0).astype(np.float64)
        with np.errstate(all="ignore"):
            x[~np.isfinite(x)] = np.nan
            mean = np.nanmean(x, 0) if len(x) else np.zeros(x.shape[1])
            std = np.nanstd(x, 0) if len(x) else np.ones(x.shape[1])
        mean = np.nan_to_num(mean, nan=0.0)
        std = np.where(np.isfinite(std) & (std > 1e-6), std, 1.0)
        out[m] = {"mean": mean.astype(np.float32), "std": std.astype(np.float32)}
    return out


def _scale(x: np.ndarray, norm: dict[str, np.ndarray]) -> np.ndarray:
    y = (x - norm["mean"]) / norm["std"]
    y[~np.isfinite(y)] = 0.0
    return y.astype(np.float32)


def apply_normalizer(s: Sample, normalizer: dict) -> None:
    s.feats = {m: _scale(x, normalizer[m]) for m, x in s.feats.items()}
    if s.tr is not None:
        s.tr = {m: _scale(x, normalizer[m]) for m, x in s.tr.items()}


def _zero_nonfinite(s: Sample) -> None:
    for group in (s.feats, s.tr or {}):
        for m, x in group.items():
            if not np.all(np.isfinite(x)):
                group[m] = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


# ------------------------------------------------------------------------------------ batches


def _pad(seqs: list[np.ndarray], length: int, dim: int) -> torch.Tensor:
    out = np.zeros((len(seqs), length, dim), np.float32)
    for i, x in enumerate(seqs):
        out[i, : x.shape[0]] = x
    return torch.from_numpy(out)


def collate(
    samples: list[Sample],
    pad_to: int | None = None,
    translations: bool = True,
    sequences: bool = False,
    second_text: str | None = None,
) -> dict:
    """Post-padded batch: ``text``/``visual``/``acoustic`` (B, L, D), ``mask`` (B, L) 1 = word.

    Always: when a translated sample is itself in the batch (TransAug, see :func:`batches`),
    ``pair_index`` (rows of the originals) and ``pair_rows`` (rows of their translations) point
    at both (empty tensors when there is none), so an objective knows which rows show the same
    video, and one forward pass serves the task loss and the NCE pair.

    With ``translations``, the translations whose sample is not in the batch are batched
    separately (``text_tr``, ..., ``mask_tr``) with ``tr_index`` giving their originals' rows,
    so a model never runs on an empty sequence.

    With ``second_text`` (a language), the batch carries a second text stream, ``text2`` /
    ``mask2`` / ``text2_translated`` (:func:`_second_text_stream`), for a model that reads two
    texts per segment (the paper's two-stream Multilogue-Net).

    With ``sequences`` (batches of whole videos, :func:`batches` with ``unit="video"``) the rows
    also say which video sequence they belong to: ``video_index`` (B,) numbers the sequences in
    order of first appearance and ``video_pos`` (B,) is the row's place in its sequence, rows
    keeping their order. A sequence is one video's segments of one language: a video's TransAug
    translations form a sequence of their own (the video in the other language). Every original
    with a translation then also gets its translation batched separately (``tr_index`` covers
    them all, TransAug or not): an utterance model builds the translated video from them.
    """
    L = max(s.length for s in samples)
    L = max(L, pad_to or 0)
    batch = {m: _pad([s.feats[m] for s in samples], L, samples[0].feats[m].shape[1]) for m in MODALITIES}
    mask = np.zeros((len(samples), L), np.float32)
    for i, s in enumerate(samples):
        mask[i, : s.length] = 1.0
    batch["mask"] = torch.from_numpy(mask)
    batch["y"] = torch.tensor([s.y for s in samples], dtype=torch.float32)
    batch["emotions"] = torch.from_numpy(np.stack([s.emotions for s in samples]).astype(np.float32))
    if sequences:
        batch["video_index"], batch["video_pos"] = _sequence_positions(samples)
    if second_text is not None:
        batch.update(_second_text_stream(samples, second_text))
    # The TransAug pairs of the batch are a property of the batch, not of what an objective asks
    # for: an objective that contrasts rows (NCE inter_tv) must know them even when it needs no
    # separately batched translations, or a row's own translation becomes its negative.
    row_of = {s.segment_id: i for i, s in enumerate(samples)}
    pairs = [
        (i, row_of.get(f"{s.segment_id}#tr-{s.tr_lang}"))
        for i, s in enumerate(samples)
        if s.tr is not None and not s.augmented
    ]
    batch["pair_index"] = torch.tensor([i for i, j in pairs if j is not None], dtype=torch.long)
    batch["pair_rows"] = torch.tensor([j for i, j in pairs if j is not None], dtype=torch.long)
    if not translations:
        return batch
    tr_idx = [i for i, j in pairs if j is None or sequences]
    batch["tr_index"] = torch.tensor(tr_idx, dtype=torch.long)
    if tr_idx:
        trs = [samples[i].tr for i in tr_idx]
        Lt = max(t["text"].shape[0] for t in trs)
        for m in MODALITIES:
            batch[f"{m}{TR_SUFFIX}"] = _pad([t[m] for t in trs], Lt, trs[0][m].shape[1])
        mt = np.zeros((len(trs), Lt), np.float32)
        for j, t in enumerate(trs):
            mt[j, : t["text"].shape[0]] = 1.0
        batch[f"mask{TR_SUFFIX}"] = torch.from_numpy(mt)
    return batch


def _second_text_stream(samples: list[Sample], lang: str) -> dict:
    """The second text of every row, as the paper's two-stream code fed it: a segment in another
    language with a translation into ``lang`` reads that translation (the paper's French rows
    with their Spanish MT), any other segment its own text again (the paper's Spanish rows,
    "text duplicated", and a segment whose translation is missing). ``text2_translated`` (B,)
    says which rows read a translation."""
    texts, translated = [], []
    for s in samples:
        use_tr = s.tr is not None and s.tr_lang == lang and s.lang != lang
        texts.append(s.tr["text"] if use_tr else s.feats["text"])
        translated.append(use_tr)
    L2 = max(t.shape[0] for t in texts)
    mask = np.zeros((len(texts), L2), np.float32)
    for i, t in enumerate(texts):
        mask[i, : t.shape[0]] = 1.0
    return {
        "text2": _pad(texts, L2, texts[0].shape[1]),
        "mask2": torch.from_numpy(mask),
        "text2_translated": torch.tensor(translated, dtype=torch.bool),
    }


def translated_batch(batch: dict) -> dict | None:
    """The separately batched translations of ``batch`` as a model input (None when none)."""
    if f"text{TR_SUFFIX}" not in batch:
        return None
    out = {m: batch[f"{m}{TR_SUFFIX}"] for m in MODALITIES}
    out["mask"] = batch[f"mask{TR_SUFFIX}"]
    return out


def _sequence_positions(samples: list[Sample]) -> tuple[torch.Tensor, torch.Tensor]:
    """``video_index`` and ``video_pos`` of :func:`collate`'s rows."""
    index: dict[tuple, int] = {}
    counts: list[int] = []
    vi, vp = [], []
    for s in samples:
        key = (s.video_id, s.lang, s.augmented)
        k = index.setdefault(key, len(index))
        if k == len(counts):
            counts.append(0)
        vi.append(k)
        vp.append(counts[k])
        counts[k] += 1
    return torch.tensor(vi, dtype=torch.long), torch.tensor(vp, dtype=torch.long)


BATCH_UNITS = ("segment", "video")


def batches(
    samples: list[Sample],
    batch_size: int,
    rng: np.random.Generator | None = None,
    translations: bool = False,
    unit: str = "segment",
    second_text: str | None = None,
):
    """Yield ``(samples, collated batch)``; shuffled with ``rng`` when given (training).

    ``translations`` and ``second_text`` are passed to :func:`collate`.

    ``unit="segment"``: a TransAug sample always lands in the same batch as its original (they
    are shuffled as one unit), so the pair is available to NCE without a second forward pass; a
    batch then holds up to ``batch_size`` originals plus their translations.

    ``unit="video"`` (a model over a video's utterances, ``model.batch_unit``): the unit is a
    whole video with its TransAug translations, its samples in their given order (store order =
    time order). Videos are packed, in (shuffled) order, while the batch holds at most
    ``batch_size`` original segments; a longer video is a batch of its own, never split. The
    batch carries ``video_index``/``video_pos`` (:func:`collate`). Batches follow the units, so
    when a video's samples are not contiguous in ``samples`` the yielded order differs from the
    given one: :func:`in_given_order` restores it.
    """
    if unit not in BATCH_UNITS:
        raise ValueError(f"batch unit must be one of {list(BATCH_UNITS)}, got {unit!r}")
    units: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        if unit == "video":
            key = s.video_id
        else:
            key = s.segment_id.split("#tr-")[0] if s.augmented else s.segment_id
        units.setdefault(key, []).append(i)
    groups = list(units.values())
    order = np.arange(len(groups)) if rng is None else rng.permutation(len(groups))
    if unit == "segment":
        for start in range(0, len(groups), batch_size):
            part = [samples[i] for g in order[start : start + batch_size] for i in groups[g]]
            yield part, collate(part, translations=translations, second_text=second_text)
        return
    for chunk in _pack(groups, order, samples, batch_size):
        part = [samples[i] for g in chunk for i in groups[g]]
        yield part, collate(part, translations=translations, sequences=True, second_text=second_text)


def _pack(groups: list[list[int]], order, samples: list[Sample], batch_size: int):
    """Consecutive runs of ``groups`` (in ``order``) holding at most ``batch_size`` originals each."""
    chunk, size = [], 0
    for g in order:
        n = sum(not samples[i].augmented for i in groups[g])
        if chunk and size + n > batch_size:
            yield chunk
            chunk, size = [], 0
        chunk.append(g)
        size += n
    if chunk:
        yield chunk


def in_given_order(samples: list[Sample], parts: list[list[Sample]], outputs: list[np.ndarray]) -> np.ndarray:
    """Per-batch ``outputs`` (rows of ``parts``, as :func:`batches` yielded them) in ``samples`` order."""
    if not outputs:
        return np.zeros((0,), np.float32)
    stacked = np.concatenate(outputs, 0)
    position = {id(s): i for i, s in enumerate(samples)}
    rows = np.fromiter((position[id(s)] for part in parts for s in part), dtype=np.int64, count=len(stacked))
    out = np.empty_like(stacked)
    out[rows] = stacked
    return out
