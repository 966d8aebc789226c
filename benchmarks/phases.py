"""Where the time of a run goes, phase by phase, in µs/task, beside the floor.

    python benchmarks/phases.py                     # layered 10^5, caps 10 and 1000, 7 reps
    python benchmarks/phases.py --shape chain --n 100000 --reps 5

One process; each repetition times, in turn: compiling the graph alone
(``build_graph``, which every ``execute()`` does first), ``execute()``,
reading every status through ``task_results.items()``, the bulk
``result.statuses()``, and the floor (``floor.py``) on the same input.
"run" is ``execute()`` minus the compile time: taking tasks, awaiting
bodies, recording outcomes and releasing successors. Medians over the
repetitions; the garbage collector stays on, as callers run with it.
For the cost of a whole run in a fresh process, against 0.3.0, use
``what_a_user_pays.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from typing import Any

import graphs
from floor import run_floor

from wave_executor import DAGExecutor, WaveConfig
from wave_executor._core.graph import build_graph

PHASES = ("compile", "run", "execute", "read items()", "statuses()", "floor")


async def noop(task_id: str, spec: Any) -> None:
    return


async def measure(tasks: Any, deps: Any, cap: int, reps: int) -> dict[str, float]:
    """Median µs/task of each phase over ``reps`` repetitions."""
    n = len(tasks)
    config = WaveConfig(
        max_parallel_per_wave=cap,
        max_retries=0,
        adaptive_batch_window=False,
        circuit_breaker_enabled=False,
    )
    executor = DAGExecutor(config=config)
    samples: dict[str, list[float]] = {phase: [] for phase in PHASES}
    clock = time.perf_counter
    for _ in range(reps):
        gc.collect()
        t0 = clock()
        build_graph(tasks, deps)
        compiled = clock() - t0
        gc.collect()
        t0 = clock()
        result = await executor.execute(tasks, deps, noop)
        t1 = clock()
        statuses = {t: r.status for t, r in result.task_results.items()}
        t2 = clock()
        bulk = result.statuses()
        t3 = clock()
        if len(statuses) != n or len(bulk) != n or result.total_failed:
            raise RuntimeError("not every task succeeded")
        del result, statuses, bulk
        gc.collect()
        t4 = clock()
        floor = await run_floor(tasks, deps, noop, cap)
        t5 = clock()
        del floor
        per = 1e6 / n
        samples["compile"].append(compiled * per)
        samples["execute"].append((t1 - t0) * per)
        samples["run"].append((t1 - t0 - compiled) * per)
        samples["read items()"].append((t2 - t1) * per)
        samples["statuses()"].append((t3 - t2) * per)
        samples["floor"].append((t5 - t4) * per)
    return {phase: statistics.median(values) for phase, values in samples.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", choices=sorted(graphs.SHAPES), default="layered")
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--caps", default="10,1000")
    p.add_argument("--reps", type=int, default=7)
    args = p.parse_args()
    tasks, deps = graphs.build(args.shape, args.n, 0)
    print(f"{args.shape} {args.n:,} no-op tasks, µs/task, medians of {args.reps} repetitions")
    print()
    print("| cap | " + " | ".join(PHASES) + " | execute + read / floor |")
    print("|---:|" + "---:|" * (len(PHASES) + 1))
    for cap in (int(c) for c in args.caps.split(",")):
        m = asyncio.run(measure(tasks, deps, cap, args.reps))
        ratio = (m["execute"] + m["read items()"]) / m["floor"]
        cells = " | ".join(f"{m[phase]:.2f}" for phase in PHASES)
        print(f"| {cap} | {cells} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
