"""The "floor": the least a correct asyncio DAG scheduler has to do, written plainly.

In-degree counters, successor lists, one ``asyncio.Queue`` of ready tasks and ``cap`` worker
coroutines. No retries, timeouts, cancellation, validation, events or per-task result objects:
only a dict of outputs. Any real scheduler does more, so its cost per task is at least this
one's; the benchmarks report how far above the floor each implementation sits.
Ready tasks run in FIFO order (no priorities), which is also what the makespan check compares.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

TaskExecutor = Callable[[str, Any], Awaitable[Any]]


async def run_floor(
    tasks: Mapping[str, Any],
    dependencies: Mapping[str, Iterable[str]],
    task_executor: TaskExecutor,
    cap: int,
) -> dict[str, Any]:
    """Run every task after its dependencies, at most ``cap`` at once; return the outputs.

    A task that raises has the exception as its output and still releases its successors,
    which keeps the floor from hanging without adding any failure semantics to measure.
    """
    indegree = dict.fromkeys(tasks, 0)
    successors: dict[str, list[str]] = {t: [] for t in tasks}
    for task_id, deps in dependencies.items():
        for dep in deps:
            successors[dep].append(task_id)
            indegree[task_id] += 1
    ready: asyncio.Queue[str] = asyncio.Queue()
    for task_id, count in indegree.items():
        if count == 0:
            ready.put_nowait(task_id)
    outputs: dict[str, Any] = {}
    all_done = asyncio.Event()

    async def worker() -> None:
        while True:
            task_id = await ready.get()
            try:
                outputs[task_id] = await task_executor(task_id, tasks[task_id])
            except Exception as exc:  # any failure: see docstring
                outputs[task_id] = exc
            for succ in successors[task_id]:
                indegree[succ] -= 1
                if indegree[succ] == 0:
                    ready.put_nowait(succ)
            if len(outputs) == len(tasks):
                all_done.set()

    workers = [asyncio.create_task(worker()) for _ in range(cap)]
    if tasks:
        await all_done.wait()
    for w in workers:
        w.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return outputs
