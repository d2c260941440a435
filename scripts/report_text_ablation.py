"""What pretrained text buys: every Table 1 row trained on `use` text features against the same row
trained on the `hash` stand-in, paired on the same test segments.

    .venv/bin/python scripts/report_text_ablation.py PRETRAINED_RESULTS STANDIN_RESULTS \
        [--labels use hash] [--resamples 4000] [--out ablation.md]

Both folders are a demo run's ``results/`` built from the same corpus, features and splits, one
with the configured encoder and one re-run from the text stage with the stand-in, e.g. after
``snakemake --cores 2`` in a clone, ``cp -a`` the clone and run there
``snakemake --cores 2 --config 'text={encoder: hash}'`` (only text, store, training and the report
re-run). Per sentiment row present in both: r (mean ± std over seeds) of each, and the paired
bootstrap difference (first − second) over test segments and seeds with its 95 % interval
(polysent.report.findings.run_contrasts, the code behind ``results/findings.csv``). A row that
reads no text (MulT audio-only) must give identical predictions in both runs: the check that
nothing but the text features differs. Then the findings of both runs side by side (each run's
``findings.csv``). For a few such rows inside one run's Table 1 instead, see
``config/ablation_text.yaml`` (an experiment entry's ``text_encoder``).
"""

import argparse
from pathlib import Path

import pandas as pd

from polysent import contracts
from polysent.report.findings import run_contrasts
from polysent.report.runs import parse_run_path

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("first", help="results/ of the run with the configured (pretrained) encoder")
parser.add_argument("second", help="results/ of the run with the stand-in encoder")
parser.add_argument("--labels", nargs=2, default=["use", "hash"])
parser.add_argument("--resamples", type=int, default=4000)
parser.add_argument("--out", default=None)
args = parser.parse_args()
first, second = args.labels


tables = {label: pd.read_csv(Path(path, "table1.csv")).set_index("experiment") for label, path in zip(args.labels, (args.first, args.second))}  # fmt: skip


def sentiment_predictions(results: str, table: pd.DataFrame) -> dict[str, list]:
    """Each sentiment row's (seed, predictions) of one run (emotion rows have no r)."""
    preds: dict[str, list] = {row: [] for row in table.index[table["r_mean"].notna()]}
    for path in sorted(Path(results, "runs").glob("*/seed*/predictions.parquet")):
        exp, seed = parse_run_path(path)
        if exp in preds:
            preds[exp].append((seed, contracts.read_predictions(path).to_pandas()))
    return {row: runs for row, runs in preds.items() if runs}


contrasts = run_contrasts(
    sentiment_predictions(args.first, tables[first]),
    sentiment_predictions(args.second, tables[second]),
    {"resamples": args.resamples, "level": 0.95, "seed": 0},
).set_index("row")

lines = [
    f"| row | train → eval | seeds | r, {first} | r, {second} | {first} − {second} [95 % interval] | verdict |",
    "|---|---|---:|---:|---:|---:|---|",
]
for exp, c in contrasts.iterrows():
    a, b = tables[first].loc[exp], tables[second].loc[exp]
    verdict = "identical predictions" if c["identical"] else c["verdict"]
    lines.append(
        f"| {exp} ({a['label']}) | {a['train']} → {a['eval']} | {a['n_seeds']} "
        f"| {a['r_mean']:.3f} ± {a['r_std']:.3f} | {b['r_mean']:.3f} ± {b['r_std']:.3f} "
        f"| {c['value']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}] | {verdict} |"
    )
lines += ["", f"| finding | rows | {first}: difference [95 %], verdict | {second}: difference [95 %], verdict |",
          "|---|---|---|---|"]  # fmt: skip
found = {label: pd.read_csv(Path(path, "findings.csv")) for label, path in zip(args.labels, (args.first, args.second))}
for (_, fa), (_, fb) in zip(found[first].iterrows(), found[second].iterrows()):
    cell = lambda f: f"{f['value']:+.3f} [{f['ci_low']:+.3f}, {f['ci_high']:+.3f}], {f['verdict']}"  # noqa: E731
    lines.append(f"| {fa['name']} | {fa['rows']} | {cell(fa)} | {cell(fb)} |")
text = "\n".join(lines) + "\n"
print(text, end="")
if args.out:
    Path(args.out).write_text(text)
