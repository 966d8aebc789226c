"""DaskBackend against Dask's own futures API, and CPU-bound work on other cores.

    .venv/bin/python benchmarks/dask_backend.py            # 10,000 no-op tasks, caps 1000 and 10
    .venv/bin/python benchmarks/dask_backend.py --n 2000 --reps 1 --cpu-tasks 0

One process, one ``LocalCluster`` of 2 worker processes on loopback (started once, not
timed). Part 1: a random layered graph of no-op tasks (``graphs.layered``), run by
``DAGExecutor`` with ``DaskBackend(keep_outputs=True)`` at each cap, with early submission
(the default: a downstream task is submitted once its upstreams are submitted) and
without it (``early_submission=False``: once they have succeeded), with the default
``DaskBackend`` (every output fetched) at the first cap, and submitted directly with
``client.submit`` (dependencies as future arguments, every task at once, then waited for).
The same for a chain of ``--chain`` no-op tasks (the latency of each edge, not the
cluster's throughput, decides it).
Part 2: a layered graph of CPU-bound tasks (a pure-Python loop), run inline (one core), on
the process backend (2 processes) and on the cluster (2 single-threaded workers). Each
measurement is repeated ``--reps`` times, interleaved; the table shows medians.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from collections.abc import Callable
from typing import Any

import distributed
from graphs import chain, layered

from wave_executor import DAGExecutor, WaveConfig
from wave_executor.backends import ProcessBackend
from wave_executor.backends.dask import DaskBackend


def noop(task_id: Any, spec: Any) -> None:
    return None


def noop_after(*upstream: Any) -> None:
    return None


def burn(task_id: Any, spec: Any) -> int:
    total = 0
    for k in range(spec):
        total = (total + k * k) % 1_000_003
    return total


async def burn_inline(task_id: Any, spec: Any) -> int:
    return burn(task_id, spec)


async def dask_direct(client: distributed.Client, tasks: dict[str, Any], deps: Any) -> float:
    """Every task submitted at once with its upstream futures as arguments; wait for all."""
    began = time.perf_counter()
    futures: dict[str, Any] = {}
    for t in tasks:  # ids are in a topological order
        ups = [futures[d] for d in deps.get(t, ())]
        futures[t] = client.submit(noop_after, *ups, key=f"direct-{t}-{began}", pure=False)
    await distributed.wait(list(futures.values()))
    elapsed = time.perf_counter() - began
    await client.cancel(list(futures.values()))
    return elapsed


async def ours(
    tasks: dict[str, Any], deps: Any, body: Callable[..., Any], cap: int, **kw: Any
) -> float:
    executor = DAGExecutor(WaveConfig(max_parallel_per_wave=cap))
    began = time.perf_counter()
    result = await executor.execute(tasks, deps, body, **kw)
    elapsed = time.perf_counter() - began
    assert result.total_successful == len(tasks), result.to_dict()
    return elapsed


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--caps", default="1000,10")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--chain", type=int, default=200)
    p.add_argument("--cpu-tasks", type=int, default=24)
    p.add_argument("--cpu-steps", type=int, default=4_000_000)
    args = p.parse_args()
    caps = [int(c) for c in args.caps.split(",")]
    tasks, deps = layered(args.n, seed=1)
    chain_tasks, chain_deps = chain(args.chain)
    cpu_graph = layered(args.cpu_tasks, seed=2)
    cpu_tasks = dict.fromkeys(cpu_graph[0], args.cpu_steps)
    times: dict[str, list[float]] = {}
    submitted_early: dict[int, list[int]] = {}

    def note(name: str, seconds: float) -> None:
        times.setdefault(name, []).append(seconds)
        print(f"{name}: {seconds:.2f} s", flush=True)

    async with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=":0", asynchronous=True, silence_logs=logging.ERROR,
    ) as cluster, distributed.Client(cluster, asynchronous=True) as client:  # fmt: skip
        backend = DaskBackend(client)
        await ours(dict(list(tasks.items())[:200]), {}, noop, 100, backend=backend)  # warm up
        with ProcessBackend(max_workers=2) as processes:
            await ours({f"w{i}": 1 for i in range(4)}, {}, burn, 4, backend=processes)  # start it
            for _ in range(args.reps):
                note("dask futures API", await dask_direct(client, tasks, deps))
                for cap in caps:
                    early = DaskBackend(client, keep_outputs=True)
                    note(f"early cap {cap}", await ours(tasks, deps, noop, cap, backend=early))
                    submitted_early.setdefault(cap, []).append(early.submitted_early)
                    late = DaskBackend(client, keep_outputs=True, early_submission=False)
                    note(f"late cap {cap}", await ours(tasks, deps, noop, cap, backend=late))
                note(
                    f"DaskBackend cap {caps[0]}",
                    await ours(tasks, deps, noop, caps[0], backend=backend),
                )
                if args.chain:
                    note("chain direct", await dask_direct(client, chain_tasks, chain_deps))
                    for name, on in (("early", True), ("late", False)):
                        kept = DaskBackend(client, keep_outputs=True, early_submission=on)
                        elapsed = await ours(chain_tasks, chain_deps, noop, caps[0], backend=kept)
                        note(f"chain {name}", elapsed)
                if not args.cpu_tasks:
                    continue
                cpu = (cpu_tasks, cpu_graph[1])
                note("cpu inline", await ours(*cpu, burn_inline, 2))
                note("cpu process backend", await ours(*cpu, burn, 2, backend=processes))
                note("cpu DaskBackend", await ours(*cpu, burn, 2, backend=backend))
    med = {k: statistics.median(v) for k, v in times.items()}
    direct = med["dask futures API"]
    print(f"\n{args.n:,} no-op tasks, random layered graph, 2 workers; medians of {args.reps}\n")
    print("| run | wall s | / Dask futures API |\n|---|---:|---:|")
    print(f"| Dask futures API (all submitted at once) | {direct:.2f} | 1.00x |")
    for cap in caps:
        counts = ", ".join(f"{c:,}" for c in submitted_early[cap])
        for name, what in (
            ("early", f"early submission ({counts} submitted early)"),
            ("late", "early_submission=False"),
        ):
            t = med[f"{name} cap {cap}"]
            print(
                f"| keep_outputs=True, {what}, max_parallel_per_wave={cap} "
                f"| {t:.2f} | {t / direct:.2f}x |"
            )
    t = med[f"DaskBackend cap {caps[0]}"]
    print(f"| default (outputs fetched), cap {caps[0]} | {t:.2f} | {t / direct:.2f}x |")
    if args.chain:
        direct = med["chain direct"]
        print(
            f"\nA chain of {args.chain} no-op tasks, cap {caps[0]}\n\n"
            "| run | wall s | / Dask futures API |\n|---|---:|---:|\n"
            f"| Dask futures API | {direct:.2f} | 1.00x |"
        )
        for name, what in (("early", "early submission"), ("late", "early_submission=False")):
            t = med[f"chain {name}"]
            print(f"| keep_outputs=True, {what} | {t:.2f} | {t / direct:.2f}x |")
    if not args.cpu_tasks:
        return
    inline = med["cpu inline"]
    print(
        f"\n{args.cpu_tasks} CPU-bound tasks ({args.cpu_steps:,} loop steps each), layered\n\n"
        "| run | wall s | speed-up over inline |\n|---|---:|---:|"
    )
    for name in ("cpu inline", "cpu process backend", "cpu DaskBackend"):
        print(f"| {name[4:]} | {med[name]:.2f} | {inline / med[name]:.2f}x |")


if __name__ == "__main__":
    asyncio.run(main())
