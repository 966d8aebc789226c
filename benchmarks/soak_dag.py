"""Soak: a DAG of 10^6 tasks where 1 % of the attempts fail and are retried.

    .venv/bin/python benchmarks/soak_dag.py            # 10^6 tasks
    .venv/bin/python benchmarks/soak_dag.py --quick    # 10^5 tasks

The graph is layered, ``--width`` tasks a layer (1,000), each task
depending on two tasks of the layer before it. A task's first attempt
fails for one task in a hundred (chosen by its number), and its retry
(no backoff) succeeds, so the run ends with every task a success and
``--tasks // 100`` retries. ``max_parallel_per_wave`` is 1,000. While the
run goes, a sampler task records, every ``--every`` seconds: tasks done,
resident memory (``VmRSS``), asyncio tasks alive, seconds since the start;
the script prints the table, then checks that every task succeeded and
that no asyncio task is left.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from pathlib import Path
from typing import Any

from wave_executor import DAGExecutor, RetryPolicy, WaveConfig

PROC_STATUS = Path("/proc/self/status")


def rss_kib() -> int:
    try:
        for line in PROC_STATUS.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def layered(n: int, width: int) -> tuple[dict[int, None], dict[int, tuple[int, int]]]:
    tasks = dict.fromkeys(range(n))
    deps = {i: (i - width, i - width + (1 if i % width else width - 1)) for i in range(width, n)}
    return tasks, deps


async def soak(n: int, width: int, every: float) -> bool:
    built = time.perf_counter()
    tasks, deps = layered(n, width)
    gc.collect()
    rows: list[tuple[int, int, int, float]] = [(0, rss_kib(), len(asyncio.all_tasks()), 0.0)]
    print(f"graph of {n:,} tasks built in {time.perf_counter() - built:.1f} s")
    done = 0
    failed_once: set[int] = set()

    async def body(task_id: int, spec: Any) -> int:
        nonlocal done
        if task_id % 100 == 37 and task_id not in failed_once:
            failed_once.add(task_id)
            raise ConnectionError("a transient failure")
        done += 1
        return task_id

    began = time.perf_counter()

    async def sample() -> None:
        while True:
            await asyncio.sleep(every)
            rows.append((done, rss_kib(), len(asyncio.all_tasks()), time.perf_counter() - began))

    config = WaveConfig(
        max_parallel_per_wave=1000,
        retry_policy=RetryPolicy(max_retries=2, base_delay=0.0),
        emit_events=False,
        total_execution_timeout=3600.0,
    )
    sampler = asyncio.ensure_future(sample())
    try:
        result = await DAGExecutor(config).execute(tasks, deps, body)
    finally:
        sampler.cancel()
        await asyncio.wait({sampler})
    seconds = time.perf_counter() - began
    succeeded, successes = result.succeeded, result.total_successful
    del result  # the last row: what is left once the caller drops the result
    gc.collect()
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    rows.append((done, rss_kib(), len(left) + 1, seconds))

    retries = len(failed_once)
    print(f"{n:,} tasks, {retries:,} retried, {seconds:.1f} s ({n / seconds:,.0f} tasks/s)")
    print(f"| {'tasks done':>10} | {'RSS MiB':>8} | {'asyncio tasks':>13} | {'s':>7} |")
    print(f"|{'-' * 11}:|{'-' * 9}:|{'-' * 14}:|{'-' * 8}:|")
    for finished, rss, alive, s in rows:
        print(f"| {finished:>10,} | {rss / 1024:>8.1f} | {alive:>13,} | {s:>7.1f} |")
    print("(first row: graph built, before execute(); last row: result dropped)")
    ok = done == n == successes and succeeded and retries == n // 100 and not left
    print(f"all succeeded: {succeeded}; asyncio tasks left: {len(left)}")
    print("PASS" if ok else "FAIL")
    return ok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=10**6)
    p.add_argument("--width", type=int, default=1000)
    p.add_argument("--every", type=float, default=None, help="seconds between samples")
    p.add_argument("--quick", action="store_true", help="10^5 tasks")
    args = p.parse_args()
    if args.quick:
        args.tasks = 10**5
    every = args.every if args.every is not None else (0.2 if args.quick else 1.0)
    ok = asyncio.run(soak(args.tasks, args.width, every))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
