"""MetaDAG overhead: 1,000 single-task nodes vs the same 1,000 tasks in one DAGExecutor.

    python benchmarks/meta_overhead.py [--n 1000] [--shape layered] [--cap 10] [--repeats 3]

Both runs get the same dependency graph, the same no-op async body and the
same config (cap 10, no retries, fixed window, no circuit breaker); the
MetaDAG's nodes are "dag" nodes of one task each, with output injection on
(the default). Such nodes run as plain tasks of the MetaDAG's node run
(docs/meta.md, "Cost"). Two more pairs keep that honest: both sides again
with every result read (results of either are made when read), and the
MetaDAG with every node forced into a DAG run of its own (what the direct
path saves). Variants are interleaved in each repeat so that drift in the
machine hits all alike; the medians of ``--repeats`` runs each are compared.
Prints a table and one JSON line. The target is ``ratio`` <= 3x.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from wave_executor import DAGExecutor, WaveConfig
from wave_executor._runtime.node_runners import DagNodeRunner
from wave_executor.meta import MetaDAG, MetaDAGNodeSpec


def make_graph(n: int, shape: str) -> dict[str, list[str]]:
    """``task -> upstream``: independent, a chain, or layers of 10 each fed by 2 of the previous."""
    ids = [f"t{i}" for i in range(n)]
    if shape == "independent":
        return {t: [] for t in ids}
    if shape == "chain":
        return {t: ([ids[i - 1]] if i else []) for i, t in enumerate(ids)}
    width = 10
    deps: dict[str, list[str]] = {}
    for i, t in enumerate(ids):
        layer, pos = divmod(i, width)
        if layer == 0:
            deps[t] = []
        else:
            base = (layer - 1) * width
            deps[t] = [ids[base + pos], ids[base + (pos + 1) % width]]
    return deps


async def noop(task_id: Any, spec: Any) -> None:
    return None


def config(cap: int) -> WaveConfig:
    return WaveConfig(
        max_parallel_per_wave=cap,
        max_retries=0,
        adaptive_batch_window=False,
        circuit_breaker_enabled=False,
    )


class OwnRun(DagNodeRunner):
    """The built-in "dag" runner under another type: every node gets a DAG run of its own."""


async def run_dag(deps: dict[str, list[str]], cap: int, read: bool = False) -> float:
    executor = DAGExecutor(config(cap))
    tasks: dict[str, Any] = {t: {} for t in deps}
    gc.collect()
    start = time.perf_counter()
    result = await executor.execute(tasks, deps, noop)
    if read:  # results are made when read: count that too
        assert all(r.status == "success" for r in result.task_results.values())
    elapsed = time.perf_counter() - start
    assert result.total_successful == len(deps)
    return elapsed


async def run_meta(
    deps: dict[str, list[str]], cap: int, read: bool = False, own_runs: bool = False
) -> float:
    cfg = config(cap)
    meta = MetaDAG(config=cfg)
    if own_runs:
        meta.register_node_type("dag", OwnRun())
    for node, upstream in deps.items():
        meta.add_node(MetaDAGNodeSpec(node, {"task": {}}, noop, config=cfg), depends_on=upstream)
    gc.collect()
    start = time.perf_counter()
    result = await meta.execute()
    if read:
        for r in result.node_results.values():
            assert r.status == "success" and r.dag_result is not None
            assert all(t.status == "success" for t in r.dag_result.task_results.values())
    elapsed = time.perf_counter() - start
    assert result.successful_nodes == len(deps)
    return elapsed


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--shape", choices=("layered", "independent", "chain"), default="layered")
    p.add_argument("--cap", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    deps = make_graph(args.n, args.shape)
    runs: dict[str, Callable[[], Awaitable[float]]] = {
        "dag": lambda: run_dag(deps, args.cap),
        "meta": lambda: run_meta(deps, args.cap),
        "dag_read": lambda: run_dag(deps, args.cap, read=True),
        "meta_read": lambda: run_meta(deps, args.cap, read=True),
        "meta_own_runs": lambda: run_meta(deps, args.cap, own_runs=True),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):  # interleaved, so drift hits every variant alike
        for name, run in runs.items():
            times[name].append(asyncio.run(run()))  # type: ignore[arg-type]
    med = {name: statistics.median(ts) for name, ts in times.items()}
    report: dict[str, Any] = {
        "benchmark": "meta_overhead",
        "n": args.n,
        "shape": args.shape,
        "cap": args.cap,
        "repeats": args.repeats,
        **{f"{name}_median_s": round(t, 4) for name, t in med.items()},
        "ratio": round(med["meta"] / med["dag"], 2),
        "ratio_reading_results": round(med["meta_read"] / med["dag_read"], 2),
        "ratio_own_runs": round(med["meta_own_runs"] / med["dag"], 2),
        "target_ratio": 3.0,
    }
    rows = [
        ("DAG", "dag", "execute()"),
        ("MetaDAG", "meta", "execute()"),
        ("DAG", "dag_read", "execute() + read every result"),
        ("MetaDAG", "meta_read", "execute() + read every result"),
        ("MetaDAG", "meta_own_runs", "every node a DAG run of its own"),
    ]
    print(f"{'':>8} {'median s':>9} {'us/unit':>8}  what")
    for label, name, what in rows:
        print(f"{label:>8} {med[name]:>9.4f} {med[name] / args.n * 1e6:>8.1f}  {what}")
    print(
        f"ratio {report['ratio']}x (target <= 3x); reading every result "
        f"{report['ratio_reading_results']}x; nodes with runs of their own "
        f"{report['ratio_own_runs']}x"
    )
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
