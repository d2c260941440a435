"""Self-contained model bundles: a trained run that can be used without its config or results.

A bundle is one folder (``polysent bundle --run results/runs/{exp}/seed{n} --store LANG=PATH``
writes ``<run>/bundle/`` by default):

* ``weights.safetensors`` — the selected weights and the training normaliser (per-modality
  mean/std of the training words), tensors only (``model.`` / ``normalizer.`` names, as a run's
  ``model.safetensors``, :mod:`polysent.checkpoint`);
* ``bundle.json`` — model name, kwargs and output size; task and labels; feature dimensions and
  names; how samples are prepared (``max_len``, ``standardize``, evaluation batch size); the
  **feature settings** of every training/evaluation store (see :func:`feature_settings`); the
  training record (experiment entry, seed, selected epoch, metrics) and the SHA-256 of
  ``weights.safetensors`` and of each store file.

:func:`load_bundle` rebuilds the model from the folder alone and predicts store rows the way
training evaluated them (same truncation, normaliser and batching), so its predictions on a
training store equal the run's ``predictions.parquet``.

:func:`check_features` compares the feature settings of new features with the bundle's before
anything is predicted: another backend, dimension, feature name, extractor parameter or a
stand-in where training had the real tool (or the reverse) is an error naming every differing
key with both values, unless ``allow_mismatch=True``, which returns the differences so the
caller can record them. Tool *version* differences are returned as notes and never refuse.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from polysent import checkpoint, contracts, io, ood
from polysent.cliargs import key_values
from polysent.data import MODALITIES, Sample, apply_normalizer, batches, in_given_order, samples_from_table
from polysent.filehash import sha256_file
from polysent.jsonclean import json_clean
from polysent.numeric import sigmoid

log = logging.getLogger("polysent.bundle")

FORMAT = "polysent-bundle"
VERSION = 2  # 2: weights in safetensors (1: weights.pt)
BUNDLE_JSON = "bundle.json"
WEIGHTS = "weights.safetensors"
# Feature stages whose settings decide what a model's inputs mean (translation stages only
# feed training-time augmentation and NCE, never a prediction).
FEATURE_STAGES = ("align", "acoustic", "visual", "text")
# Per-file facts that differ between shards of one stage without changing the features.
PER_FILE_KEYS = ("shard", "input", "resampled_from", "oov_rate")
# Keys that describe the data, not the feature settings (a model may be applied to another language).
DATA_KEYS = ("lang",)


class BundleError(ValueError):
    """A bundle cannot be made, read or used; the message names the file or key."""


@dataclass(frozen=True)
class Difference:
    """One feature setting that differs between the bundle and new features."""

    key: str  # dotted path, e.g. "acoustic.params.n_fft"
    bundle: object
    new: object
    severity: str = "error"  # "error" (refused unless allowed) or "note" (tool versions)

    def __str__(self) -> str:
        return f"{self.key}: bundle {_short(self.bundle)}, new {_short(self.new)}"

    def as_dict(self) -> dict:
        return {"key": self.key, "bundle": self.bundle, "new": self.new, "severity": self.severity}


class FeatureMismatch(BundleError):
    """New features were not made the way the bundle's training features were."""

    def __init__(self, differences: list[Difference], reference: str):
        self.differences = differences
        errors = [d for d in differences if d.severity == "error"]
        lines = "\n  ".join(str(d) for d in errors)
        super().__init__(
            f"features differ from the bundle's training features ({reference}) in {len(errors)} "
            f"setting(s):\n  {lines}\nre-extract them with the bundle's settings, or allow the "
            "mismatch (allow_mismatch=True / --allow-feature-mismatch) to record it instead"
        )


def _short(value, limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------------------- feature settings


def _merge_stage(stage: str, files: dict[str, dict], where: str) -> dict:
    """One settings dict for a stage written as several files (shards) that must agree."""
    merged = None
    for path, prov in sorted(files.items()):
        settings = {k: v for k, v in (prov or {}).items() if k not in PER_FILE_KEYS}
        if merged is None:
            merged, first = settings, path
            continue
        diffs = _diff(merged, settings, stage)
        if diffs:
            raise BundleError(
                f"{where}: the {stage} files it was built from disagree ({first} vs {path}): "
                + "; ".join(str(d) for d in diffs)
            )
    return merged or {}


def feature_settings(store_meta: dict, where: str = "<store>") -> dict:
    """The settings that define a store's features, by stage, from its Parquet metadata.

    ``store_meta`` is the ``polysent`` metadata of a feature store (:func:`polysent.store.read_store`).
    Returns ``{"store": {dims, feature_names, params}, "align": {...}, "acoustic": {...},
    "visual": {...}, "text": {...}}``; a stage's settings are its files' provenance (backend,
    parameters, feature names, tool versions, stand-in notes) without per-shard facts. A store
    without metadata (e.g. written by hand) gives ``{}``: nothing is known about it.
    """
    if not store_meta:
        return {}
    out = {"store": {k: store_meta.get(k) for k in ("dims", "feature_names", "params")}}
    inputs = store_meta.get("inputs") or {}
    for stage in FEATURE_STAGES:
        out[stage] = _merge_stage(stage, inputs.get(stage) or {}, where)
    return json.loads(json.dumps(out, sort_keys=True, default=str))  # plain JSON values


def _flatten(obj, prefix: str = "") -> dict[str, object]:
    if isinstance(obj, dict) and obj:
        out = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def _ignored(key: str) -> bool:
    parts = key.split(".")
    return len(parts) >= 2 and parts[1] in DATA_KEYS


def _diff(reference: dict, new: dict, prefix: str = "") -> list[Difference]:
    ref_flat, new_flat = _flatten(reference, prefix), _flatten(new, prefix)
    out = []
    for key in sorted(set(ref_flat) | set(new_flat)):
        a, b = ref_flat.get(key), new_flat.get(key)
        if a == b or _ignored(key):
            continue
        severity = "note" if ".versions" in f".{key}" or key.endswith("versions") else "error"
        out.append(Difference(key, a, b, severity))
    return out


# ------------------------------------------------------------------------------ making one


def _store_meta(path: Path) -> tuple[dict, int]:
    """Provenance and row count of a feature store whose schema honours its contract (no data read)."""
    contracts.check_schema(io.read_schema(path), contracts.FEATURE_STORE, str(path))
    meta = io.read_provenance(path)
    return meta, pq.ParquetFile(path).metadata.num_rows


def _replace_dir(tmp: Path, target: Path) -> None:
    """Put the finished folder ``tmp`` at ``target`` (an older bundle there is replaced)."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old)


def make_bundle(
    run_dir: str | os.PathLike, stores: dict[str, str | os.PathLike], out: str | os.PathLike | None = None
) -> Path:
    """Write the bundle of a finished run (``model.safetensors`` + ``model.json`` + ``metrics.json``)
    trained on ``stores``.

    ``stores`` maps each language of the experiment (training and evaluation) to the feature
    store it used; their metadata gives the feature settings and names. Returns the folder.
    """
    run_dir = Path(run_dir)
    try:
        ckpt = checkpoint.read_checkpoint(run_dir)
    except checkpoint.CheckpointError as exc:
        raise BundleError(str(exc)) from None
    spec = ckpt.spec
    inputs = spec["inputs"]
    exp = spec["experiment"]
    langs = sorted(set(exp["train"]) | {exp["eval"]})
    missing = [lang for lang in langs if lang not in stores]
    if missing:
        raise BundleError(
            f"{run_dir}: no store given for language(s) {missing} of the experiment "
            f"(train {sorted(exp['train'])}, eval {exp['eval']})"
        )
    metrics_path = run_dir / "metrics.json"
    metrics = contracts.read_metrics(metrics_path) if metrics_path.exists() else {}
    provenance, store_files, names = {}, {}, None
    for lang in langs:
        path = Path(stores[lang])
        if not path.exists():
            raise BundleError(f"store for {lang}: {path} does not exist")
        meta, rows = _store_meta(path)
        dims = meta.get("dims")
        if dims is not None and {m: dims[m] for m in MODALITIES} != spec["dims"]:
            raise BundleError(f"{path}: feature dimensions {dims} differ from the model's {spec['dims']}")
        if not meta:
            log.warning("%s has no provenance metadata: the bundle cannot check features against it", path)
        provenance[lang] = feature_settings(meta, str(path))
        store_files[lang] = {"file": path.name, "sha256": sha256_file(path), "rows": rows}
        if lang == exp["eval"] or names is None:
            names = meta.get("feature_names")
    weights = checkpoint.weights_bytes(checkpoint.tensor_map(ckpt.state_dict, normalizer=ckpt.normalizer))
    description = {
        "format": FORMAT,
        "version": VERSION,
        "model": {"name": spec["model"], "kwargs": spec["kwargs"], "n_out": spec["n_out"]},
        "task": spec["task"],
        "labels": {
            "emotions": list(spec["emotions"]),
            "outputs": ["y_pred"] if spec["task"] == "sentiment" else [f"prob_{e}" for e in spec["emotions"]],
            "sentiment_range": [-3.0, 3.0] if spec["task"] == "sentiment" else None,
        },
        "features": {"dims": spec["dims"], "names": names, "modalities": list(MODALITIES)},
        "inputs": inputs,
        # per-feature word-level mean/SD of the training split: predict's out-of-distribution flag
        "training_range": ood.training_range([stores[lang] for lang in sorted(exp["train"])], exp["train"]),
        "normalizer": f"{WEIGHTS}: normalizer.<modality>.mean/std" if ckpt.normalizer is not None else None,
        "provenance": provenance,
        "training": {
            "experiment": metrics.get("experiment"),
            "entry": exp,
            "seed": spec["seed"],
            "best_epoch": metrics.get("best_epoch"),
            "selection": metrics.get("selection"),
            "valid": metrics.get("valid"),
            "test": metrics.get("test"),
            "stores": store_files,
        },
        "files": {WEIGHTS: hashlib.sha256(weights).hexdigest()},
    }
    target = Path(out) if out is not None else run_dir / "bundle"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        (tmp / WEIGHTS).write_bytes(weights)
        io.write_json(tmp / BUNDLE_JSON, json_clean(description))
        _replace_dir(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    log.info("bundle of %s written to %s", run_dir, target)
    return target


# ------------------------------------------------------------------------------ using one


@dataclass
class Bundle:
    path: Path
    meta: dict
    model: torch.nn.Module
    normalizer: dict | None = field(repr=False, default=None)
    threads: int = 1

    @property
    def task(self) -> str:
        return self.meta["task"]

    @property
    def emotions(self) -> list[str]:
        return self.meta["labels"]["emotions"]

    @property
    def provenance(self) -> dict:
        return self.meta["provenance"]

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities the model reads (all three for a model that does not say)."""
        return tuple(getattr(self.model, "modalities", None) or MODALITIES)

    @property
    def uses_text(self) -> bool:
        return "text" in self.modalities

    def check_features(
        self, provenance: dict, lang: str | None = None, allow_mismatch: bool = False
    ) -> list[Difference]:
        return check_features(self, provenance, lang=lang, allow_mismatch=allow_mismatch)

    def prepare(self, samples: list[Sample]) -> list[Sample]:
        """Truncate and normalise ``samples`` in place as training did; return them."""
        max_len = self.meta["inputs"]["max_len"]
        for s in samples:
            s.feats = {m: x[:max_len] if max_len else x for m, x in s.feats.items()}
            s.tr = None
            if self.normalizer is not None:
                apply_normalizer(s, self.normalizer)
            else:
                s.feats = {m: np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0) for m, x in s.feats.items()}
        return samples

    @torch.no_grad()
    def predict_samples(self, samples: list[Sample]) -> np.ndarray:
        """Model outputs (N, n_out) of prepared samples, batched in order like training's evaluation.

        Runs on ``self.threads`` CPU threads (default 1, training's default): another count
        changes the order of float sums, so the last bit of a prediction could differ from the run's.
        """
        self.model.eval()
        out, parts = [], []
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            # whole videos per batch for a model over a video's utterances (polysent.train.batch_unit)
            unit = getattr(self.model, "batch_unit", "segment")
            for part, batch in batches(samples, self.meta["inputs"]["eval_batch_size"], unit=unit):
                out.append(self.model(batch)["pred"].numpy())
                parts.append(part)
        finally:
            torch.set_num_threads(previous)
        return in_given_order(samples, parts, out) if out else np.zeros((0, self.meta["model"]["n_out"]), np.float32)

    def predict_table(self, table: pa.Table, where: str = "<table>") -> pa.Table:
        """One row per store row: ``segment_id, video_id, lang, <outputs>, reason``.

        Labels are not needed (a store of new videos has none); a segment without words gets
        NaN outputs and a ``reason`` instead of a prediction.
        """
        dims = {m: table.schema.field(m).type.value_type.list_size for m in MODALITIES if m in table.column_names}
        if dims and dims != self.meta["features"]["dims"]:
            raise BundleError(
                f"{where}: feature dimensions {dims} differ from the bundle's "
                f"{self.meta['features']['dims']} ({self.path})"
            )
        unlabeled = (
            table.set_column(
                table.schema.get_field_index("sentiment"), "sentiment", pa.array(np.zeros(table.num_rows, np.float32))
            )
            if "sentiment" in table.column_names
            else table.append_column("sentiment", pa.array(np.zeros(table.num_rows, np.float32)))
        )
        samples, _ = samples_from_table(unlabeled, where)
        usable = [s for s in samples if s.length > 0]
        pred = self.predict_samples(self.prepare(usable))
        row_of = {s.segment_id: i for i, s in enumerate(usable)}
        outputs = self.meta["labels"]["outputs"]
        values = np.full((len(samples), len(outputs)), np.nan, np.float32)
        for i, s in enumerate(samples):
            if s.segment_id in row_of:
                p = pred[row_of[s.segment_id]]
                values[i] = p[:1] if self.task == "sentiment" else sigmoid(p)
        fields = {
            "segment_id": pa.array([s.segment_id for s in samples], pa.string()),
            "video_id": pa.array([s.video_id for s in samples], pa.string()),
            "lang": pa.array([s.lang for s in samples], pa.string()),
            **{name: pa.array(values[:, k]) for k, name in enumerate(outputs)},
            "reason": pa.array(
                [None if s.segment_id in row_of else "no words in the segment" for s in samples], pa.string()
            ),
        }
        return pa.table(fields)

    def predict_store(
        self, path: str | os.PathLike, lang: str | None = None, allow_mismatch: bool = False
    ) -> tuple[pa.Table, list[Difference]]:
        """Check a feature store's settings against the bundle, then predict its rows."""
        from polysent.store import read_store

        table, meta = read_store(path)
        differences = self.check_features(meta, lang=lang, allow_mismatch=allow_mismatch)
        return self.predict_table(table, str(path)), differences


def load_bundle(path: str | os.PathLike) -> Bundle:
    """Rebuild a bundle's model (eval mode) from its folder; nothing else is read."""
    from polysent.models import build_model, model_class

    path = Path(path)
    desc_path, weights_path = path / BUNDLE_JSON, path / WEIGHTS
    if not desc_path.exists():
        raise BundleError(f"{path}: not a polysent bundle (no {desc_path.name})")
    meta = io.read_json(desc_path, role="bundle description", error=BundleError)
    if isinstance(meta, dict) and meta.get("format") == FORMAT and meta.get("version") != VERSION:
        raise BundleError(
            f"{desc_path}: bundle version {meta.get('version')!r}, this polysent reads version {VERSION} "
            "(re-make it from its run folder: polysent bundle --run ...)"
        )
    if missing := _missing_spec_keys(meta):
        raise BundleError(f"{desc_path}: key(s) {', '.join(missing)} missing; the file was edited or truncated")
    if meta.get("format") != FORMAT:
        raise BundleError(f"{desc_path}: format {meta.get('format')!r}, this polysent reads {FORMAT!r}")
    if not weights_path.exists():
        raise BundleError(f"{path}: not a polysent bundle (no {weights_path.name})")
    expected = (meta["files"][WEIGHTS], "bundle.json's (file changed or truncated)")
    try:
        state_dict, _, normalizer = checkpoint.read_weights(weights_path, expected)
    except checkpoint.CheckpointError as exc:
        raise BundleError(str(exc)) from None
    spec = meta["model"]
    kwargs = model_class(spec["name"]).bundle_kwargs(spec["kwargs"])
    model = build_model(spec["name"], meta["features"]["dims"], n_out=spec["n_out"], task=meta["task"], **kwargs)
    if why := _state_dict_mismatch(model.state_dict(), state_dict):
        raise BundleError(
            f"{desc_path}: keys model.name/model.kwargs/features.dims do not match {WEIGHTS} ({why}); "
            "bundle.json was edited or belongs to another bundle"
        )
    model.load_state_dict(state_dict)
    model.eval()
    return Bundle(path=path, meta=meta, model=model, normalizer=normalizer)


_SPEC_KEYS = (
    "format",
    "version",
    "task",
    "model.name",
    "model.kwargs",
    "model.n_out",
    "features.dims",
    f"files.{WEIGHTS}",
)


def _missing_spec_keys(meta) -> list[str]:
    """The keys of bundle.json that :func:`load_bundle` reads and ``meta`` lacks (dotted paths)."""
    missing = []
    for key in _SPEC_KEYS:
        node = meta
        for part in key.split(".") if not key.startswith("files.") else ("files", WEIGHTS):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            missing.append(key)
    return missing


def _state_dict_mismatch(expected: dict, saved: dict) -> str:
    """One line on how ``saved`` weights differ from the model ``expected`` ('' when they fit)."""
    lost = sorted(set(expected) - set(saved))
    extra = sorted(set(saved) - set(expected))
    shapes = [k for k in sorted(set(expected) & set(saved)) if tuple(expected[k].shape) != tuple(saved[k].shape)]
    parts = []
    if lost:
        parts.append(f"{len(lost)} tensor(s) missing, first '{lost[0]}'")
    if extra:
        parts.append(f"{len(extra)} unexpected, first '{extra[0]}'")
    if shapes:
        k = shapes[0]
        parts.append(
            f"{len(shapes)} of another shape, first '{k}' {tuple(saved[k].shape)} for {tuple(expected[k].shape)}"
        )
    return "; ".join(parts)


def check_features(
    bundle: Bundle, provenance: dict, lang: str | None = None, allow_mismatch: bool = False
) -> list[Difference]:
    """Differences between new features' settings and the bundle's; raise on any that matter.

    ``provenance`` is a feature store's metadata or :func:`feature_settings` of it. It is
    compared with the bundle's store of ``lang`` (default: the new store's language when the
    bundle has it, else the experiment's evaluation language). Raises :class:`FeatureMismatch`
    naming every differing key with both values, unless ``allow_mismatch``; tool-version
    differences are returned as ``severity="note"`` and never raise.
    """
    new = feature_settings(provenance) if "inputs" in provenance or "dims" in provenance else provenance
    lang = lang or provenance.get("lang")
    ref_lang = lang if lang in bundle.provenance else bundle.meta["training"]["entry"]["eval"]
    differences = _diff(bundle.provenance[ref_lang], new)
    if any(d.severity == "error" for d in differences) and not allow_mismatch:
        raise FeatureMismatch(differences, f"{bundle.path}, store {ref_lang}")
    for d in differences:
        log.warning("feature setting differs from the bundle: %s (%s)", d, d.severity)
    return differences


# ---------------------------------------------------------------------------------------- CLI


def add_cli(sub) -> None:
    p = sub.add_parser("bundle", help="write the self-contained model bundle of a finished run")
    p.add_argument("--run", required=True, help="run folder (results/runs/{exp}/seed{n})")
    p.add_argument(
        "--store",
        action="append",
        required=True,
        metavar="LANG=PATH",
        help="feature store the run used for a language (repeat per language)",
    )
    p.add_argument("--out", default=None, help="bundle folder (default: <run>/bundle)")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    stores = key_values(args.store, "--store", "LANG=PATH")
    print(make_bundle(args.run, stores, args.out))
    return 0
