"""MetaDAG overhead: 1,000 single-task nodes vs the same 1,000 tasks in one DAGExecutor.

    python benchmarks/meta_overhead.py [--n 1000] [--shape layered] [--cap 10] [--repeats 3]

Both runs get the same dependency graph, the same no-op async body and the
same config (cap 10, no retries, fixed window, no circuit breaker); the
MetaDAG's nodes are "dag" nodes of one task each, with output injection on
(the default). Runs alternate (dag, meta, dag, meta, ...) so that drift in
the machine hits both alike; the medians of ``--repeats`` runs each are
compared. Prints a table and one JSON line. The target is a ratio <= 3x.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
from typing import Any

from wave_executor import DAGExecutor, WaveConfig
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


async def run_dag(deps: dict[str, list[str]], cap: int) -> float:
    executor = DAGExecutor(config(cap))
    tasks: dict[str, Any] = {t: {} for t in deps}
    gc.collect()
    start = time.perf_counter()
    result = await executor.execute(tasks, deps, noop)
    elapsed = time.perf_counter() - start
    assert result.total_successful == len(deps)
    return elapsed


async def run_meta(deps: dict[str, list[str]], cap: int) -> float:
    cfg = config(cap)
    meta = MetaDAG(config=cfg)
    for node, upstream in deps.items():
        meta.add_node(MetaDAGNodeSpec(node, {"task": {}}, noop, config=cfg), depends_on=upstream)
    gc.collect()
    start = time.perf_counter()
    result = await meta.execute()
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
    dag_times: list[float] = []
    meta_times: list[float] = []
    for _ in range(args.repeats):
        dag_times.append(asyncio.run(run_dag(deps, args.cap)))
        meta_times.append(asyncio.run(run_meta(deps, args.cap)))
    dag_s, meta_s = statistics.median(dag_times), statistics.median(meta_times)
    report = {
        "benchmark": "meta_overhead",
        "n": args.n,
        "shape": args.shape,
        "cap": args.cap,
        "repeats": args.repeats,
        "dag_median_s": round(dag_s, 4),
        "meta_median_s": round(meta_s, 4),
        "dag_us_per_task": round(dag_s / args.n * 1e6, 1),
        "meta_us_per_node": round(meta_s / args.n * 1e6, 1),
        "ratio": round(meta_s / dag_s, 2),
        "target_ratio": 3.0,
    }
    print(f"{'':>10} {'median s':>10} {'us/unit':>10}")
    print(f"{'DAG':>10} {dag_s:>10.4f} {report['dag_us_per_task']:>10}")
    print(f"{'MetaDAG':>10} {meta_s:>10.4f} {report['meta_us_per_node']:>10}")
    print(f"ratio {report['ratio']}x (target <= 3x)")
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
