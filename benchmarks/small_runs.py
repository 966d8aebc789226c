"""The fixed cost of one ``execute()``: many small runs, side by side.

    python benchmarks/small_runs.py [--runs 2000] [--repeats 5]

Small graphs are where a run's fixed cost (validation, set-up, the loop
round trips of starting and ending) shows: a MetaDAG node with several
tasks, a wave of ``LevelExecutor``, or code that calls ``execute()`` in a
loop. For each shape (1 task; 10 independent tasks; a chain of 10) every
implementation (ours, 0.3.0 from ``.venv-0.3.0``, the minimal floor
scheduler) runs ``--runs`` executions back to back in its own fresh process
after a warm-up, ``--repeats`` times; the table gives the median µs per
``execute()`` and the ratios. Config: cap 10, no retries, fixed window, no
circuit breaker (0.3.0 gets the same where it has the fields).

Without ``.venv-0.3.0`` (``benchmarks/setup_030_venv.sh``) the 0.3.0 column
is left out. ``--impl X --shape S`` is the per-process worker mode.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from typing import Any

from fresh import V030_PYTHON, run_fresh
from impls import make_runner

SHAPES: dict[str, tuple[dict[str, Any], dict[str, list[str]]]] = {
    "1 task": ({"t0": {}}, {}),
    "10 independent": ({f"t{i}": {} for i in range(10)}, {}),
    "chain of 10": (
        {f"t{i}": {} for i in range(10)},
        {f"t{i}": [f"t{i - 1}"] for i in range(1, 10)},
    ),
}
CONFIG = {
    "max_parallel_per_wave": 10,
    "max_retries": 0,
    "adaptive_batch_window": False,
    "circuit_breaker_enabled": False,
}


async def _noop(task_id: str, spec: Any) -> None:
    return None


async def _measure(impl: str, shape: str, runs: int) -> float:
    run, _ = make_runner(impl, CONFIG)
    tasks, deps = SHAPES[shape]
    for _ in range(min(200, runs)):  # warm-up: imports, caches, first-call costs
        await run(tasks, deps, _noop)
    gc.collect()
    start = time.perf_counter()
    for _ in range(runs):
        await run(tasks, deps, _noop)
    return (time.perf_counter() - start) / runs * 1e6


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--impls", default="ours,floor,0.3.0", help="comma list of ours,floor,0.3.0")
    p.add_argument("--impl")
    p.add_argument("--shape")
    args = p.parse_args(argv)
    if args.impl:  # worker mode: one measurement in this process
        us = asyncio.run(_measure(args.impl, args.shape, args.runs))
        print(json.dumps({"impl": args.impl, "shape": args.shape, "us_per_execute": us}))
        return {}
    wanted = args.impls.split(",")
    impls = [i for i in ("ours", "floor") if i in wanted]
    impls += ["0.3.0"] if "0.3.0" in wanted and V030_PYTHON.exists() else []
    python = {"ours": sys.executable, "floor": sys.executable, "0.3.0": str(V030_PYTHON)}
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):  # interleaved, so drift hits every cell alike
        for shape in SHAPES:
            for impl in impls:
                out = run_fresh(
                    python[impl], __file__, "--impl", impl, "--shape", shape,
                    "--runs", str(args.runs),
                )  # fmt: skip
                samples.setdefault((impl, shape), []).append(out["us_per_execute"])
    med = {key: statistics.median(v) for key, v in samples.items()}
    names = {"ours": "ours µs", "floor": "floor µs", "0.3.0": "0.3.0 µs"}
    header = f"{'shape':>16}" + "".join(f" {names[i]:>9}" for i in impls)
    if "ours" in impls:
        header += "".join(f" {names[i].split()[0] + '/ours':>11}" for i in impls if i != "ours")
    print(header)
    report: dict[str, Any] = {"benchmark": "small_runs", "runs": args.runs, "cells": {}}
    for shape in SHAPES:
        cell = {i: round(med[(i, shape)], 1) for i in impls}
        line = f"{shape:>16}" + "".join(f" {cell[i]:>9.1f}" for i in impls)
        if "ours" in impls:
            ours = med[("ours", shape)]
            line += "".join(f" {med[(i, shape)] / ours:>10.2f}x" for i in impls if i != "ours")
        print(line)
        report["cells"][shape] = cell
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
