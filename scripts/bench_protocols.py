"""Train Table 1 rows under protocol variants side by side and print test r / MAE per variant.

A variant changes the rows' entries before training: ``--fewshot NAME=draw:first,valid:budget``
sets keys of every few-shot subset spec of a row (``train: {es: {count: 230, ...}}``; rows
without one run once, under the name ``as configured``), ``--patch NAME=JSON`` deep-merges a
JSON object into every row (e.g. ``'{"variation": {"input_dropout": 0.0}}'``). Every row runs
with every seed of ``--seeds`` (config/config.yaml's ``train:`` section, the row's own entry from
config/experiments.yaml), on the feature stores in ``--stores`` (``{lang}.parquet``). Rows that
differ only in ``eval`` are trained once per seed (polysent.train.run_group). Output: one
Markdown table (mean ± sample std over seeds of test r and MAE, valid size of each language,
best epochs, training CPU seconds per training group), also written to ``--out``.

Example (docs/BENCHMARKS.md, "Few-shot protocol")::

    python scripts/bench_protocols.py --stores results/store --seeds 1 2 3 \\
        --experiments adamml_dl2_fr_es adamml_dl2_fr13es_es adamml_dl2_fr1es_es adamml_dl2_es_es \\
        --fewshot "first=draw:first" --fewshot "budget=valid:budget" \\
        --fewshot "first+budget=draw:first,valid:budget" --out /tmp/fewshot.md
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from polysent.config import deep_merge, validate_config
from polysent.experiments import experiment_entry, training_key
from polysent.train import train_run, write_run

REPO = Path(__file__).resolve().parents[1]


def parse_fewshot(text: str) -> tuple[str, dict]:
    name, _, body = text.partition("=")
    keys = {}
    for item in filter(None, body.split(",")):
        key, _, value = item.partition(":")
        keys[key.strip()] = yaml.safe_load(value)
    return name, keys


def apply_fewshot(entry: dict, keys: dict) -> dict | None:
    """``entry`` with ``keys`` set in each few-shot spec, or None when the row has none."""
    specs = [lang for lang, v in entry["train"].items() if isinstance(v, dict)]
    if not specs:
        return None
    out = copy.deepcopy(entry)
    for lang in specs:
        out["train"][lang] = {**out["train"][lang], **keys}
    return out


def fmt(values: list[float]) -> str:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    if not vals:
        return "–"
    std = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    return f"{np.mean(vals):.3f} ± {std:.3f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stores", required=True, help="folder with {lang}.parquet feature stores")
    ap.add_argument("--experiments", nargs="+", required=True)
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--fewshot", action="append", default=[], help="NAME=key:value,... for few-shot specs")
    ap.add_argument("--patch", action="append", default=[], help="NAME=JSON merged into every row")
    ap.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    ap.add_argument("--out", default=None, help="also write the Markdown table here")
    args = ap.parse_args(argv)

    config = deep_merge(
        yaml.safe_load(Path(args.config).read_text()),
        yaml.safe_load((REPO / "config" / "experiments.yaml").read_text()),
    )
    config = validate_config(config, REPO / "workflow" / "schemas")
    stores = {p.stem: str(p) for p in Path(args.stores).glob("*.parquet")}
    rows = {name: experiment_entry(config["experiments"], name) for name in args.experiments}

    variants: dict[str, dict[str, dict]] = {"as configured": rows}
    for text in args.fewshot:
        name, keys = parse_fewshot(text)
        changed = {n: e2 for n, e in rows.items() if (e2 := apply_fewshot(e, keys)) is not None}
        variants[name] = changed
    for text in args.patch:
        name, _, body = text.partition("=")
        variants[name] = {n: deep_merge(copy.deepcopy(e), json.loads(body)) for n, e in rows.items()}

    lines = [
        "| variant | row | train → eval | valid n (per lang) | best epoch per seed | test r | test MAE | group CPU s |",
        "|---|---|---|---|---|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for vname, entries in variants.items():
            groups: dict[str, list[str]] = {}
            for name, entry in entries.items():
                groups.setdefault(training_key(entry), []).append(name)
            for members in groups.values():
                results = {name: [] for name in members}
                cpu = 0.0
                for seed in args.seeds:
                    started = time.process_time()
                    trained = train_run(stores, entries[members[0]], config["train"], seed, members[0])
                    cpu += time.process_time() - started
                    for name in members:
                        out = Path(tmp) / vname.replace(" ", "_") / name / f"seed{seed}"
                        results[name].append(write_run(trained, stores, entries[name], out, name))
                    del trained
                for k, name in enumerate(members):
                    ms = results[name]
                    entry = entries[name]
                    train = " + ".join(
                        lang.upper()
                        if not isinstance(v, dict)
                        else f"{lang.upper()}({v.get('count', v.get('fraction'))})"
                        for lang, v in entry["train"].items()
                    ) + (" + TransAug" if entry.get("transaug") else "")
                    valid = ms[0]["data"]["n_valid_by_lang"]
                    lines.append(
                        f"| {vname} | {name} | {train} → {entry['eval'].upper()} "
                        f"| {', '.join(f'{k2} {v}' for k2, v in sorted(valid.items()))} "
                        f"| {'/'.join(str(m['best_epoch']) for m in ms)} "
                        f"| {fmt([m['test']['corr'] for m in ms])} | {fmt([m['test']['mae'] for m in ms])} "
                        f"| {f'{cpu:.1f}' if k == 0 else '(same)'} |"
                    )
                print("\n".join(lines[-len(members) :]), flush=True)
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        Path(args.out).write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
