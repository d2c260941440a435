"""Shared fixtures. Workflow tests copy the repository into a temp folder and call the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCHEMA_DIR = REPO / "workflow" / "schemas"

_COPY_IGNORE = shutil.ignore_patterns(
    ".venv", "results", "logs", "benchmarks", ".snakemake", "__pycache__", ".git", ".pytest_cache"
)


def copy_workflow(dest: Path) -> Path:
    """A private copy of the workflow (Snakefile, rules, config, scripts, resources) for one test."""
    shutil.copytree(REPO, dest, ignore=_COPY_IGNORE, dirs_exist_ok=True)
    return dest


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900, env=None):
    """Run the Snakemake CLI (same interpreter as pytest) in ``workdir``; return CompletedProcess."""
    cmd = [sys.executable, "-m", "snakemake", *args]
    proc = subprocess.run(
        cmd,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


@pytest.fixture
def workflow_copy(tmp_path: Path) -> Path:
    return copy_workflow(tmp_path / "wf")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The whole default DAG run once on config/tiny.yaml in a private copy; shared by all tests.

    Tests that need finished artifacts read them from here instead of running Snakemake again.
    """
    wf = copy_workflow(tmp_path_factory.mktemp("tiny") / "wf")
    snakemake(wf, "--cores", "2", "--configfile", "config/tiny.yaml")
    return wf
