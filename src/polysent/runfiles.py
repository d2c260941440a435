"""The files of a run folder: predictions, history and policy-decision tables (see polysent.train).

:func:`polysent.train.write_run` evaluates the selected checkpoint and writes the folder; the
tables it writes are built here, one function per file, so their layout (checked on reading by
:mod:`polysent.contracts`) is in one place.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from polysent.numeric import sigmoid

RUN_FILES = (
    "metrics.json",
    "predictions.parquet",
    "history.csv",
    "model.safetensors",
    "model.json",
    "decisions.parquet",
)


def prediction_table(task, samples_by_split, preds_by_split, emotions) -> pa.Table:
    cols: dict[str, list] = {"segment_id": [], "lang": [], "split": []}
    for split, samples in samples_by_split.items():
        cols["segment_id"] += [s.segment_id for s in samples]
        cols["lang"] += [s.lang for s in samples]
        cols["split"] += [split] * len(samples)
    fields = {k: pa.array(v, pa.string()) for k, v in cols.items()}
    pred = np.concatenate([preds_by_split[k] for k in samples_by_split], 0)
    allsamp = [s for v in samples_by_split.values() for s in v]
    if task == "sentiment":
        fields["y_true"] = pa.array(np.array([s.y for s in allsamp], np.float32))
        fields["y_pred"] = pa.array(pred[:, 0].astype(np.float32))
    else:
        truth = np.stack([s.emotions for s in allsamp]) if allsamp else np.zeros((0, len(emotions)))
        prob = sigmoid(pred)
        for k, label in enumerate(emotions):
            fields[f"true_{label}"] = pa.array(truth[:, k].astype(np.float32))
            fields[f"prob_{label}"] = pa.array(prob[:, k].astype(np.float32))
    return pa.table(fields)


def history_csv(rows: list[dict]) -> str:
    """history.csv text (the csv module: pandas would add ~0.5 s to every job's start-up)."""
    import csv
    import io as _io

    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: ("" if isinstance(v, float) and math.isnan(v) else repr(v) if isinstance(v, float) else v)
                for k, v in row.items()
            }
        )
    return buf.getvalue()


def decision_table(decisions, split: str, modalities) -> pa.Table:
    seg, win, mod, sel, prob = [], [], [], [], []
    for s, d, p in decisions:
        for w in range(d.shape[0]):
            for k, m in enumerate(modalities):
                seg.append(s.segment_id)
                win.append(w)
                mod.append(m)
                sel.append(int(d[w, k] > 0.5))
                prob.append(float(p[w, k]))
    return pa.table(
        {
            "segment_id": pa.array(seg, pa.string()),
            "split": pa.array([split] * len(seg), pa.string()),
            "window": pa.array(win, pa.int32()),
            "modality": pa.array(mod, pa.string()),
            "selected": pa.array(sel, pa.int8()),
            "prob": pa.array(prob, pa.float32()),
        }
    )
