"""README's "How far to trust the demo" claims, regenerated from a findings.csv.

    .venv/bin/python scripts/report_readme_trust.py results/findings.csv [--sensitivity sens.csv]
        [--readme README.md]

Replaces the lines between the README's ``<!-- findings:begin ... -->`` and ``<!-- findings:end -->``
markers by one line per finding: the rows for which it holds with the claimed difference and its
95 % paired bootstrap interval, and those for which it does not. With ``--sensitivity`` (the CSV
that scripts/bench_sensitivity.py writes beside its Markdown) a claim is listed as holding only
when its verdict also kept under another kernel path and another corpus draw.
"""

import argparse
from pathlib import Path

import pandas as pd

from polysent.io import write_text
from polysent.report.findings import replace_trust_block, trust_lines

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("findings")
parser.add_argument("--sensitivity", default=None)
parser.add_argument("--readme", default=str(Path(__file__).resolve().parents[1] / "README.md"))
args = parser.parse_args()
keeps = pd.read_csv(args.sensitivity) if args.sensitivity else None
readme = Path(args.readme)
write_text(readme, replace_trust_block(readme.read_text(), trust_lines(pd.read_csv(args.findings), keeps)))
print(f"{readme}: findings block updated from {args.findings}")
