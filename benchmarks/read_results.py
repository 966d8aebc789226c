"""What reading a run's results costs per task, for each way callers read them.

    PYTHONPATH=src python benchmarks/read_results.py --n 100000 --reps 7
    PYTHONPATH=src python benchmarks/read_results.py --baseline HEAD~1   # A/B in one process

One real ``execute()`` of the layered graph of ``--n`` no-op tasks (cap 10, as in
``overhead.py``), then each access pattern below is timed ``--reps`` times with the cyclic
GC on, at its defaults, and the median is printed in µs per task (per call for the
patterns marked so).

``--baseline REV`` also loads ``records.py`` and ``result_table.py`` as they are at the git
revision ``REV`` (their other imports come from the working tree), builds a twin of the
run's result over the *same* columns with them, and times both versions interleaved
(pattern by pattern, rep by rep), so that machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import graphs

from wave_executor import DAGExecutor, WaveConfig

REPO = Path(__file__).resolve().parent.parent
CORE = "src/wave_executor/_core"

#: name -> (what it does with a result, whether its figure is per task or per call).
PATTERNS: dict[str, tuple[Callable[[Any], object], bool]] = {
    "items": (lambda r: {t: x.status for t, x in r.task_results.items()}, True),
    "values": (lambda r: [x.status for x in r.task_results.values()], True),
    "iter+getitem": (lambda r: {t: r.task_results[t].status for t in r.task_results}, True),
    "get": (lambda r: {t: r.task_results.get(t).status for t in r.task_results}, True),
    "in": (lambda r: [t in r.task_results for t in r.task_results], True),
    "statuses()": (lambda r: r.statuses(), True),
    "outputs()": (lambda r: r.outputs(), True),
    "to_dict()": (lambda r: r.to_dict(), True),
    "critical_path": (lambda r: r.get_critical_path(), True),
    "len": (lambda r: len(r.task_results), False),
    "counts": (
        lambda r: (r.total_failed, r.overall_success_rate, r.succeeded, r.cancelled),
        False,
    ),
}


async def noop(task_id: str, spec: Any) -> None:
    return None


def run_once(n: int) -> Any:
    tasks, deps = graphs.build("layered", n, 0)
    config = WaveConfig(
        max_parallel_per_wave=10, max_retries=0, adaptive_batch_window=False,
        circuit_breaker_enabled=False,
    )  # fmt: skip
    gc.collect()
    result = asyncio.run(DAGExecutor(config=config).execute(tasks, deps, noop))
    if result.total_successful != n:
        raise RuntimeError(f"{result.total_successful} of {n} tasks succeeded")
    return result


def git_show(rev: str, path: str) -> str:
    out = subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=REPO, check=True, capture_output=True, text=True
    )
    return out.stdout


def load_module(name: str, source: str, origin: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = origin
    sys.modules[name] = module
    exec(compile(source, origin, "exec"), module.__dict__)
    return module


def baseline_twin(result: Any, rev: str) -> Any:
    """``result`` rebuilt over the same columns with ``rev``'s records and table."""
    records = load_module(
        "_baseline_records", git_show(rev, f"{CORE}/records.py"), f"{rev}:records.py"
    )
    table_source = git_show(rev, f"{CORE}/result_table.py").replace(
        "from wave_executor._core.records import", "from _baseline_records import"
    )
    tables = load_module("_baseline_result_table", table_source, f"{rev}:result_table.py")
    table_cls = tables.TaskResultTable
    table = table_cls.__new__(table_cls)
    for slot in table_cls.__slots__:
        setattr(table, slot, getattr(result.task_results, slot))
    kept = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    return records.DAGExecutionResult(**{**kept, "task_results": table})


def check_same(a: Any, b: Any) -> None:
    """The two versions must read the same results, or the comparison means nothing."""
    if a.to_dict() != b.to_dict():
        raise RuntimeError("baseline and working tree read different results")
    for (ta, ra), (tb, rb) in zip(a.task_results.items(), b.task_results.items(), strict=True):
        if ta != tb or dataclasses.astuple(ra) != dataclasses.astuple(rb):
            raise RuntimeError(f"baseline and working tree differ at task {ta!r}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--baseline", metavar="REV", help="also time REV's records/table (A/B)")
    p.add_argument("--only", nargs="*", choices=list(PATTERNS), help="time just these")
    args = p.parse_args(argv)

    result = run_once(args.n)
    variants = {"now": result}
    if args.baseline:
        variants = {args.baseline: baseline_twin(result, args.baseline), "now": result}
        check_same(*variants.values())
    names = args.only or list(PATTERNS)
    times: dict[tuple[str, str], list[float]] = {}
    gc.collect()
    for _ in range(args.reps):
        for name in names:
            fn, per_task = PATTERNS[name]
            for label, res in variants.items():
                t0 = time.perf_counter()
                out = fn(res)
                elapsed = time.perf_counter() - t0
                del out
                scale = 1e6 / args.n if per_task else 1e6
                times.setdefault((name, label), []).append(elapsed * scale)

    print(f"n={args.n}, reps={args.reps}, GC on; median µs per task (per call: len, counts)")
    print(f"{'pattern':<16}" + "".join(f"{label:>12}" for label in variants))
    for name in names:
        row = [statistics.median(times[name, label]) for label in variants]
        print(f"{name:<16}" + "".join(f"{v:>12.3f}" for v in row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
