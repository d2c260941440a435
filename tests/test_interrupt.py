"""Interruption (issue 8, item 5; issue 15, item 7): SIGKILL the workflow during the acoustic
stage, and during training (a training group half written), re-run as a user would
(``--unlock``, then the same command; the default profile sets ``rerun-incomplete``), and get
stores, run folders and metrics byte-identical to the uninterrupted ``tiny_run``.

The jobs of the stage and everything between them and the targets are redone in a copy of the
finished tiny run (their outputs deleted), so each test exercises the real stage code without a
second full DAG run.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from conftest import (
    copy_finished_run,
    describe_jobs,
    planned_jobs,
    rules_in,
    snakemake,
    stage_rule_files,
)

pytestmark = pytest.mark.workflow

TINY = ("--configfile", "config/tiny.yaml")
STARTED = re.compile(r"^(?:local)?rule (\w+):$")
JOBID = re.compile(r"^    jobid: (\d+)$")
FINISHED = re.compile(r"Finished jobid: (\d+)")


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL snakemake, its process group and every descendant (no job survives to finish)."""
    try:
        victims = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        victims = []
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for child in victims:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait(timeout=30)


def _run_until_acoustic_job(wf: Path, targets: list[str], acoustic: set[str], log: Path):
    """Start the run (one core: one job at a time); kill it while an acoustic job is running.

    Returns the jobid that was running when the kill landed.
    """
    return _run_and_kill(
        wf, targets, log, "an acoustic job", lambda running, lines: _busy_acoustic(running, lines, acoustic)
    )


def _busy_acoustic(running: dict[str, str], lines_of, acoustic: set[str]) -> str | None:
    """An acoustic job that is running and has been for half a second (into its real work)."""
    busy = [j for j, r in running.items() if r in acoustic]
    if not busy:
        return None
    time.sleep(0.5)
    finished = any(FINISHED.search(line) and FINISHED.search(line).group(1) == busy[0] for line in lines_of())
    return None if finished else busy[0]


def _run_and_kill(
    wf: Path,
    targets: list[str],
    log: Path,
    what: str,
    victim: Callable[[dict[str, str], Callable[[], list[str]]], str | None],
) -> str:
    """Start the run (one core: one job at a time); kill its process tree as soon as
    ``victim(running jobs {jobid: rule}, read log lines)`` names a job. Returns that name."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "snakemake", *targets, "--cores", "1", *TINY],
            cwd=wf,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: the kill cannot reach pytest
        )
    running: dict[str, str] = {}  # jobid -> rule, started and not finished
    last_rule = None
    seen = 0
    deadline = time.time() + 600
    try:
        while time.time() < deadline:
            if proc.poll() is not None:
                raise AssertionError(
                    f"the run ended (rc={proc.returncode}) before {what} could be killed:\n" + log.read_text()[-4000:]
                )
            lines = log.read_text().splitlines()
            for line in lines[seen:]:
                if m := STARTED.match(line):
                    last_rule = m.group(1)
                elif (m := JOBID.match(line)) and last_rule:
                    running[m.group(1)] = last_rule
                    last_rule = None
                elif m := FINISHED.search(line):
                    running.pop(m.group(1), None)
            seen = len(lines)
            job = victim(running, lambda: log.read_text().splitlines())
            if job is not None:
                _kill_tree(proc)
                return job
            time.sleep(0.05)
        raise AssertionError(f"no chance to kill {what} within 10 minutes:\n" + log.read_text()[-4000:])
    finally:
        if proc.poll() is None:
            _kill_tree(proc)


def test_sigkill_during_acoustic_then_rerun_is_byte_identical(tiny_run, tmp_path):
    files = stage_rule_files()
    acoustic = set(rules_in(files["acoustic"]))
    assert acoustic, "workflow/rules/acoustic.smk defines no rule"
    assert rules_in(files["store"]), "workflow/rules/store.smk defines no rule"
    stores = sorted(p.relative_to(tiny_run).as_posix() for p in (tiny_run / "results" / "store").glob("*.parquet"))
    assert stores, "tiny_run produced no results/store/*.parquet"

    wf = copy_finished_run(tiny_run, tmp_path / "wf")
    # Everything from the acoustic jobs down to the stores: delete it so it must be recomputed.
    redo = planned_jobs(wf, *stores, *TINY, "--forcerun", *sorted(acoustic))
    assert {j.rule for j in redo.values()} & acoustic, describe_jobs(redo)
    for job in redo.values():
        for out in job.outputs:
            path = wf / out
            if path.is_file():
                path.unlink()
    n_acoustic = sum(1 for j in redo.values() if j.rule in acoustic)

    killed_job = _run_until_acoustic_job(wf, stores, acoustic, tmp_path / "interrupted.log")

    # The kill really interrupted the stage: some acoustic output is still missing or incomplete,
    # and no store was written.
    after = planned_jobs(wf, *stores, *TINY, "--rerun-incomplete", "--nolock")
    assert sum(1 for j in after.values() if j.rule in acoustic) >= 1, (
        f"job {killed_job} was killed but nothing acoustic is left to do:\n{describe_jobs(after)}"
    )
    assert not any((wf / s).exists() for s in stores)

    # What a user does after a crash: unlock, re-run (incomplete outputs are redone).
    snakemake(wf, "--unlock", *TINY)
    snakemake(wf, *stores, "--cores", "2", *TINY, "--rerun-incomplete")

    for store in stores:
        assert (wf / store).read_bytes() == (tiny_run / store).read_bytes(), (
            f"{store} differs from the uninterrupted run"
        )
    for job in redo.values():
        if job.rule in acoustic:
            for out in job.outputs:
                if (tiny_run / out).is_file():
                    assert (wf / out).read_bytes() == (tiny_run / out).read_bytes(), out
    assert n_acoustic >= 1
    assert not planned_jobs(wf, *stores, *TINY), "after the re-run the stores are not up to date"


# --- kill during training (issue 15, item 7) ----------------------------------------------------


def _sha256_tree(root: Path, folders: tuple[str, ...]) -> dict[str, str]:
    """sha256 of every file under ``root/<folder>`` (paths relative to ``root``)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for folder in folders
        for p in sorted((root / folder).rglob("*"))
        if p.is_file()
    }


def _half_written_group(wf: Path, reference: dict[str, set[str]]) -> str | None:
    """A training group folder holding some, not all, of its files (a run folder written, the
    job still training the next seed); with one core it is the running train job's."""
    for group, names in reference.items():
        folder = wf / "results" / "train_groups" / group
        if folder.is_dir():
            present = sum((folder / name).is_file() for name in names)
            if 0 < present < len(names):
                return group
    return None


def _run_folders(names: set[str]) -> set[str]:
    """``{exp}/seed{n}`` of a training group's files (``{exp}/seed{n}/metrics.json``, ...)."""
    return {name.rsplit("/", 1)[0] for name in names}


def _quickest_multi_run_groups(tiny_run: Path, reference: dict[str, set[str]]) -> list[str]:
    """Groups with two or more run folders, quickest first (by tiny_run's train benchmarks)."""

    def seconds(group: str) -> float:
        rows = (tiny_run / "benchmarks" / "train" / f"{group}.tsv").read_text().splitlines()
        return float(rows[1].split("\t")[0])

    return sorted((g for g, names in reference.items() if len(_run_folders(names)) > 1), key=seconds)


def _incomplete_marked(wf: Path) -> set[str]:
    """Outputs Snakemake marked as incomplete (.snakemake/incomplete/<urlsafe base64 of the path>)."""
    marks = wf / ".snakemake" / "incomplete"
    return (
        {base64.urlsafe_b64decode(p.name).decode() for p in marks.iterdir() if p.is_file()} if marks.is_dir() else set()
    )


def test_sigkill_during_training_then_rerun_is_byte_identical(tiny_run, tmp_path):
    """Kill -9 while a training group (one job, a run folder per seed) is half written; the same
    command after ``--unlock`` redoes that group from scratch (Snakemake marked its folder
    incomplete: the written run folder is not taken as done) and every store, run folder and
    metric file is byte-identical to the uninterrupted run."""
    train_rules = set(rules_in(stage_rule_files()["train"])) | set(rules_in(stage_rule_files()["runs"]))
    assert "train" in train_rules, train_rules
    groups_dir = tiny_run / "results" / "train_groups"
    # Each group's run files, {exp}/seed{n}/<file> (not Snakemake's .snakemake_timestamp).
    reference = {
        g.name: {p.relative_to(g).as_posix() for p in g.glob("*/seed*/*") if p.is_file()}
        for g in sorted(groups_dir.iterdir())
    }
    # Redo the two quickest groups of two or more run folders (one run folder can be complete
    # while the job trains the next); the test budget pays for two trainings, not the whole stage.
    groups = _quickest_multi_run_groups(tiny_run, reference)[:2]
    assert groups, f"no training group of tiny_run has two run folders: {reference}"
    reference = {g: reference[g] for g in groups}
    metrics = sorted(f"results/runs/{run}/metrics.json" for g in groups for run in _run_folders(reference[g]))
    assert all((tiny_run / m).is_file() for m in metrics), metrics
    compared = ("results/store", "results/train_groups", "results/runs")
    before = _sha256_tree(tiny_run, compared)

    wf = copy_finished_run(tiny_run, tmp_path / "wf")
    redo = planned_jobs(wf, *metrics, *TINY, "--forcerun", "train")
    assert {j.rule for j in redo.values()} <= train_rules, describe_jobs(redo)
    for job in redo.values():
        for out in job.outputs:
            path = wf / out
            if path.is_dir():
                shutil.rmtree(path)
            elif path.is_file():
                path.unlink()
    n_groups = sum(1 for j in redo.values() if j.rule == "train")
    assert n_groups == len(reference), describe_jobs(redo)

    command = [*metrics, "--cores", "1", *TINY]
    t0 = time.monotonic()
    killed = _run_and_kill(
        wf,
        metrics,
        tmp_path / "interrupted.log",
        "a half-written training group",
        lambda running, lines: _half_written_group(wf, reference) if "train" in running.values() else None,
    )
    interrupted_s = time.monotonic() - t0

    # The kill left the group half written; Snakemake's marker says its folder is incomplete, so
    # the next run plans it again (rerun-incomplete, from the default profile, forces it) instead
    # of taking the written run folder as done.
    assert _half_written_group(wf, reference) == killed
    assert _incomplete_marked(wf) == {f"results/train_groups/{killed}"}
    after = planned_jobs(wf, *metrics, *TINY, "--nolock")
    again = {j.wildcards for j in after.values() if j.rule == "train"}
    assert f"group={killed}" in again, f"the half-written group {killed} is not redone:\n{describe_jobs(after)}"

    # What a user does after a crash: unlock, then the same command.
    snakemake(wf, "--unlock", *TINY)
    t0 = time.monotonic()
    snakemake(wf, *command)
    rerun_s = time.monotonic() - t0

    after_rerun = _sha256_tree(wf, compared)
    differ = sorted(k for k in before.keys() | after_rerun.keys() if before.get(k) != after_rerun.get(k))
    assert not differ, f"differ from the uninterrupted run (or missing/extra): {differ[:20]}"
    assert not planned_jobs(wf, *metrics, *TINY), "after the re-run the run folders are not up to date"
    assert not _incomplete_marked(wf)
    print(f"killed in group {killed} after {interrupted_s:.1f} s; re-run {rerun_s:.1f} s; {len(before)} files compared")
