"""The caller cancels at each of its suspension points: after k loop iterations, every k.

For each entry point (``DAGExecutor.execute``, ``LevelExecutor.execute``,
``WaveReconciler.update`` and ``.stop``, ``MetaDAG.execute``) a clean run
first counts the event-loop iterations the call takes; then, for every k
up to that, the call runs in a task that the caller cancels after k
iterations. The caller must get control back at once (``CancelledError``,
or the result when the call had already finished), with no task or timer
of the library left, no run left "running" in the store, the successes
recorded so far resumable, and at most one terminal event per task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.faults.harness import no_new_threads, open_timers, pending_tasks, tally, terminal_counts
from wave_executor import (
    DAGExecutor,
    LevelExecutor,
    MetaDAG,
    MetaDAGNodeSpec,
    RetryPolicy,
    WaveConfig,
    WaveReconciler,
)
from wave_executor.store import MemoryStore

TASKS = {t: {"n": n} for n, t in enumerate("abcdefg")}
DEPS = {"b": ["a"], "c": ["a"], "d": ["b", "c"], "f": ["d", "e"]}
CONFIG = WaveConfig(max_parallel_per_wave=3, retry_policy=RetryPolicy(max_retries=1, base_delay=0))
#: Iterations a call may take beyond the clean run's count before the test gives up.
MAX_ITERATIONS = 5000


def make_body(attempts: dict[str, int]) -> Callable[[Any, Any], Awaitable[Any]]:
    async def body(task_id: Any, spec: Any) -> Any:
        attempts[task_id] = attempts.get(task_id, 0) + 1
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        if task_id == "e" and attempts[task_id] == 1:
            raise ConnectionError("e failed once")
        if task_id == "g":
            raise ValueError("g always fails")
        return task_id

    return body


class Case:
    """One entry point: ``call()`` is what the caller awaits and may cancel."""

    name = ""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def setup(self) -> None:
        """What runs before the call (not cancelled)."""

    async def call(self) -> Any:
        raise NotImplementedError

    async def teardown(self) -> None:
        """What runs after the call, cancelled or not (before the checks)."""

    async def check(self, cancelled: bool) -> None:
        counts = terminal_counts(self.events)
        assert all(n == 1 for n in counts.values()), f"terminal events: {counts}"


class Dag(Case):
    name = "DAGExecutor.execute"

    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore()

    async def call(self) -> Any:
        executor = DAGExecutor(CONFIG)
        executor.on_event(lambda t, e: self.events.append((t, e)))
        return await executor.execute(TASKS, DEPS, make_body({}), store=self.store, run_id="run")

    async def check(self, cancelled: bool) -> None:
        await super().check(cancelled)
        info = await self.store.get_run("run")
        if info is None:
            return
        assert info.status != "running"
        records = await self.store.run_tasks("run")
        succeeded = {r.task_key for r in records if r.status == "success"}
        expected: set[str] = set()
        for task_id in TASKS:
            if task_id in succeeded and all(d in expected for d in DEPS.get(task_id, ())):
                expected.add(task_id)
        result = await DAGExecutor(CONFIG).execute(
            TASKS, DEPS, make_body({"e": 1}), store=self.store, run_id="run"
        )
        assert set(result.restored) == expected


class Levels(Case):
    name = "LevelExecutor.execute"

    async def call(self) -> Any:
        executor = LevelExecutor(CONFIG)
        executor.on_event(lambda t, e: self.events.append((t, e)))
        return await executor.execute(TASKS, DEPS, make_body({}))


class Reconciler(Case):
    def __init__(self) -> None:
        super().__init__()

        async def body(task_id: Any, spec: Any) -> Any:
            await asyncio.sleep(0)
            if spec.get("long"):
                try:
                    await asyncio.sleep(3600)
                finally:  # a run that takes a few steps to end
                    for _ in range(3):
                        await asyncio.sleep(0)
            return task_id

        self.r = WaveReconciler(body, poll_interval_s=0.5)
        self.r.on_event(lambda t, e: self.events.append((t, e)))

    async def teardown(self) -> None:
        await self.r.stop()
        assert not self.r.running

    async def check(self, cancelled: bool) -> None:
        running: set[Any] = set()
        for event_type, event in self.events:
            if event_type == "TASK_STARTED":
                assert event["task_id"] not in running
                running.add(event["task_id"])
            elif event_type in ("TASK_COMPLETED", "TASK_FAILED", "TASK_STOPPED"):
                running.discard(event["task_id"])
        assert not running, f"runs without an end: {running}"


class ReconcilerUpdate(Reconciler):
    name = "WaveReconciler.update"

    async def setup(self) -> None:
        await self.r.start()
        await self.r.update({"a": {"long": True}, "b": {"long": True}, "c": {}}, {"c": ["a"]})

    async def call(self) -> Any:
        # a spec changed, a task removed, one added: update() awaits the ended runs
        await self.r.update({"a": {"long": True, "v": 2}, "c": {}, "d": {}}, {"d": ["c"]})


class ReconcilerStop(Reconciler):
    name = "WaveReconciler.stop"

    async def setup(self) -> None:
        await self.r.start()
        await self.r.update({"a": {"long": True}, "b": {"long": True}, "c": {}}, {"c": ["a"]})
        await asyncio.sleep(0.01)

    async def call(self) -> Any:
        await self.r.stop()


class Meta(Case):
    name = "MetaDAG.execute"

    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore()

    def meta(self) -> MetaDAG:
        async def body(task_id: Any, spec: Any) -> Any:
            await asyncio.sleep(0)
            return task_id

        meta = MetaDAG(task_events=True)
        meta.add_node(MetaDAGNodeSpec("ingest", {"x": {}, "y": {}}, body))
        meta.add_node(
            MetaDAGNodeSpec(
                "watch",
                {"w": {}},
                body,
                node_type="reconciler",
                completion_poll_interval=0.01,
                poll_interval_s=0.5,
            ),
            depends_on=["ingest"],
        )
        meta.add_node(MetaDAGNodeSpec("report", {"r": {}}, body), depends_on=["watch"])
        meta.on_event(lambda t, e: self.events.append((t, e)))
        return meta

    async def call(self) -> Any:
        return await self.meta().execute(store=self.store, run_id="meta")

    async def check(self, cancelled: bool) -> None:
        for info in await self.store.list_runs():
            assert info.status != "running", info
        await self.meta().execute(store=self.store, run_id="meta")


CASES: list[type[Case]] = [Dag, Levels, ReconcilerUpdate, ReconcilerStop, Meta]


async def iterations_of(case: Case) -> int:
    """Loop iterations ``case.call()`` takes when nobody cancels it."""
    await case.setup()
    task = asyncio.ensure_future(case.call())
    n = 0
    while not task.done():
        await asyncio.sleep(0)
        n += 1
        assert n < MAX_ITERATIONS, f"{case.name} did not end"
    task.result()
    await case.teardown()
    return n


async def cancel_after(case: Case, k: int) -> str:
    """Run ``case.call()`` and cancel it after ``k`` iterations; check what is left."""
    await case.setup()
    task = asyncio.ensure_future(case.call())
    for _ in range(k):
        await asyncio.sleep(0)
    task.cancel()
    async with asyncio.timeout(30):  # the caller gets control back
        try:
            await task
            outcome = "finished before the cancellation"
        except asyncio.CancelledError:
            outcome = "CancelledError reached the caller"
    await case.teardown()
    await asyncio.sleep(0)
    left = pending_tasks(asyncio.get_running_loop())
    assert not left, f"{case.name} cancelled after {k} iterations left {left}"
    assert not open_timers(asyncio.get_running_loop())
    await case.check(outcome != "finished before the cancellation")
    return outcome


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_caller_cancels_at_every_suspension_point(case: type[Case]) -> None:
    iterations = asyncio.run(iterations_of(case()))  # 0: it never suspends (eager tasks)
    for k in range(iterations + 1):
        with no_new_threads():
            outcome = asyncio.run(cancel_after(case(), k))
        tally("cancellation", case.name, "caller cancels", outcome)
        if k < iterations:
            assert outcome == "CancelledError reached the caller", k
