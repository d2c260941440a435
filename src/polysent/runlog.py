"""Logging set-up shared by the Snakemake script adapters (``scripts/*.py``)."""

from __future__ import annotations

import logging
import os
import socket
import sys


def start(log_path: str | os.PathLike | None = None, level: int = logging.INFO) -> logging.Logger:
    """Send this process's logging (and stderr) to ``log_path``; return the polysent logger.

    Snakemake's ``log:`` file is the one place a user looks when a job fails, so warnings from
    libraries (librosa, torch) must land there too, not on a terminal nobody reads on a cluster.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path is not None:
        os.makedirs(os.path.dirname(os.fspath(log_path)) or ".", exist_ok=True)
        stream = open(log_path, "w", buffering=1, encoding="utf-8")
        sys.stderr = stream
        handlers = [logging.StreamHandler(stream)]
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    log = logging.getLogger("polysent")
    # Where a job ran: on a cluster, the first thing to match a log with its scheduler record.
    where = f"host {socket.gethostname()}, pid {os.getpid()}"
    if os.environ.get("SLURM_JOB_ID"):
        where += f", SLURM_JOB_ID={os.environ['SLURM_JOB_ID']}"
    log.info("job started: %s", where)
    return log


def shard_job(snakemake, out) -> dict:
    """The leading arguments of every per-shard stage's ``run_shard`` (media, acoustic, visual,
    align), taken from its job, with ``out`` its output.

    Their rules share one convention (``input.manifest``, the ``{shard}`` wildcard, ``output.qc``,
    ``params.cfg``, ``threads``); it is mapped onto the library's parameter names here, once.
    """
    return {
        "manifest": snakemake.input.manifest,
        "shard": snakemake.wildcards.shard,
        "out": out,
        "qc_path": snakemake.output.qc,
        "cfg": snakemake.params.cfg,
        "threads": snakemake.threads,
    }


def language_job(snakemake, out) -> dict:
    """The leading arguments of every per-language stage's ``run_language`` (text, store), taken
    from its job (``input.manifest``, the ``{lang}`` wildcard, ``output.qc``, ``params.cfg``),
    with ``out`` its output."""
    return {
        "manifest": snakemake.input.manifest,
        "lang": snakemake.wildcards.lang,
        "out": out,
        "qc_path": snakemake.output.qc,
        "cfg": snakemake.params.cfg,
    }
