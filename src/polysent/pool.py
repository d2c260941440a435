"""Per-video work of a shard on a pool of processes, results in task order."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor

from threadpoolctl import threadpool_limits


def single_thread_blas() -> None:
    """Worker initialiser: one process per core, so nested BLAS/OpenMP threads would oversubscribe.

    A forked worker inherits the thread pools of the libraries its parent already loaded (numpy's
    OpenBLAS, OpenMP), which read ``OMP_NUM_THREADS`` & co. only when they load: setting the
    variables here limits just the libraries loaded later. ``threadpool_limits`` resizes the
    loaded pools themselves (tests/test_pool.py checks it in a worker), and torch's intra-op
    pool is set when the parent had imported torch.
    """
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    threadpool_limits(limits=1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def map_in_order(fn: Callable, tasks: list[tuple], processes: int) -> Iterable:
    """``fn(*task)`` for each task, inline for one process (or one task), else in a pool of
    ``processes`` single-threaded workers; results are yielded in task order as they complete."""
    if processes <= 1 or len(tasks) <= 1:
        return (fn(*t) for t in tasks)
    pool = ProcessPoolExecutor(min(processes, len(tasks)), initializer=single_thread_blas)
    futures = [pool.submit(fn, *t) for t in tasks]

    def results() -> Iterator:
        try:
            for f in futures:
                yield f.result()
        finally:
            pool.shutdown()

    return results()
