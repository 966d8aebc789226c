"""A backlog is not overload: the adaptive window must keep the full cap.

    python benchmarks/adaptive_window.py            # 5 runs each, medians
    python benchmarks/adaptive_window.py --runs 3 --cap 50

A 10,000-task graph of independent 5 ms tasks (``asyncio.sleep``), no
overload signal anywhere, run with ``adaptive_batch_window=True`` and
``False``, alternating, each run in a fresh process. The adaptive run must
be within 10% of the fixed one. 0.3.0 is run beside (from
``benchmarks/.venv-0.3.0``) with its default adaptive window, which reads
the backlog as saturation and shrinks to ``min_parallel``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

from fresh import V030_PYTHON, run_fresh

TASKS, TASK_SECONDS = 10_000, 0.005


async def one_run(adaptive: bool, cap: int) -> float:
    from wave_executor import DAGExecutor, WaveConfig

    async def body(task_id: int, spec: object) -> None:
        await asyncio.sleep(TASK_SECONDS)

    config = WaveConfig(max_parallel_per_wave=cap, adaptive_batch_window=adaptive, max_retries=0)
    start = time.perf_counter()
    result = await DAGExecutor(config).execute(dict.fromkeys(range(TASKS)), {}, body)
    elapsed = time.perf_counter() - start
    assert result.total_successful == TASKS
    return elapsed


def measure(variant: str, cap: int) -> float:
    python = V030_PYTHON if variant == "0.3.0" else sys.executable
    one = "1" if variant != "fixed" else "0"
    return float(run_fresh(python, __file__, "--one", one, "--cap", str(cap)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cap", type=int, default=50)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(asyncio.run(one_run(args.one == "1", args.cap))))
        return
    variants = ["adaptive", "fixed"] + (["0.3.0"] if V030_PYTHON.exists() else [])
    times: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(args.runs):
        for variant in variants:
            times[variant].append(measure(variant, args.cap))
    medians = {v: statistics.median(t) for v, t in times.items()}
    ideal = TASKS * TASK_SECONDS / args.cap
    print(f"{TASKS} tasks of {TASK_SECONDS * 1000:g} ms, cap {args.cap}, medians of {args.runs}")
    print(f"(ideal at the full cap: {ideal:.2f} s)")
    print()
    print("| variant | seconds | vs fixed window |")
    print("|---|---:|---:|")
    for variant, seconds in medians.items():
        print(f"| {variant} | {seconds:.2f} | {seconds / medians['fixed']:.2f}x |")


if __name__ == "__main__":
    main()
