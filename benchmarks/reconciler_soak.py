"""Soak: crash loops under "always" with zero backoff must leave memory flat.

    .venv/bin/python benchmarks/reconciler_soak.py                  # 10,000 restarts, ~10 s
    .venv/bin/python benchmarks/reconciler_soak.py --restarts 100000 --tasks 50

``--tasks`` tasks crash the moment they start, under policy "always" with
``restart_backoff_base=0`` and an attempt ceiling high enough never to block,
so the reconciler restarts them as fast as it can, with an event callback
attached, until ``--restarts`` restarts have happened. Memory is sampled
every tenth of the way, after a ``gc.collect()``: Python heap in use
(``tracemalloc``) and resident memory (``VmRSS``). The first tenth is the
warm-up; the verdict compares the last sample with it. After ``stop()``,
the script checks that no asyncio task is left.

0.3.0 is not run: it restarts at most once per 2 s poll tick (10,000
restarts would take hours) and blocks a task after 5 runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import tracemalloc
from pathlib import Path
from typing import Any

from wave_executor.reconciler import WaveReconciler

PROC_STATUS = Path("/proc/self/status")


def rss_kib() -> int:
    try:
        for line in PROC_STATUS.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


async def soak(restarts: int, tasks: int, tolerance_kib: int) -> bool:
    target = restarts + tasks  # the first run of each task is not a restart
    step = max(target // 10, 1)
    starts = 0
    events = 0
    reached = asyncio.Event()
    samples: list[tuple[int, int, int, float]] = []  # starts, heap KiB, RSS KiB, seconds

    async def crash(task_id: Any, spec: Any) -> None:
        nonlocal starts
        starts += 1
        if starts % step == 0 or starts == target:
            reached.set()
        raise RuntimeError("crash")

    def count(event_type: str, event: dict[str, Any]) -> None:
        nonlocal events
        events += 1

    r = WaveReconciler(crash)
    r.on_event(count)
    await r.start()
    began = time.perf_counter()
    await r.update(
        {f"t{i}": {} for i in range(tasks)},
        policies="always",
        max_restart_attempts=10**9,
        restart_backoff_base=0,
    )
    while starts < target:
        reached.clear()
        await reached.wait()
        gc.collect()
        heap = tracemalloc.get_traced_memory()[0] // 1024
        samples.append((starts, heap, rss_kib(), time.perf_counter() - began))
    await r.stop()
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    status = r.get_status()

    print(f"{tasks} tasks, {starts - tasks:,} restarts, {events:,} events")
    print(f"{'starts':>8} {'heap KiB':>9} {'RSS KiB':>9} {'seconds':>8}")
    for n, heap, rss, seconds in samples:
        print(f"{n:>8,} {heap:>9,} {rss:>9,} {seconds:>8.2f}")
    warm, last = samples[0], samples[-1]
    growth = last[1] - warm[1]
    rate = (last[0] - warm[0]) / max(last[3] - warm[3], 1e-9)
    print(f"heap growth after warm-up: {growth:+,} KiB (tolerance {tolerance_kib} KiB)")
    print(f"RSS growth after warm-up: {last[2] - warm[2]:+,} KiB")
    print(f"restart rate: {rate:,.0f}/s (with tracemalloc on)")
    print(f"statuses after stop: {dict(sorted((str(k), v) for k, v in _counts(status)))}")
    print(f"asyncio tasks left after stop(): {len(leftover)}")
    ok = growth <= tolerance_kib and not leftover
    print("PASS" if ok else "FAIL")
    return ok


def _counts(status: Any) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for value in status.task_states.values():
        counts[str(value)] = counts.get(str(value), 0) + 1
    return list(counts.items())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--restarts", type=int, default=10_000)
    p.add_argument("--tasks", type=int, default=10)
    p.add_argument("--tolerance-kib", type=int, default=64, help="allowed heap growth")
    args = p.parse_args()
    tracemalloc.start()
    ok = asyncio.run(soak(args.restarts, args.tasks, args.tolerance_kib))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
