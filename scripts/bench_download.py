"""Benchmark the fault-tolerant media fetcher on a loopback server; prints a Markdown table.

    .venv/bin/python scripts/bench_download.py [--files 40] [--mb 2] [--repeat 3]

Serves --files bodies of --mb MiB from the fault-injecting test server (127.0.0.1 only); a
quarter of the files fail once (500, reset, truncated body, 0.3 s stall against a 0.2 s read
timeout) before succeeding. Reports the median wall time, MiB/s and total HTTP requests per
concurrency setting, and checks every file is byte-identical. Backoff base 0.05 s, max 0.2 s.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from polysent.config import complete
from polysent.corpus.download import Fetcher, Job  # noqa: E402
from test_moseas_support import FaultServer  # noqa: E402


def run(files: int, mb: float, concurrency: int, seed: int) -> tuple[float, int]:
    rng = random.Random(seed)
    bodies = {f"/v{i}.mp4": rng.randbytes(int(mb * 2**20)) for i in range(files)}
    kinds = ["500", "reset", "truncate", "timeout"]
    faults = {p: [kinds[(i // 4) % 4]] for i, p in enumerate(bodies) if i % 4 == 0}
    settings = {
        **complete({}, "corpus", "moseas", "download"),
        "retries": 4,
        "backoff_base_s": 0.05,
        "backoff_max_s": 0.2,
        "read_timeout_s": 0.2,
        "concurrency": concurrency,
        "rate_per_s": 0,
        "chunk_bytes": 1 << 16,
    }
    with tempfile.TemporaryDirectory() as tmp, FaultServer(bodies, faults=faults, stall_s=0.3) as srv:
        jobs = [Job(p, f"{tmp}{p}", [{"kind": "http", "location": srv.url(p)}]) for p in bodies]
        t0 = time.perf_counter()
        out = Fetcher(settings, seed=seed).run(jobs)
        wall = time.perf_counter() - t0
        assert all(o.ok for o in out), [o.reason for o in out if not o.ok]
        assert all(Path(f"{tmp}{p}").read_bytes() == b for p, b in bodies.items())
        return wall, len(srv.requests)


def main() -> None:
    import logging

    logging.disable(logging.WARNING)  # the per-retry warnings are the point, not the output
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=40)
    ap.add_argument("--mb", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}")
    print(f"{args.files} files x {args.mb} MiB, 25 % with one fault; median of {args.repeat}\n")
    print("| concurrency | wall s (median) | MiB/s | HTTP requests |")
    print("|---|---|---|---|")
    for conc in (1, 4):
        walls, reqs = zip(*(run(args.files, args.mb, conc, seed) for seed in range(args.repeat)))
        wall = statistics.median(walls)
        print(f"| {conc} | {wall:.2f} | {args.files * args.mb / wall:.0f} | {reqs[0]} |")


if __name__ == "__main__":
    main()
