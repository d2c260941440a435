"""Shared fixtures. Workflow tests copy the repository into a temp folder and call the CLI."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
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
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


@pytest.hookimpl(tryfirst=True)  # before xdist reads the markers into the node ids
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``make test`` runs ``-n auto --dist loadgroup``) each group runs in one worker:
    every test that reads the shared ``tiny_run`` goes to one group, so the tiny DAG runs once and no two
    tests touch its folder at the same time; the other tests stay with their file, so module fixtures
    are built once."""
    for item in items:
        group = "tiny_run" if "tiny_run" in getattr(item, "fixturenames", ()) else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))


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


# --- Re-run planning helpers (issue 8: incremental runs, interruption, SLURM) -------------------

_JOB_HEADER = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")
_JOB_FIELD = re.compile(r"^    (\w+): (.*)$")


@dataclass(frozen=True)
class PlannedJob:
    """One job of a dry run: rule name, wildcards as printed, output files, reason, priority."""

    rule: str
    wildcards: str
    outputs: tuple[str, ...]
    reason: str
    priority: float = 0.0

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule, self.wildcards)


def parse_dry_run(text: str) -> dict[tuple[str, str], PlannedJob]:
    """The jobs listed by ``snakemake -n`` (its per-job blocks), keyed by (rule, wildcards)."""
    jobs: dict[tuple[str, str], PlannedJob] = {}
    current: dict | None = None

    def close():
        if current is not None:
            job = PlannedJob(
                current["rule"],
                current.get("wildcards", ""),
                tuple(o for o in current.get("output", "").split(", ") if o),
                current.get("reason", ""),
                float(current.get("priority", 0)),
            )
            jobs[job.key] = job

    for line in text.splitlines():
        header = _JOB_HEADER.match(line)
        if header:
            close()
            current = {"rule": header.group(1)}
            continue
        field = _JOB_FIELD.match(line) if current is not None else None
        if field:
            current[field.group(1)] = field.group(2).strip()
        elif current is not None and not line.startswith("    "):
            close()
            current = None
    close()
    return jobs


def planned_jobs(workdir: Path, *args: str, env=None) -> dict[tuple[str, str], PlannedJob]:
    """Jobs that ``snakemake -n ARGS`` would run in ``workdir`` (default profile applies)."""
    proc = snakemake(workdir, "--dry-run", *args, env=env)
    return parse_dry_run(proc.stdout + "\n" + proc.stderr)


def describe_jobs(jobs) -> str:
    """Readable list of planned jobs for assertion messages."""
    if isinstance(jobs, dict):
        jobs = jobs.values()
    lines = sorted(f"  {j.rule}[{j.wildcards}]  reason: {j.reason}" for j in jobs)
    return "\n".join(lines) or "  (none)"


def copy_finished_run(src: Path, dest: Path) -> Path:
    """Copy a finished workflow folder with mtimes and Snakemake metadata (so it is still 'done')."""
    shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    return dest


def stage_rule_files() -> dict[str, Path]:
    """workflow/rules/<stage>.smk by stage name (common.smk excluded)."""
    rules_dir = REPO / "workflow" / "rules"
    return {p.stem: p for p in sorted(rules_dir.glob("*.smk")) if p.stem != "common"}


# `rule x:` / `checkpoint x:`, and `use rule y as x with:` (the predict stage's reused rules)
_RULE_DEF = re.compile(r"^[ \t]*(?:rule|checkpoint|use rule \w+ as) (\w+)(?: with)?:", re.M)


def rules_in(smk: Path) -> list[str]:
    """Names of the rules and checkpoints defined in one .smk file."""
    return _RULE_DEF.findall(smk.read_text())


def listed_rules(workdir: Path, *args: str) -> set[str]:
    """Rules the workflow defines for this config (``snakemake --list-rules``)."""
    out = snakemake(workdir, "--list-rules", *args).stdout
    return {line.strip() for line in out.splitlines() if re.fullmatch(r"\s*\w+\s*", line)}


@pytest.fixture
def offline(monkeypatch):
    """Hub offline flags, and any TCP/UDP connect fails: a model must load from local files only."""
    import socket

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")

    def no_network(self, *args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)


@pytest.fixture
def restore_torch_state():
    """Training sets torch's thread count and deterministic mode; give the next test its defaults."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(False)


@pytest.fixture
def one_torch_thread():
    """Tiny tensors: threads only add contention on a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
