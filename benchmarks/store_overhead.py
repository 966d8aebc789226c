"""What durability costs: 100,000 no-op tasks with and without a store.

    python benchmarks/store_overhead.py              # 3 runs each, medians
    python benchmarks/store_overhead.py --n 20000 --runs 5

Each run is a fresh process: build a layered graph (``graphs.layered``),
then time ``await execute(...)`` alone, including the store's work to the
end of the run (``execute`` returns after the store has committed every
record: ``end_run`` flushes). Variants: no store; ``MemoryStore``;
``SQLiteStore`` on a new file in a temporary directory; and 0.3.0 (no
durability at all) from ``benchmarks/.venv-0.3.0`` for scale.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fresh import V030_PYTHON, run_fresh

HERE = Path(__file__).resolve().parent


async def one_run(variant: str, n: int) -> float:
    sys.path.insert(0, str(HERE))
    import graphs

    from wave_executor import DAGExecutor, WaveConfig

    tasks, deps = graphs.layered(n, seed=1)

    async def noop(task_id: str, spec: Any) -> None:
        return None

    config = WaveConfig(max_parallel_per_wave=10, max_retries=0, circuit_breaker_enabled=False)
    executor = DAGExecutor(config)
    if variant in ("none", "0.3.0"):
        start = time.perf_counter()
        await executor.execute(tasks, deps, noop)
        return time.perf_counter() - start
    from wave_executor.store import MemoryStore, SQLiteStore

    with tempfile.TemporaryDirectory() as folder:
        store = MemoryStore() if variant == "memory" else SQLiteStore(Path(folder) / "runs.db")
        start = time.perf_counter()
        result = await executor.execute(tasks, deps, noop, store=store, run_id="bench")
        elapsed = time.perf_counter() - start
        await store.close()
    assert result.total_successful == n
    return elapsed


def measure(variant: str, n: int) -> float:
    python = V030_PYTHON if variant == "0.3.0" else sys.executable
    return float(run_fresh(python, __file__, "--one", variant, "--n", str(n)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(asyncio.run(one_run(args.one, args.n))))
        return
    variants = ["none", "memory", "sqlite"] + (["0.3.0"] if V030_PYTHON.exists() else [])
    times: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(args.runs):
        for variant in variants:
            times[variant].append(measure(variant, args.n))
    us = {v: statistics.median(t) / args.n * 1e6 for v, t in times.items()}
    print(f"{args.n:,} no-op tasks, layered graph, cap 10, medians of {args.runs} runs")
    print()
    print("| variant | µs/task | vs MemoryStore | vs no store |")
    print("|---|---:|---:|---:|")
    labels = {"none": "no store", "memory": "MemoryStore", "sqlite": "SQLiteStore"}
    for variant, value in us.items():
        label = labels.get(variant, "0.3.0 (no durability)")
        print(
            f"| {label} | {value:.1f} | {value / us['memory']:.2f}x | {value / us['none']:.2f}x |"
        )


if __name__ == "__main__":
    main()
