"""Local runs without Snakemake's job-submission rate limit (the workflow's ``onstart`` hook).

Why: Snakemake 9 (checked up to 9.27.1, the pinned version) always sets a rate limit, the CLI
default ``--max-jobs-per-timespan 100/1s``. With a limit set, the scheduler ends *every*
scheduling round by arming a timer that wakes it one timespan later
(``JobScheduler._schedule_reevalutation``), and that wake-up is itself a round that arms the next
timer. Every finished job starts one more such chain, so after the demo's ~180 jobs the main
process wakes ~180 times a second, starts a thread each time and stats the inputs of every ready
job (a training job has ~30: its library modules). Measured on the demo (docs/BENCHMARKS.md,
"Demo DAG end to end"): ~20,000 scheduling rounds, and the whole DAG about a minute faster with
the chains gone. A submission rate limit protects a cluster's scheduler; on one machine there is
nothing to protect, so a local run drops it. Cluster executors, and a limit given explicitly
(anything but the CLI default), keep theirs.

The object passed in is Snakemake's ``workflow`` (duck-typed: this module does not import
Snakemake); ``tests/test_scheduling.py`` checks the Snakemake internals this relies on, so an
upgrade that changes them fails a test instead of silently bringing the chains back.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

CLI_DEFAULT_RATE = (100, 1)  # snakemake --max-jobs-per-timespan default: 100 jobs per 1 s


def lift_local_rate_limit(workflow) -> bool:
    """Drop the job rate limiter of a local run that uses the CLI default; True when dropped."""
    scheduler = getattr(workflow, "scheduler", None)
    limiter = getattr(scheduler, "job_rate_limiter", None)
    if limiter is None or not getattr(workflow, "local_exec", False):
        return False
    if (limiter.max_jobs, limiter.timespan) != CLI_DEFAULT_RATE:
        return False  # set on purpose: keep it
    scheduler.job_rate_limiter = None
    log.debug("local run: Snakemake's job rate limit (and its 1-s re-evaluation timers) lifted")
    return True
