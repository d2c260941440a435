"""Interruption (issue 8, item 5): SIGKILL the workflow during the acoustic stage, re-run as a
user would (``--unlock``, then ``--rerun-incomplete``), and get feature stores byte-identical to
the uninterrupted ``tiny_run``.

The acoustic jobs and everything between them and the stores are redone in a copy of the
finished tiny run (their outputs deleted), so the test exercises the real stage code without a
second full DAG run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
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
                    f"the run ended (rc={proc.returncode}) before an acoustic job could be killed:\n"
                    + log.read_text()[-4000:]
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
            busy = [j for j, r in running.items() if r in acoustic]
            if busy:
                time.sleep(0.5)  # let the job's process get into its real work
                lines = log.read_text().splitlines()
                if not any(
                    FINISHED.search(line) and FINISHED.search(line).group(1) == busy[0]
                    for line in lines
                ):
                    _kill_tree(proc)
                    return busy[0]
            time.sleep(0.05)
        raise AssertionError(
            "no acoustic job started within 10 minutes:\n" + log.read_text()[-4000:]
        )
    finally:
        if proc.poll() is None:
            _kill_tree(proc)


def test_sigkill_during_acoustic_then_rerun_is_byte_identical(tiny_run, tmp_path):
    files = stage_rule_files()
    acoustic = set(rules_in(files["acoustic"]))
    assert acoustic, "workflow/rules/acoustic.smk defines no rule"
    assert rules_in(files["store"]), "workflow/rules/store.smk defines no rule"
    stores = sorted(
        p.relative_to(tiny_run).as_posix()
        for p in (tiny_run / "results" / "store").glob("*.parquet")
    )
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
    assert (
        sum(1 for j in after.values() if j.rule in acoustic) >= 1
    ), f"job {killed_job} was killed but nothing acoustic is left to do:\n{describe_jobs(after)}"
    assert not any((wf / s).exists() for s in stores)

    # What a user does after a crash: unlock, re-run (incomplete outputs are redone).
    snakemake(wf, "--unlock", *TINY)
    snakemake(wf, *stores, "--cores", "2", *TINY, "--rerun-incomplete")

    for store in stores:
        assert (wf / store).read_bytes() == (
            tiny_run / store
        ).read_bytes(), f"{store} differs from the uninterrupted run"
    for job in redo.values():
        if job.rule in acoustic:
            for out in job.outputs:
                if (tiny_run / out).is_file():
                    assert (wf / out).read_bytes() == (tiny_run / out).read_bytes(), out
    assert n_acoustic >= 1
    assert not planned_jobs(wf, *stores, *TINY), "after the re-run the stores are not up to date"
