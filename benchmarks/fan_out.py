"""Run-time fan-out: what a child costs, against declared tasks and pipefunc's ``map``.

    python benchmarks/fan_out.py [--n 10000] [--reps 5]

Three ways to run ``--n`` no-op tasks after one task, each timed ``--reps``
times (after a warm-up), medians reported:

* **fan-out**: one task returns ``range(n)``; ``execute(fan_out=...)`` makes
  each item a child task;
* **declared**: the same ``n`` tasks declared up front, each depending on
  the one task (what you would write if you knew ``n`` before the run);
* **pipefunc**: ``Pipeline.map`` over ``n`` elements with a ``mapspec``
  (``x[i] -> y[i]``), sequential, in-memory storage: pipefunc's own
  map/reduce. It runs in ``benchmarks/.venv-pipefunc`` (make it with
  ``benchmarks/setup_pipefunc_venv.sh``) as a subprocess; without that
  venv its row is left out.

Per-task cost is the whole ``execute()`` (or ``map()``) divided by ``n``.
Ours run with ``WaveConfig()`` defaults except events off (nobody listens).
``--pipefunc-worker`` is the subprocess mode.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import pathlib
import statistics
import subprocess
import time
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
PIPEFUNC_PYTHON = HERE / ".venv-pipefunc" / "bin" / "python"


def _pipefunc_worker(n: int, reps: int) -> None:
    from pipefunc import Pipeline, pipefunc  # type: ignore[import-not-found]  # its own venv

    def f(x: int) -> None:
        return None

    pipeline = Pipeline([pipefunc(output_name="y", mapspec="x[i] -> y[i]")(f)])
    inputs = {"x": list(range(n))}
    pipeline.map(inputs, run_folder=None, parallel=False, storage="dict")  # warm-up
    times = []
    for _ in range(reps):
        gc.collect()
        start = time.perf_counter()
        pipeline.map(inputs, run_folder=None, parallel=False, storage="dict")
        times.append(time.perf_counter() - start)
    print(json.dumps(times))


async def _ours(n: int, reps: int) -> dict[str, list[float]]:
    from wave_executor import ChildId, DAGExecutor, WaveConfig

    executor = DAGExecutor(WaveConfig(emit_events=False))

    async def split(task_id: Any, spec: Any) -> Any:
        return range(n) if task_id == "split" else None

    async def child(child_id: ChildId, item: Any) -> None:
        return None

    async def noop(task_id: Any, spec: Any) -> None:
        return None

    declared_tasks: dict[Any, Any] = {"split": {}, **{i: {} for i in range(n)}}
    declared_deps = {i: ["split"] for i in range(n)}

    async def fan_out() -> float:
        start = time.perf_counter()
        result = await executor.execute({"split": {}}, {}, split, fan_out={"split": child})
        elapsed = time.perf_counter() - start
        assert result.total_tasks == n + 1 and result.succeeded
        return elapsed

    async def declared() -> float:
        start = time.perf_counter()
        result = await executor.execute(declared_tasks, declared_deps, noop)
        elapsed = time.perf_counter() - start
        assert result.total_tasks == n + 1 and result.succeeded
        return elapsed

    for run in (fan_out, declared):  # warm-up
        await run()
    times: dict[str, list[float]] = {"fan-out": [], "declared": []}
    for _ in range(reps):  # interleaved, so that load hits both alike
        gc.collect()
        times["fan-out"].append(await fan_out())
        gc.collect()
        times["declared"].append(await declared())
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--pipefunc-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pipefunc_worker:
        _pipefunc_worker(args.n, args.reps)
        return
    times = asyncio.run(_ours(args.n, args.reps))
    if PIPEFUNC_PYTHON.exists():
        out = subprocess.run(
            [str(PIPEFUNC_PYTHON), __file__, "--pipefunc-worker", "--n", str(args.n),
             "--reps", str(args.reps)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        times["pipefunc map"] = json.loads(out.stdout.strip().splitlines()[-1])
    else:
        print(f"(no {PIPEFUNC_PYTHON}: run benchmarks/setup_pipefunc_venv.sh for that row)")
    per_task = {k: statistics.median(v) / args.n * 1e6 for k, v in times.items()}
    fan = per_task["fan-out"]
    print(f"n = {args.n}, medians of {args.reps} runs, µs per task (whole run / n)\n")
    print("| run | µs/task | fan-out / this | single runs (µs/task) |")
    print("|---|---:|---:|---|")
    for name, us in per_task.items():
        singles = ", ".join(f"{t / args.n * 1e6:.2f}" for t in times[name])
        print(f"| {name} | {us:.2f} | {fan / us:.2f}x | {singles} |")


if __name__ == "__main__":
    main()
