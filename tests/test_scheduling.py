"""polysent.scheduling: a local run drops Snakemake's default job rate limit (and its wake-up timers)."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

from polysent.scheduling import CLI_DEFAULT_RATE, lift_local_rate_limit

ROOT = Path(__file__).resolve().parents[1]


def _workflow(local: bool, rate=CLI_DEFAULT_RATE):
    limiter = SimpleNamespace(max_jobs=rate[0], timespan=rate[1])
    return SimpleNamespace(local_exec=local, scheduler=SimpleNamespace(job_rate_limiter=limiter))


def test_local_run_with_the_cli_default_loses_its_rate_limiter():
    wf = _workflow(local=True)
    assert lift_local_rate_limit(wf) is True
    assert wf.scheduler.job_rate_limiter is None


def test_cluster_runs_and_explicit_limits_keep_theirs():
    cluster = _workflow(local=False)
    assert lift_local_rate_limit(cluster) is False
    assert cluster.scheduler.job_rate_limiter is not None
    explicit = _workflow(local=True, rate=(10, 60))
    assert lift_local_rate_limit(explicit) is False
    assert (explicit.scheduler.job_rate_limiter.max_jobs, explicit.scheduler.job_rate_limiter.timespan) == (10, 60)
    assert lift_local_rate_limit(SimpleNamespace(local_exec=True, scheduler=None)) is False


def test_the_snakemake_internals_it_relies_on_are_still_there():
    """A tripwire for Snakemake upgrades: the attribute, its CLI default and the re-arming it stops."""
    from snakemake.cli import get_argument_parser
    from snakemake.scheduling.job_scheduler import JobScheduler
    from snakemake.settings.types import MaxJobsPerTimespan

    default = MaxJobsPerTimespan.parse_choice(get_argument_parser().get_default("max_jobs_per_timespan"))
    assert (default.max_jobs, default.timespan) == CLI_DEFAULT_RATE
    assert "self.job_rate_limiter = (" in inspect.getsource(JobScheduler.__init__)
    schedule = inspect.getsource(JobScheduler.schedule)
    assert "if self.job_rate_limiter is not None:" in schedule
    assert "self._schedule_reevalutation(self.job_rate_limiter.timespan)" in schedule
    assert "if self.job_rate_limiter is None:" in inspect.getsource(JobScheduler.job_selector)


def test_a_local_run_completes_without_the_limiter(tmp_path):
    (tmp_path / "Snakefile").write_text(
        textwrap.dedent(
            """
            from polysent.scheduling import lift_local_rate_limit
            onstart:
                print("lifted:", lift_local_rate_limit(workflow))
            rule all:
                input: expand("o/{i}.txt", i=range(6))
            rule one:
                output: "o/{i}.txt"
                shell: "echo {wildcards.i} > {output}"
            """
        )
    )
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "lifted: True" in run.stdout + run.stderr
    assert sorted(p.read_text().strip() for p in (tmp_path / "o").iterdir()) == [str(i) for i in range(6)]
