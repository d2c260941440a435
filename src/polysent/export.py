"""Exporters of the feature store to the two formats MSA tools read, and a CSD reader.

- MMSA pkl (thuiar/MMSA, MMSA-FET ``run_dataset``): ``{'train'|'valid'|'test': {'id', 'raw_text',
  'text', 'audio', 'vision', 'regression_labels', 'audio_lengths', 'vision_lengths', 'words',
  '<label>' …}, 'config': …}``; sequences are zero-padded at the end (or truncated) to ``seq_len``.
  Word-aligned, so the three lengths are equal.
- CMU-SDK ``.csd`` (HDF5, ``computational_sequence/file_ops.py`` layout): one file per sequence
  (``words``, ``text``, ``acoustic``, ``visual``, ``labels``) with ``/<root>/data/<segment_id>/
  {features, intervals}`` and ``/<root>/metadata/<key>`` JSON strings. Intervals are the words'
  [start, end] in seconds from the segment start; labels hold one row per segment.
- :func:`read_csd` reads any ``.csd`` (ours or CMU's); :func:`csd_to_frames` turns one into a
  polysent frame store so precomputed features (e.g. CMU's OpenFace CSDs) can be imported.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from polysent.io import atomic_path
from polysent.store import MODALITIES, read_store, to_arrays

MMSA_KEYS = {"text": "text", "acoustic": "audio", "visual": "vision"}
CSD_METADATA_KEYS = (
    "root name", "computational sequence description", "dimension names",
    "computational sequence version", "alignment compatible", "dataset name", "dataset version",
    "creator", "contact", "featureset bib citation", "dataset bib citation",
)  # fmt: skip


def _pad(seqs: list[np.ndarray], length: int, dim: int) -> np.ndarray:
    out = np.zeros((len(seqs), length, dim), np.float32)
    for i, s in enumerate(seqs):
        n = min(len(s), length)
        out[i, :n] = s[:n]
    return out


def to_mmsa(table: pa.Table, meta: dict, seq_len: int | None = None) -> dict:
    """The MMSA pkl dict of a feature store."""
    df = table.select(["segment_id", "split", "sentiment", "words", *meta.get("labels", [])]).to_pandas()
    seqs = {m: to_arrays(table.column(m)) for m in MODALITIES}
    lengths = np.array([len(s) for s in seqs["text"]], np.int64)
    length = int(seq_len or (lengths.max() if len(lengths) else 1))
    out: dict = {"config": {"source": "polysent feature store", "meta": meta, "seq_len": length}}
    for split in ("train", "valid", "test"):
        idx = np.flatnonzero(df["split"].to_numpy() == split)
        part = {
            "id": df["segment_id"].iloc[idx].tolist(),
            "raw_text": [" ".join(w) for w in df["words"].iloc[idx]],
            "words": [list(w) for w in df["words"].iloc[idx]],
            "regression_labels": df["sentiment"].iloc[idx].to_numpy(np.float32),
        }
        for m, key in MMSA_KEYS.items():
            dim = meta["dims"][m]
            part[key] = _pad([seqs[m][i] for i in idx], length, dim)
        part["audio_lengths"] = np.minimum(lengths[idx], length).tolist()
        part["vision_lengths"] = np.minimum(lengths[idx], length).tolist()
        for lab in meta.get("labels", []):
            part[lab] = df[lab].iloc[idx].to_numpy(np.float32)
        out[split] = part
    return out


def write_mmsa(store_path, out, seq_len: int | None = None) -> dict:
    table, meta = read_store(store_path)
    data = to_mmsa(table, meta, seq_len)
    with atomic_path(out, suffix=".pkl") as tmp:
        with open(tmp, "wb") as f:
            pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
    return data


def write_csd(path, root: str, entries: dict[str, tuple[np.ndarray, np.ndarray]], metadata: dict) -> None:
    """Write one computational sequence: ``entries[id] = (features (N, D), intervals (N, 2))``."""
    import h5py

    with atomic_path(path, suffix=".csd") as tmp:
        with h5py.File(tmp, "w") as h5:
            g = h5.create_group(root)
            data = g.create_group("data")
            for key in sorted(entries):
                feats, intervals = entries[key]
                e = data.create_group(key)
                e.create_dataset("features", data=feats, compression="gzip", compression_opts=9)
                e.create_dataset(
                    "intervals", data=np.asarray(intervals, np.float64), compression="gzip", compression_opts=9
                )
            md = g.create_group("metadata")
            full = {k: "" for k in CSD_METADATA_KEYS} | {"root name": root} | metadata
            for k, v in full.items():
                md.create_dataset(k, (1,), dtype=h5py.special_dtype(vlen=str), data=[json.dumps(v)])


def read_csd(path) -> tuple[str, dict[str, dict[str, np.ndarray]], dict]:
    """(root name, {entry: {'features', 'intervals'}}, metadata) with the SDK's integrity checks."""
    import h5py

    with h5py.File(path, "r") as h5:
        root = list(h5.keys())[0]
        data = {}
        for key, e in h5[root]["data"].items():
            feats, inter = e["features"][()], e["intervals"][()]
            if inter.ndim != 2 or feats.ndim < 2 or feats.shape[0] != inter.shape[0]:
                raise ValueError(
                    f"{path}: entry {key} fails the CSD integrity check "
                    f"(features {feats.shape}, intervals {inter.shape})"
                )
            data[key] = {"features": feats, "intervals": inter}
        meta = {}
        for k, v in h5[root]["metadata"].items():
            raw = v[0]
            raw = raw.decode() if isinstance(raw, bytes) else raw
            try:
                meta[k] = json.loads(raw)
            except (TypeError, ValueError):
                meta[k] = str(raw)
    return root, data, meta


def write_csds(store_path, align_paths, out_dir) -> list[Path]:
    """Export a feature store as ``words``, ``text``, ``acoustic``, ``visual``, ``labels`` CSDs."""
    table, meta = read_store(store_path)
    lang = meta.get("lang", "xx")
    words = pd.concat([pd.read_parquet(p) for p in align_paths], ignore_index=True)
    ids = table.column("segment_id").to_pylist()
    words = words[words["segment_id"].isin(set(ids))].sort_values(["segment_id", "word_idx"])
    inter = {sid: g[["start", "end"]].to_numpy(np.float64) for sid, g in words.groupby("segment_id")}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    base_meta = {
        "dataset name": f"polysent {lang}",
        "creator": "polysent",
        "alignment compatible": True,
        "computational sequence version": "1.0",
    }
    seqs = {m: to_arrays(table.column(m)) for m in MODALITIES}
    for m in MODALITIES:
        entries = {sid: (seqs[m][i], inter[sid]) for i, sid in enumerate(ids)}
        path = out_dir / f"{m}.csd"
        write_csd(
            path,
            f"polysent_{lang}_{m}",
            entries,
            base_meta
            | {
                "computational sequence description": f"{m} features mean-pooled per word",
                "dimension names": meta["feature_names"][m],
            },
        )
        written.append(path)
    wl = table.column("words").to_pylist()
    entries = {
        sid: (np.array([[w.encode()] for w in wl[i]], dtype=object).astype("S"), inter[sid])
        for i, sid in enumerate(ids)
    }
    write_csd(
        out_dir / "words.csd",
        f"polysent_{lang}_words",
        entries,
        base_meta | {"computational sequence description": "aligned words", "dimension names": ["word"]},
    )
    written.append(out_dir / "words.csd")
    labels = ["sentiment", *meta.get("labels", [])]
    lab = table.select(labels).to_pandas().to_numpy(np.float32)
    entries = {sid: (lab[i : i + 1], np.array([[inter[sid][0, 0], inter[sid][-1, 1]]])) for i, sid in enumerate(ids)}
    write_csd(
        out_dir / "labels.csd",
        f"polysent_{lang}_labels",
        entries,
        base_meta | {"computational sequence description": "segment labels", "dimension names": labels},
    )
    written.append(out_dir / "labels.csd")
    return written


def csd_to_frames(path, manifest: pd.DataFrame | None = None) -> pd.DataFrame:
    """A CSD as a polysent frame store (``segment_id``, ``time``, float32 feature columns).

    Entries keyed by segment id are taken as they are (interval start = time). Entries keyed by
    video id (CMU's CSDs, video time) are cut per manifest segment: rows whose interval starts
    inside ``[start, end]``, time made relative to the segment start.
    """
    root, data, meta = read_csd(path)
    names = meta.get("dimension names")
    first = next(iter(data.values()), None)
    dim = first["features"].shape[1] if first is not None else 0
    if not isinstance(names, list) or len(names) != dim:
        names = [f"{root}_{i}" for i in range(dim)]
    frames = []
    seg_ids = set(manifest["segment_id"]) if manifest is not None else set()
    for key, e in data.items():
        if manifest is None or key in seg_ids:
            frames.append((key, e["intervals"][:, 0], e["features"]))
            continue
        for seg in manifest[manifest["video_id"] == key].itertuples():
            t = e["intervals"][:, 0]
            keep = (t >= seg.start) & (t <= seg.end)
            frames.append((seg.segment_id, t[keep] - seg.start, e["features"][keep]))
    rows = []
    for sid, t, f in frames:
        df = pd.DataFrame(np.asarray(f, np.float32), columns=names)
        df.insert(0, "time", np.asarray(t, np.float64))
        df.insert(0, "segment_id", sid)
        rows.append(df)
    if not rows:
        return pd.DataFrame(columns=["segment_id", "time", *names])
    return pd.concat(rows, ignore_index=True).sort_values(["segment_id", "time"], kind="stable")


def run_export(store_path, align_paths, pkl_out, csd_dir, cfg: dict) -> None:
    write_mmsa(store_path, pkl_out, cfg.get("seq_len"))
    write_csds(store_path, align_paths, csd_dir)


def _cli_export(args) -> int:
    run_export(args.store, args.align, args.pkl, args.csd_dir, {"seq_len": args.seq_len})
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser("export", help="feature store -> MMSA .pkl and CMU-SDK .csd files")
    p.add_argument("store", help="results/store/{lang}.parquet")
    p.add_argument("--align", nargs="+", required=True, help="results/align/*.parquet (word intervals)")
    p.add_argument("--pkl", required=True, help="output MMSA pickle")
    p.add_argument("--csd-dir", required=True, help="output folder for the .csd files")
    p.add_argument("--seq-len", type=int, default=None)
    p.set_defaults(func=_cli_export)
    q = sub.add_parser("csd-import", help="a .csd file -> a polysent frame store (Parquet)")
    q.add_argument("csd")
    q.add_argument("out")
    q.add_argument("--manifest", default=None, help="cut video-keyed entries per segment")
    q.set_defaults(func=_cli_import)


def _cli_import(args) -> int:
    from polysent.io import write_parquet

    man = pd.read_parquet(args.manifest) if args.manifest else None
    df = csd_to_frames(args.csd, man)
    write_parquet(
        args.out,
        pa.Table.from_pandas(df, preserve_index=False),
        provenance={"stage": "csd-import", "source": os.fspath(args.csd)},
    )
    return 0
