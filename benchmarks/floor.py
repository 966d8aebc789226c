"""The "floor": the least a correct asyncio DAG scheduler has to do, written plainly.

In-degree counters, successor lists, a ``collections.deque`` of ready tasks, at most ``cap``
worker coroutines that await each body inline, and a dict of statuses. No ``asyncio.Queue``,
no task per DAG task, no events; a worker whose deque runs dry exits, and a worker that
releases more ready tasks than there are live workers starts new ones (never more than
``cap`` alive). No retries, timeouts, cancellation, validation or per-task result objects.
Any real scheduler does at least this much work per task, so its cost per task is at least
this one's; the benchmarks report how far above the floor each implementation sits.
Ready tasks run in FIFO order (no priorities), which is also what the makespan check compares.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

TaskExecutor = Callable[[str, Any], Awaitable[Any]]

SUCCESS, FAILED = "success", "failed"


async def run_floor(
    tasks: Mapping[str, Any],
    dependencies: Mapping[str, Iterable[str]],
    task_executor: TaskExecutor,
    cap: int,
) -> dict[str, str]:
    """Run every task after its dependencies, at most ``cap`` at once; return the statuses.

    A task that raises is ``"failed"`` and still releases its successors, which keeps the
    floor from hanging without adding any failure semantics to measure.
    """
    indegree = dict.fromkeys(tasks, 0)
    successors: dict[str, list[str]] = {t: [] for t in tasks}
    for task_id, deps in dependencies.items():
        for dep in deps:
            successors[dep].append(task_id)
            indegree[task_id] += 1
    ready = deque(t for t, count in indegree.items() if count == 0)
    statuses: dict[str, str] = {}
    total = len(tasks)
    loop = asyncio.get_running_loop()
    finished = loop.create_future()
    live = 0
    workers: set[asyncio.Task[None]] = set()

    def spawn() -> None:
        nonlocal live
        for _ in range(min(cap - live, len(ready))):
            live += 1
            worker_task = loop.create_task(worker())
            workers.add(worker_task)
            worker_task.add_done_callback(workers.discard)

    async def worker() -> None:
        nonlocal live
        pop, push = ready.popleft, ready.append
        try:
            while ready:
                task_id = pop()
                try:
                    await task_executor(task_id, tasks[task_id])
                    statuses[task_id] = SUCCESS
                except Exception:  # any failure: see docstring
                    statuses[task_id] = FAILED
                released = 0
                for succ in successors[task_id]:
                    left = indegree[succ] - 1
                    indegree[succ] = left
                    if not left:
                        push(succ)
                        released += 1
                if released > 1 and live < cap:
                    spawn()
            if len(statuses) == total and not finished.done():
                finished.set_result(None)
        finally:
            live -= 1

    if total:
        spawn()
        await finished
    return statuses
