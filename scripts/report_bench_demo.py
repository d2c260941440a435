"""Benchmark: wall time of the default demo DAG (``make demo``: results/table1.csv, every figure,
report.html) on a fresh clone, and where the time goes per rule.

Usage (from the repository root, committed state is what gets measured):

    .venv/bin/python scripts/report_bench_demo.py [--cores 2] [--workdir /tmp/polysent-bench]
        [--configfile config/tiny.yaml] [--keep]

It clones the repository (``git clone``: only committed files, like a user's fresh clone),
links the existing ``.venv``, runs ``snakemake --cores N`` and ``snakemake --report``, and prints
a Markdown block for docs/BENCHMARKS.md: machine, command, total wall time, and per rule the
number of jobs, summed and longest job seconds from the rules' ``benchmark:`` files and the
Snakemake log's job timings.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def run(cmd: list[str], cwd: Path) -> float:
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-6000:])
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    return elapsed


def per_rule_from_log(log: Path) -> pd.DataFrame:
    """Job durations per rule from a Snakemake log (start line of a job to its 'Finished jobid')."""
    stamp = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
    start_rule = re.compile(r"^(?:local)?rule (\w+):$")
    jobid = re.compile(r"^\s+jobid: (\d+)$")
    finished = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)")
    now, rule, started, rows = None, None, {}, []
    for line in log.read_text().splitlines():
        if m := stamp.match(line):
            now = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        elif m := start_rule.match(line):
            rule = m.group(1)
        elif (m := jobid.match(line)) and rule:
            started[m.group(1)] = (rule, now)
            rule = None
        elif m := finished.match(line):
            rule_name, begin = started.get(m.group(1), (m.group(2), None))
            if begin is not None and now is not None:
                rows.append({"rule": rule_name, "seconds": (now - begin).total_seconds()})
    frame = pd.DataFrame(rows, columns=["rule", "seconds"])
    return (
        frame.groupby("rule")["seconds"]
        .agg(jobs="count", total_s="sum", longest_s="max")
        .sort_values("total_s", ascending=False)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/polysent-bench"))
    parser.add_argument("--configfile", default=None, help="extra --configfile (default: none)")
    parser.add_argument("--keep", action="store_true", help="keep the clone afterwards")
    args = parser.parse_args(argv)

    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    subprocess.run(["git", "clone", "-q", str(REPO), str(args.workdir)], check=True)
    os.symlink(REPO / ".venv", args.workdir / ".venv")
    smk = [str(REPO / ".venv" / "bin" / "snakemake"), "--cores", str(args.cores)]
    if args.configfile:
        smk += ["--configfile", args.configfile]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()  # fmt: skip

    dag_s = run(smk, args.workdir)
    report_s = run(smk + ["--report", "results/report.html"], args.workdir)
    logs = sorted((args.workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    rules = per_rule_from_log(logs[0]) if logs else pd.DataFrame()
    n_runs = len(list((args.workdir / "results" / "runs").glob("*/seed*/metrics.json")))

    cpu = platform.processor() or platform.machine()
    print(f"### Demo DAG on a fresh clone ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit})")
    print()
    print(f"- machine: {os.cpu_count()} CPUs visible ({cpu}), `--cores {args.cores}`, "
          f"Python {platform.python_version()}")  # fmt: skip
    print(f"- command: `{' '.join(Path(c).name if i == 0 else c for i, c in enumerate(smk))}` then `--report`")
    print(f"- training runs: {n_runs}")
    print(f"- **wall time: DAG {dag_s:.0f} s ({dag_s / 60:.1f} min), report.html {report_s:.0f} s**")
    print()
    if len(rules):
        print("| rule | jobs | total s | longest s |")
        print("|---|---|---|---|")
        for rule, row in rules.iterrows():
            print(f"| {rule} | {int(row['jobs'])} | {row['total_s']:.0f} | {row['longest_s']:.0f} |")
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
