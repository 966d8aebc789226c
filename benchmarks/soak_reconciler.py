"""Soak: a reconciler of 1,000 tasks through 100,000 restarts and repeated hot updates.

    .venv/bin/python benchmarks/soak_reconciler.py            # 1,000 tasks, 100,000 restarts
    .venv/bin/python benchmarks/soak_reconciler.py --quick    # 100 tasks, 5,000 restarts

Every task runs under policy "always" with zero backoff, all of them at
once (``max_parallel_per_wave`` is the task count): it exits at once
(one in seven crashes instead), and the reconciler restarts it, as fast as
it can, with an event callback attached. Every twentieth of the way, a hot
``update()`` changes the spec of a tenth of the tasks, removes 5 % and adds
as many new ones, so the task set churns while it restarts. At each of
those points the script samples, after a ``gc.collect()``: restarts so far,
resident memory (``VmRSS``), asyncio tasks alive (then, and the most seen
since the last sample), and the seconds taken,
and prints the table. After ``stop()`` it checks that no asyncio task of
the reconciler is left. The verdict compares the last RSS sample with the
first after warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from pathlib import Path
from typing import Any

from wave_executor import WaveConfig
from wave_executor.reconciler import WaveReconciler

PROC_STATUS = Path("/proc/self/status")
SAMPLES = 20


def rss_kib() -> int:
    try:
        for line in PROC_STATUS.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def desired(ids: list[str], version: dict[str, int]) -> dict[str, dict[str, int]]:
    return {t: {"v": version.get(t, 0)} for t in ids}


async def soak(tasks: int, restarts: int, tolerance_kib: int) -> bool:
    runs = 0
    events = 0
    step = max(restarts // SAMPLES, 1)
    reached = asyncio.Event()
    next_mark = tasks + step

    peak = 0  # most asyncio tasks seen alive since the last sample (looked at every 97th run)

    async def body(task_id: str, spec: Any) -> None:
        nonlocal runs, peak
        runs += 1
        if runs % 97 == 0:
            peak = max(peak, len(asyncio.all_tasks()))
        if runs >= next_mark:
            reached.set()
        await asyncio.sleep(0)
        if hash(task_id) % 7 == 0:
            raise RuntimeError("crash")

    def count(event_type: str, event: dict[str, Any]) -> None:
        nonlocal events
        events += 1

    r = WaveReconciler(body, WaveConfig(max_parallel_per_wave=tasks), poll_interval_s=5.0)
    r.on_event(count)
    ids = [f"t{i}" for i in range(tasks)]
    fresh = tasks
    version: dict[str, int] = {}
    settings = {"policies": "always", "max_restart_attempts": 10**9, "restart_backoff_base": 0}
    await r.start()
    began = time.perf_counter()
    await r.update(desired(ids, version), **settings)  # type: ignore[arg-type]
    rows: list[tuple[int, int, int, int, int, float]] = []  # restarts, updates, RSS, tasks, peak, s
    updates = 0
    while runs - tasks < restarts:
        reached.clear()
        await reached.wait()
        next_mark = runs + step
        gc.collect()
        alive = len(asyncio.all_tasks())
        rows.append((runs - tasks, updates, rss_kib(), alive, peak, time.perf_counter() - began))
        peak = 0
        # a hot update: a tenth of the specs change, 5 % of the tasks go, as many come
        churn = max(tasks // 20, 1)
        for t in ids[updates % 10 :: 10]:
            version[t] = version.get(t, 0) + 1
        gone = set(ids[:churn])
        ids = [t for t in ids if t not in gone] + [f"t{fresh + i}" for i in range(churn)]
        fresh += churn
        for t in gone:
            version.pop(t, None)
        await r.update(desired(ids, version), **settings)  # type: ignore[arg-type]
        updates += 1
    await r.stop()
    seconds = time.perf_counter() - began
    gc.collect()
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    rows.append((runs - tasks, updates, rss_kib(), len(left) + 1, peak, seconds))

    print(f"{tasks:,} tasks, {runs - tasks:,} restarts, {updates} hot updates, {events:,} events")
    print(
        f"| {'restarts':>9} | {'updates':>7} | {'RSS MiB':>8} | {'asyncio tasks':>13} "
        f"| {'peak since last':>15} | {'s':>7} |"
    )
    print(f"|{'-' * 10}:|{'-' * 8}:|{'-' * 9}:|{'-' * 14}:|{'-' * 16}:|{'-' * 8}:|")
    for done, n, rss, alive, most, s in rows:
        print(
            f"| {done:>9,} | {n:>7} | {rss / 1024:>8.1f} | {alive:>13,} | {most:>15,} | {s:>7.1f} |"
        )
    warm, last = rows[min(2, len(rows) - 1)], rows[-1]
    growth = last[2] - warm[2]
    print(f"(last row: after stop(); RSS growth after warm-up {growth:+,} KiB)")
    print(f"restarts per second: {(runs - tasks) / seconds:,.0f}")
    print(f"asyncio tasks left after stop(): {len(left)}")
    ok = growth <= tolerance_kib and not left
    print("PASS" if ok else "FAIL")
    return ok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=1000)
    p.add_argument("--restarts", type=int, default=100_000)
    p.add_argument("--quick", action="store_true", help="100 tasks, 5,000 restarts")
    p.add_argument("--tolerance-kib", type=int, default=8 * 1024, help="allowed RSS growth")
    args = p.parse_args()
    if args.quick:
        args.tasks, args.restarts = 100, 5000
    ok = asyncio.run(soak(args.tasks, args.restarts, args.tolerance_kib))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
