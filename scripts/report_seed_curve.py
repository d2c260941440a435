"""How many seeds the findings need: interval half-width and verdict stability against the seed count.

    .venv/bin/python scripts/report_seed_curve.py RESULTS_DIR [--counts 2 3 5 7 10] [--resamples 1000]
        [--experiments config/experiments.yaml] [--out curve.md]

Reads ``RESULTS_DIR/runs/{exp}/seed{n}/predictions.parquet`` of the rows the findings of
config/experiments.yaml name (runs trained with more seeds than the default, e.g. with
``report: {seeds: [1, ..., 10]}``) and prints, per finding contrast and seed count k, the median
half-width of the 95 % paired bootstrap interval and the share of k-seed windows in which the
finding holds (polysent.report.findings.seed_curve).
"""

import argparse
from pathlib import Path

import yaml

from polysent import contracts
from polysent.report.findings import seed_curve
from polysent.report.runs import parse_run_path

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("results")
parser.add_argument("--counts", type=int, nargs="+", default=[2, 3, 5, 7, 10])
parser.add_argument("--resamples", type=int, default=1000)
parser.add_argument("--experiments", default=str(Path(__file__).resolve().parents[1] / "config" / "experiments.yaml"))
parser.add_argument("--out", default=None)
args = parser.parse_args()

specs = yaml.safe_load(Path(args.experiments).read_text())["findings"]
predictions = {}
for path in sorted(Path(args.results, "runs").glob("*/seed*/predictions.parquet")):
    exp, seed = parse_run_path(path)
    predictions.setdefault(exp, []).append((seed, contracts.read_predictions(path).to_pandas()))
curve = seed_curve(predictions, specs, {"resamples": args.resamples, "level": 0.95, "seed": 0}, args.counts)
lines = ["| finding | rows | seeds | windows | difference (median) | half-width (median) | holds in |",
         "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
for r in curve.itertuples():
    lines.append(f"| {r.name} | {r.rows} | {r.n_seeds} | {r.windows} | {r.value:+.3f} | {r.half_width:.3f} "
                 f"| {r.holds_share:.0%} |")  # fmt: skip
text = "\n".join(lines) + "\n"
if args.out:
    Path(args.out).write_text(text)
print(text)
