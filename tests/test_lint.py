"""The workflow and the code are lint-clean: `snakemake --lint`, `snakefmt --check`, `ruff check`, `ruff format --check`.

The Snakemake checks run on a private copy, exactly as in `make lint`; each prints every finding on failure.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import snakemake

SNAKEFMT = Path(sys.executable).with_name("snakefmt")


def test_snakemake_lint_is_clean(workflow_copy):
    proc = snakemake(workflow_copy, "--lint", check=False, timeout=300)
    assert proc.returncode == 0, "snakemake --lint found problems:\n" + proc.stdout[-6000:] + proc.stderr[-6000:]


def test_snakemake_lint_is_clean_on_tiny_config(workflow_copy):
    proc = snakemake(workflow_copy, "--lint", "--configfile", "config/tiny.yaml", check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]


def test_snakefmt_check_is_clean(workflow_copy):
    proc = subprocess.run(
        [str(SNAKEFMT), "--check", "--diff", "Snakefile", "workflow"],
        cwd=workflow_copy,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (
        "snakefmt --check: these files need `make fmt`:\n" + proc.stdout[-6000:] + proc.stderr[-3000:]
    )


RUFF = Path(sys.executable).with_name("ruff")


def test_ruff_check_is_clean():
    """The Python code passes the linter configured in pyproject.toml, as in `make lint`."""
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [str(RUFF), "check", "--no-cache", "--output-format", "concise", "src", "scripts", "tests"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, "ruff check found problems (`make lint`):\n" + proc.stdout[-6000:]


def test_ruff_format_is_clean():
    """The Python code is as `ruff format` writes it (`make fmt`), as `make lint` checks."""
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [str(RUFF), "format", "--check", "--no-cache", "src", "scripts", "tests"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, "ruff format: these files need `make fmt`:\n" + proc.stdout[-6000:]
