"""One overhead measurement in this (fresh) process; prints one JSON line.

    python benchmarks/overhead.py --impl ours --shape layered --n 100000 --cap 10 --metric time

``--metric time``: wall time of ``await execute(...)`` (``us_per_task``), then of reading every
task's status, ``{t: r.status for t, r in result.task_results.items()}`` (``read_us_per_task``),
and of both (``both_us_per_task``), with a no-op ``async`` body; the graph is built and the
executor constructed before the clock starts. Reported as µs/task.

``--metric memory`` (Linux): peak resident-memory growth during ``execute``, in bytes/task.
The input graph is built first and belongs to the caller, so it is excluded; whatever the
scheduler allocates, including the result object it returns (still alive when the peak is
read), is included. Method: write ``5`` to ``/proc/self/clear_refs`` to reset the
high-water mark ``VmHWM`` to the current RSS, read ``VmRSS`` just before ``execute`` and
``VmHWM`` just after it. Memory and time are measured in separate processes so that neither
disturbs the other, and each process measures one run so no earlier run's heap is reused.

The garbage collector is left at its defaults (no ``gc.freeze``, no ``gc.disable``): callers
run with it on. Only a ``gc.collect()`` after building the input, so that collecting the
builder's garbage is not billed to the scheduler.

Only the chosen implementation is imported (see ``impls.py``), so this script also runs under
0.3.0's virtual environment, where the repo's package is not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import graphs
from impls import IMPLS, count_successes, make_runner, read_statuses

PROC_STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line; the defaults are the headline configuration (layered, 10^5, cap 10)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--impl", choices=IMPLS, required=True)
    p.add_argument("--shape", choices=sorted(graphs.SHAPES), default="layered")
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--cap", type=int, default=10, help="max_parallel_per_wave / floor workers")
    p.add_argument("--metric", choices=("time", "memory"), default="time")
    p.add_argument("--seed", type=int, default=0, help="graph generator seed")
    return p.parse_args(argv)


def config_overrides(cap: int) -> dict[str, Any]:
    """Use the same knobs for both libraries: fixed window, no retries, no circuit breaker.

    0.3.0's adaptive window shrinks to 2 slots under backlog, and its circuit breaker keeps one
    object per task id; both would measure features rather than scheduling overhead, so they
    are off for both libraries (ours ignores keys it does not have; they are reported).
    """
    return {
        "max_parallel_per_wave": cap,
        "max_retries": 0,
        "adaptive_batch_window": False,
        "circuit_breaker_enabled": False,
    }


async def noop(task_id: str, spec: Any) -> None:
    """Return at once (the task body), so that only scheduling is measured."""
    return


def read_status_kb(field: str) -> int:
    """Read a ``kB`` field of ``/proc/self/status``, e.g. ``VmRSS`` or ``VmHWM``."""
    for line in PROC_STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found in {PROC_STATUS}")


def reset_peak_rss() -> None:
    """Make ``VmHWM`` equal to the current RSS (Linux >= 4.0: ``echo 5 > clear_refs``)."""
    CLEAR_REFS.write_text("5")


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Build the input, run ``execute`` once and return the measurement as a dict."""
    tasks, deps = graphs.build(args.shape, args.n, args.seed)
    runner, info = make_runner(args.impl, config_overrides(args.cap))
    gc.collect()
    out: dict[str, Any] = {**info, "shape": args.shape, "n": args.n, "cap": args.cap}
    out["edges"] = graphs.edge_count(deps)
    if args.metric == "memory":
        reset_peak_rss()
        rss_before_kb = read_status_kb("VmRSS")
        t0 = time.perf_counter()
        result = await runner(tasks, deps, noop)
        elapsed = time.perf_counter() - t0
        hwm_after_kb = read_status_kb("VmHWM")
        peak = (hwm_after_kb - rss_before_kb) * 1024
        out.update(metric="memory", peak_bytes=peak, bytes_per_task=peak / max(args.n, 1))
        out["rss_before_bytes"] = rss_before_kb * 1024
    else:
        t0 = time.perf_counter()
        result = await runner(tasks, deps, noop)
        t1 = time.perf_counter()
        statuses = read_statuses(args.impl, result)
        t2 = time.perf_counter()
        elapsed = t1 - t0
        per = 1e6 / max(args.n, 1)
        out.update(
            metric="time",
            us_per_task=elapsed * per,
            read_us_per_task=(t2 - t1) * per,
            both_us_per_task=(t2 - t0) * per,
        )
        if len(statuses) != args.n:
            raise RuntimeError(f"read {len(statuses)} statuses of {args.n} tasks")
    out["elapsed_s"] = elapsed
    out["successful"] = count_successes(args.impl, result)
    out["ok"] = out["successful"] == args.n
    return out


def main(argv: list[str] | None = None) -> int:
    """Print one JSON line; exit 1 if not every task succeeded."""
    args = parse_args(argv)
    out = asyncio.run(measure(args))
    out["python"] = platform.python_version()
    print(json.dumps(out), flush=True)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
