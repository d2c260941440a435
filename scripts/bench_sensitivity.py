"""Benchmark: which findings keep on "another machine" — another torch kernel path and another corpus draw.

Usage (from the repository root; the committed state is what gets measured):

    .venv/bin/python scripts/bench_sensitivity.py [--configfile config/tiny.yaml] [--cores 2]
        [--workdir /tmp/polysent-sensitivity] [--corpus-seed 8] [--out sensitivity.md] [--keep]

Three runs of the report's findings (``results/findings.csv``: every Table 1 row it needs, all
their seeds), each in its own copy of a ``git clone`` of the repository (``.venv`` linked):

* ``base``: the config as it is (``snakemake --cores N results/findings.csv``);
* ``kernel``: the same feature stores (the base copy with its training and report outputs
  removed), training re-run with ``ATEN_CPU_CAPABILITY=default`` — torch's CPU kernels without
  AVX2/AVX-512, the path another CPU may take, so floating-point sums differ in their last bits
  and training trajectories drift;
* ``corpus``: the whole DAG with another master ``seed`` (``--config seed=N``): another draw of
  the demo corpus from the same generative model (speakers, sentences, splits).

It writes a Markdown block for docs/BENCHMARKS.md (to ``--out`` and stdout): machine, command,
wall times, how many run folders' predictions changed under the kernel path and by how much, and
per finding its verdict and 95 % interval in each run and whether the verdict keeps in all of
them; with ``--out X.md`` also ``X.csv`` (the verdict table, which
scripts/report_readme_trust.py reads to state in README only what keeps).
``--configfile config/tiny.yaml`` is the quick check of the script itself (minutes); the
demo-size run is the default.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
TARGET = "results/findings.csv"
# What the kernel run re-creates from the base copy's feature stores.
TRAINING_OUTPUTS = ["results/train_groups", "results/runs", "results/table1.csv", "results/table1.md", TARGET]


def run(cmd: list[str], cwd: Path, env: dict | None = None) -> float:
    # the copy's own library first: the shared .venv's editable install points at another tree
    path = os.pathsep.join(p for p in (str(cwd / "src"), os.environ.get("PYTHONPATH", "")) if p)
    start = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {}), "PYTHONPATH": path}
    )
    elapsed = time.monotonic() - start
    (cwd / "sensitivity.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-6000:])
        raise SystemExit(f"failed ({proc.returncode}) in {cwd}: {' '.join(cmd)}")
    return elapsed


def snakemake_cmd(cores: int, configfile: str | None, extra: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(cores), TARGET]
    if configfile:
        # config.yaml and experiments.yaml are the Snakefile's own configfiles; this one goes on top
        cmd += ["--configfile", configfile]
    return cmd + extra


def clone(workdir: Path) -> Path:
    base = workdir / "base"
    subprocess.run(["git", "clone", "-q", str(REPO), str(base)], check=True)
    venv = REPO / ".venv"
    (base / ".venv").symlink_to(venv.resolve() if venv.exists() else Path(sys.prefix))
    return base


def copy_without_training(base: Path, dest: Path) -> None:
    """The base copy with its feature stores (and Snakemake's records of them), minus training and report."""
    shutil.copytree(base, dest, symlinks=True)
    for rel in TRAINING_OUTPUTS:
        path = dest / rel
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def prediction_drift(base: Path, other: Path) -> dict[str, float]:
    """Run folders whose test predictions differ between two copies, and the largest differences."""
    changed, total, max_pred, max_r = 0, 0, 0.0, 0.0
    for path in sorted((base / "results" / "runs").glob("*/seed*/predictions.parquet")):
        twin = other / path.relative_to(base)
        if not twin.exists():
            continue
        total += 1
        a, b = pd.read_parquet(path), pd.read_parquet(twin)
        if a.equals(b):
            continue
        changed += 1
        test_a, test_b = a[a["split"] == "test"], b[b["split"] == "test"]
        if "y_pred" in a:
            max_pred = max(max_pred, float((test_a["y_pred"] - test_b["y_pred"]).abs().max()))
            r_a = test_a["y_pred"].corr(test_a["y_true"])
            r_b = test_b["y_pred"].corr(test_b["y_true"])
            max_r = max(max_r, abs(float(r_a - r_b)))
    return {"runs": total, "changed": changed, "max_pred": max_pred, "max_r": max_r}


def verdict_cell(row: pd.Series) -> str:
    if row["verdict"] == "skipped":
        return "skipped"
    return f"{row['verdict']} {row['value']:+.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"


def compare(found: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per finding contrast: its verdict and interval in each run; keeps = same verdict in all."""
    key = ["name", "rows"]
    table = None
    for tag, frame in found.items():
        part = frame[key + ["metric"]].copy()
        part[tag] = frame.apply(verdict_cell, axis=1)
        part[f"{tag}_verdict"] = frame["verdict"]
        table = part if table is None else table.merge(part.drop(columns="metric"), on=key, how="outer")
    verdicts = table[[f"{t}_verdict" for t in found]]
    table["keeps"] = verdicts.nunique(axis=1, dropna=False).eq(1).astype(object)
    table.loc[verdicts.eq("skipped").all(axis=1), "keeps"] = None  # not checked anywhere
    # the first run's order (the config's), not the merge's sorted keys
    order = {k: i for i, k in enumerate(zip(*(next(iter(found.values()))[c] for c in key)))}
    return table.sort_values(key, key=lambda _c: [order.get(k, len(order)) for k in zip(table["name"], table["rows"])])


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    return (
        f"{os.cpu_count()} cores, {cpu or 'unknown CPU'}, {platform.system()} {platform.release()}, "
        f"CPython {platform.python_version()}, torch {torch.__version__} (CPU capability {capability})"
    )


def markdown(args, walls: dict, drift: dict, table: pd.DataFrame, commit: str, load: str) -> str:
    command = "`.venv/bin/python scripts/bench_sensitivity.py " + " ".join(sys.argv[1:]) + "`"
    tags = list(walls)
    labels = {
        "base": "base",
        "kernel": "ATEN_CPU_CAPABILITY=default",
        "corpus": f"corpus seed {args.corpus_seed}",
    }
    lines = [
        f"### Findings under another kernel path and another corpus draw, {datetime.now(UTC):%Y-%m-%d}",
        "",
        f"Command: {command} (commit {commit}, config {args.configfile or 'config/config.yaml'}). "
        f"Machine: {machine()}; load average at the start {load}.",
        "",
        "Runs: " + "; ".join(f"{labels[t]} {walls[t]:.0f} s" for t in tags) + ".",
    ]
    if drift:
        lines.append(
            f"Kernel path: {drift['changed']} of {drift['runs']} run folders' predictions differ from base "
            f"(largest test prediction change {drift['max_pred']:.3g}, largest change of a run's test r "
            f"{drift['max_r']:.3g}); the feature stores are the base's."
        )
    head = "| finding | rows | metric | " + " | ".join(labels[t] for t in tags) + " | keeps |"
    lines += ["", head, "|" + "---|" * (head.count("|") - 1)]
    for _, row in table.iterrows():
        cells = " | ".join(str(row[t]) if pd.notna(row[t]) else "–" for t in tags)
        keeps = "–" if row["keeps"] is None or pd.isna(row["keeps"]) else ("yes" if row["keeps"] else "no")
        lines.append(f"| {row['name']} | {row['rows']} | {row['metric']} | {cells} | {keeps} |")
    kept = table[table["keeps"].eq(True) & table["base_verdict"].eq("holds")]
    lines += [
        "",
        f"Verdict and 95 % paired bootstrap interval (claimed difference; polysent.report.findings) per run. "
        f"Holding in every run: {', '.join(f'{r.name} ({r.rows})' for r in kept.itertuples()) or 'none'}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", default=None, help="config on top of the defaults (e.g. config/tiny.yaml)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/polysent-sensitivity")
    parser.add_argument("--corpus-seed", type=int, default=8, help="master seed of the second corpus draw")
    parser.add_argument("--out", default=None, help="also write the Markdown block here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()

    workdir = Path(args.workdir)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    base = clone(workdir)
    walls, found = {}, {}
    walls["base"] = run(snakemake_cmd(args.cores, args.configfile, []), base)
    found["base"] = pd.read_csv(base / TARGET)

    kernel = workdir / "kernel"
    copy_without_training(base, kernel)
    walls["kernel"] = run(snakemake_cmd(args.cores, args.configfile, []), kernel, {"ATEN_CPU_CAPABILITY": "default"})
    found["kernel"] = pd.read_csv(kernel / TARGET)
    drift = prediction_drift(base, kernel)

    corpus = workdir / "corpus"
    shutil.copytree(base, corpus, symlinks=True, ignore=shutil.ignore_patterns("results", ".snakemake", "logs"))
    walls["corpus"] = run(snakemake_cmd(args.cores, args.configfile, ["--config", f"seed={args.corpus_seed}"]), corpus)
    found["corpus"] = pd.read_csv(corpus / TARGET)

    table = compare(found)
    text = markdown(args, walls, drift, table, commit.stdout.strip(), load)
    if args.out:
        Path(args.out).write_text(text)
        # beside it, the verdicts as a table (scripts/report_readme_trust.py --sensitivity reads it)
        table.to_csv(Path(args.out).with_suffix(".csv"), index=False)
    print(text)
    if not args.keep:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
