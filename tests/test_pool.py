"""polysent.pool: workers run single-threaded, results in task order."""

from __future__ import annotations

import numpy as np
import threadpoolctl
import torch

from polysent.pool import map_in_order


def _threads(task: int) -> tuple[int, list[int], int]:
    import torch

    pools = [d["num_threads"] for d in threadpoolctl.threadpool_info()]
    return task, pools, torch.get_num_threads()


def test_forked_workers_run_their_inherited_thread_pools_with_one_thread():
    """numpy's BLAS and OpenMP are loaded (and torch imported) in the parent before the fork, so
    their pools already exist in the worker: only threadpool_limits, not the environment
    variables, shrinks them."""
    np.ones((64, 64)) @ np.ones((64, 64))  # make sure the BLAS pool is initialised in the parent
    with threadpoolctl.threadpool_limits(limits=2):
        torch.set_num_threads(2)
        results = list(map_in_order(_threads, [(i,) for i in range(3)], 2))
    assert [r[0] for r in results] == [0, 1, 2]
    for _task, pools, torch_threads in results:
        assert pools and all(n == 1 for n in pools), pools
        assert torch_threads == 1
