"""Goodput against a rate-limited service: adaptive windows side by side.

    python benchmarks/goodput.py            # all variants, 5 runs each, medians
    python benchmarks/goodput.py --runs 3

The service (``wave_executor.testing.RateLimitedService``) serves C = 20
calls at a time, 10 ms each, and refuses a call beyond capacity after 1 ms
(a fast 429). 2,000 requests must all succeed; a refused request is retried
at once. Variants, each starting from the same cold state:

* ``fixed-20``: a fixed window of 20, the ideal (it is told C);
* ``fixed-100``: a fixed window of 100;
* ``0.3.0``: wave-executor 0.3.0's AdaptiveSemaphore(initial=100, max_val=100),
  run in ``benchmarks/.venv-seed`` (``./benchmarks/setup_seed_venv.sh``);
* ``ours``: our AdaptiveSemaphore(100, max_val=100), fed each outcome;
* ``ours-dag``: the same 2,000 calls as tasks of one DAGExecutor run, cap
  100, adaptive window on, retries on overload without delay.

Reported: goodput (successful calls per second, wall clock), its share of the
ideal's, and refused attempts per 100 successful calls.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from fresh import SEED_PYTHON, run_fresh

HERE = Path(__file__).resolve().parent
TESTING = HERE.parent / "src" / "wave_executor" / "testing.py"
CALLS, CAPACITY, SERVICE_TIME, REJECT_AFTER = 2000, 20, 0.010, 0.001


def load_testing_kit() -> Any:
    """Our simulated service, loaded by path so this also runs under the seed's venv."""
    spec = importlib.util.spec_from_file_location("_wave_testing_kit", TESTING)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def through_semaphore(sem: Any, report_outcomes: bool) -> dict[str, float]:
    kit = load_testing_kit()
    service = kit.RateLimitedService(CAPACITY, SERVICE_TIME, REJECT_AFTER)

    async def one(k: int) -> None:
        while True:
            async with sem:
                try:
                    await service.call(k)
                except kit.OverloadedError:
                    if report_outcomes:
                        sem.record_overload()
                    continue
                if report_outcomes:
                    sem.record_success()
                return

    start = time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(CALLS)))
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "served": service.served, "refused": service.refused}


async def through_dag() -> dict[str, float]:
    from wave_executor import DAGExecutor, RetryPolicy, WaveConfig

    kit = load_testing_kit()
    service = kit.RateLimitedService(CAPACITY, SERVICE_TIME, REJECT_AFTER)

    async def call(task_id: int, spec: Any) -> Any:
        return await service.call(task_id)

    config = WaveConfig(
        max_parallel_per_wave=100,
        retry_policy=RetryPolicy(max_retries=10_000, backoff_factor=0),
        circuit_breaker_enabled=False,
    )
    start = time.perf_counter()
    result = await DAGExecutor(config).execute(dict.fromkeys(range(CALLS)), {}, call)
    elapsed = time.perf_counter() - start
    assert result.total_successful == CALLS
    return {"seconds": elapsed, "served": service.served, "refused": service.refused}


def run_variant(name: str) -> dict[str, float]:
    from wave_executor import AdaptiveSemaphore

    if name == "fixed-20":
        return asyncio.run(through_semaphore(AdaptiveSemaphore(20, adaptive=False), False))
    if name == "fixed-100":
        return asyncio.run(through_semaphore(AdaptiveSemaphore(100, adaptive=False), False))
    if name == "ours":
        return asyncio.run(through_semaphore(AdaptiveSemaphore(100, max_val=100), True))
    if name == "ours-dag":
        return asyncio.run(through_dag())
    if name == "0.3.0":
        return asyncio.run(through_semaphore(AdaptiveSemaphore(100, min_val=2, max_val=100), False))
    raise ValueError(name)


def measure(name: str) -> dict[str, float]:
    """One run in a fresh process (the seed's interpreter for 0.3.0)."""
    python = SEED_PYTHON if name == "0.3.0" else sys.executable
    result: dict[str, float] = run_fresh(python, __file__, "--one", name)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_variant(args.one)))
        return
    variants = ["fixed-20", "fixed-100", "0.3.0", "ours", "ours-dag"]
    if not SEED_PYTHON.exists():
        print("(no benchmarks/.venv-seed: run benchmarks/setup_seed_venv.sh for 0.3.0)")
        variants.remove("0.3.0")
    rows: dict[str, tuple[float, float]] = {}
    for name in variants:
        runs = [measure(name) for _ in range(args.runs)]
        goodput = statistics.median(r["served"] / r["seconds"] for r in runs)
        refused = statistics.median(100 * r["refused"] / r["served"] for r in runs)
        rows[name] = (goodput, refused)
    ideal = rows["fixed-20"][0]
    service = f"C={CAPACITY}, {SERVICE_TIME * 1000:g} ms service"
    print(f"{CALLS} calls, {service}, medians of {args.runs}")
    print()
    print("| variant | goodput (calls/s) | share of ideal | refused per 100 successes |")
    print("|---|---:|---:|---:|")
    for name, (goodput, refused) in rows.items():
        print(f"| {name} | {goodput:,.0f} | {goodput / ideal:.0%} | {refused:.1f} |")


if __name__ == "__main__":
    main()
