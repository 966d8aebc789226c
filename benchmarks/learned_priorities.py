"""Learned priorities: a second run ordered by the first run's recorded durations.

    .venv/bin/python benchmarks/learned_priorities.py            # virtual clock and real time
    .venv/bin/python benchmarks/learned_priorities.py --virtual  # virtual clock only (instant)

For each graph and cap, three executions of the same tasks:

* **none**: no cost hint (ranks count tasks); it runs with a store, which records durations;
* **learned**: a second run on that store, no hint given: the engine reads the first
  run's durations and ranks by them;
* **true**: ``priority_costs`` = the planned durations, no store.

Graphs: "misleading" (20 long independent tasks and 12 chains of 15 short ones: counting
tasks puts the chains first and the long tasks last) and the makespan graphs of
``makespan.py`` (200-task random DAGs, lognormal durations with mean 20 ms, sigma 1).
Caps 4 and 16, five seeds. The virtual clock (``wave_executor.testing``, ``MemoryStore``)
gives exact makespans; real time (``SQLiteStore`` in a temporary folder, the makespan
graphs, median of ``--reps`` repetitions) includes the store and the machine's noise.
Reported: makespans (mean over seeds), learned / true (1.00: as good as knowing the true
durations) and the gain of learned over none.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import graphs
from makespan import durations as makespan_durations

from wave_executor import DAGExecutor, WaveConfig
from wave_executor.store import MemoryStore, SQLiteStore
from wave_executor.testing import run_virtual

CAPS = (4, 16)
SEEDS = (0, 1, 2, 3, 4)
Graph = tuple[dict[str, Any], dict[str, list[str]], dict[str, float]]


def misleading(seed: int) -> Graph:
    """20 long tasks (5-10 s) with no dependencies, 12 chains of 15 short tasks (0.1-0.5 s)."""
    rng = random.Random(seed)
    dur = {f"long{i}": rng.uniform(5.0, 10.0) for i in range(20)}
    deps: dict[str, list[str]] = {}
    for c in range(12):
        for i in range(15):
            dur[f"c{c}-{i}"] = rng.uniform(0.1, 0.5)
            if i:
                deps[f"c{c}-{i}"] = [f"c{c}-{i - 1}"]
    return dict.fromkeys(dur), deps, dur


def makespan_graph(seed: int) -> Graph:
    tasks, deps = graphs.random_dag(200, seed)
    return tasks, deps, makespan_durations(tasks, seed)


GRAPHS: dict[str, Callable[[int], Graph]] = {"misleading": misleading, "makespan": makespan_graph}


def config(cap: int) -> WaveConfig:
    return WaveConfig(
        max_parallel_per_wave=cap,
        max_retries=0,
        adaptive_batch_window=False,
        circuit_breaker_enabled=False,
    )


async def three_runs(graph: Graph, cap: int, store: Any) -> dict[str, float]:
    """Makespans of none, learned and true, in the loop's seconds."""
    tasks, deps, dur = graph

    async def body(task_id: str, spec: Any) -> None:
        await asyncio.sleep(dur[task_id])

    loop = asyncio.get_running_loop()
    out: dict[str, float] = {}
    runs: Sequence[tuple[str, dict[str, Any]]] = (
        ("none", {"store": store, "run_id": "first"}),
        ("learned", {"store": store, "run_id": "second"}),
        ("true", {"priority_costs": dur}),
    )
    for name, kwargs in runs:
        t0 = loop.time()
        result = await DAGExecutor(config(cap)).execute(tasks, deps, body, **kwargs)
        out[name] = loop.time() - t0
        assert result.total_successful == len(tasks)
    return out


def virtual(graph: Graph, cap: int) -> dict[str, float]:
    async def main() -> dict[str, float]:
        async with MemoryStore() as store:
            return await three_runs(graph, cap, store)

    return run_virtual(main())[0]


def real(graph: Graph, cap: int, reps: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {"none": [], "learned": [], "true": []}
    for _ in range(reps):
        with tempfile.TemporaryDirectory() as folder:

            async def main(path: Path = Path(folder) / "runs.db") -> dict[str, float]:
                async with SQLiteStore(path) as store:
                    return await three_runs(graph, cap, store)

            for name, value in asyncio.run(main()).items():
                samples[name].append(value)
    return {name: statistics.median(values) for name, values in samples.items()}


def rows(
    clock: str, names: Sequence[str], seeds: Sequence[int] = SEEDS, reps: int = 3
) -> list[dict[str, Any]]:
    out = []
    for name in names:
        for cap in CAPS:
            per_seed = [
                virtual(GRAPHS[name](s), cap)
                if clock == "virtual"
                else real(GRAPHS[name](s), cap, reps)
                for s in seeds
            ]
            mean = {
                k: statistics.fmean(r[k] for r in per_seed) for k in ("none", "learned", "true")
            }
            ratio = statistics.fmean(r["learned"] / r["true"] for r in per_seed)
            gain = statistics.fmean(r["none"] / r["learned"] - 1 for r in per_seed)
            out.append(
                {"graph": name, "cap": cap, "clock": clock, **mean, "ratio": ratio, "gain": gain}
            )
    return out


def table(results: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "| graph | cap | clock | none | learned | true | learned / true | gain over none |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        unit = "s"
        lines.append(
            f"| {r['graph']} | {r['cap']} | {r['clock']} | {r['none']:.3f} {unit} | "
            f"{r['learned']:.3f} {unit} | {r['true']:.3f} {unit} | {r['ratio']:.3f} | "
            f"{r['gain'] * 100:+.1f}% |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--virtual", action="store_true", help="virtual clock only")
    parser.add_argument("--reps", type=int, default=3, help="real-time repetitions (median)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    results = rows("virtual", list(GRAPHS))
    if not args.virtual:
        results += rows("real", ["makespan"], reps=args.reps)
    print(table(results))
    worst = max(r["ratio"] for r in results)
    print(f"\nworst learned / true: {worst:.3f} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
