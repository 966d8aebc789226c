"""Cost of compiling a task graph (``build_graph``), in µs/task, optionally A/B.

    python benchmarks/compile_graph.py                      # every shape, 10^5 tasks
    git show HEAD~1:src/wave_executor/_core/graph.py > /tmp/old_graph.py
    python benchmarks/compile_graph.py --against /tmp/old_graph.py --reps 7

Every ``DAGExecutor.execute()`` compiles its ``tasks``/``dependencies`` into a ``Graph``
first, so this cost is paid per task on every run. Each shape of ``graphs.SHAPES`` is
compiled without and with ``costs=`` (an estimate for every other task), plus the
``random_dag`` graph of the makespan check. With ``--against FILE`` (another version of
``src/wave_executor/_core/graph.py``) both versions compile the same input in turns, in this
one process, and the script checks that they build identical graphs; the table shows both
medians and their ratio. The garbage collector stays on, as callers run with it.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import graphs

from wave_executor._core import graph as current

Build = Callable[..., Any]


def load(path: str) -> ModuleType:
    """Import a graph.py from a file under a name of its own."""
    spec = importlib.util.spec_from_file_location("graph_under_test", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fields(graph: Any) -> tuple[Any, ...]:
    return (
        graph.ids,
        graph.index,
        list(graph.offsets),
        list(graph.successors),
        list(graph.indegree),
        list(graph.priority),
    )


Case = tuple[str, dict[str, Any], dict[str, list[str]], dict[str, float] | None]


def inputs(n: int) -> list[Case]:
    cases: list[Case] = []
    shapes = {**graphs.SHAPES, "random_dag": graphs.random_dag}
    for name, generator in shapes.items():
        gc.disable()
        tasks, deps = generator(n, 0)
        gc.enable()
        cases.append((name, tasks, deps, None))
        costs = {t: float(1 + i % 7) for i, t in enumerate(tasks) if i % 2}
        cases.append((f"{name}+costs", tasks, deps, costs))
    gc.collect()
    return cases


def once(build: Build, tasks: Any, deps: Any, costs: Any) -> float:
    start = time.perf_counter()
    build(tasks, deps, costs)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--against", help="another graph.py to compare with, interleaved")
    args = p.parse_args(argv)
    builds: dict[str, Build] = {"this": current.build_graph}
    if args.against:
        builds = {"other": load(args.against).build_graph, **builds}
    print(f"build_graph, n={args.n}, µs/task, median of {args.reps}")
    print(f"{'graph':24s}" + "".join(f"{name:>10s}" for name in builds), end="")
    print(f"{'this/other':>12s}" if args.against else "")
    for name, tasks, deps, costs in inputs(args.n):
        if args.against:
            built = [fields(build(tasks, deps, costs)) for build in builds.values()]
            if built[0] != built[1]:
                raise SystemExit(f"{name}: the two versions build different graphs")
        times: dict[str, list[float]] = {key: [] for key in builds}
        for _ in range(args.reps):
            for key, build in builds.items():
                times[key].append(once(build, tasks, deps, costs))
        medians = {key: statistics.median(ts) * 1e6 / args.n for key, ts in times.items()}
        row = f"{name:24s}" + "".join(f"{m:10.3f}" for m in medians.values())
        if args.against:
            row += f"{medians['this'] / medians['other']:11.2f}x"
        print(row)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
