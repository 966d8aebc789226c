"""Defects the fault campaign found, one test each (each failed before its fix)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tests.helpers import Recorder, leftover_tasks
from wave_executor import AdaptiveSemaphore, DAGExecutor, WaveConfig, WaveReconciler
from wave_executor.reconciler import InMemoryCheckpointStore
from wave_executor.store import AttemptRecord, JsonSerializer, MemoryStore, TaskRecord
from wave_executor.testing import run_virtual

TASKS = {"a": 1, "b": 2, "c": 3}
DEPS = {"b": ["a"], "c": ["b"]}


class Fatal(BaseException):
    """A BaseException of the caller's own."""


async def first_try_fails(task_id: Any, spec: Any) -> Any:
    await asyncio.sleep(0.1)
    if task_id == "b" and not getattr(first_try_fails, "b_failed", False):
        first_try_fails.b_failed = True  # type: ignore[attr-defined]
        raise ConnectionError("b failed")
    return task_id


async def echo(task_id: Any, spec: Any) -> Any:
    await asyncio.sleep(0.1)
    return task_id


@pytest.fixture(autouse=True)
def _reset() -> None:
    first_try_fails.b_failed = False  # type: ignore[attr-defined]


@pytest.mark.parametrize("error", [OSError("disk full"), asyncio.CancelledError()])
def test_a_store_whose_record_attempt_raises_does_not_end_the_run(
    error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    class Store(MemoryStore):
        def record_attempt(self, run_id: str, rec: AttemptRecord) -> None:
            raise error

    store = Store()

    async def main() -> Any:
        async with asyncio.timeout(100):
            result = await DAGExecutor(WaveConfig(max_retries=1)).execute(
                TASKS, DEPS, first_try_fails, store=store, run_id="r"
            )
        return result, await store.get_run("r"), await leftover_tasks()

    (result, info, left), _ = run_virtual(main())
    assert result.succeeded and result.total_successful == 3
    assert info is not None and info.status == "completed" and info.succeeded == 3
    assert left == set()
    assert "the store failed to record attempt 1 of task 'b'" in caplog.text


def test_a_store_whose_record_outcome_raises_cancelled_error_fails_the_task_only() -> None:
    class Store(MemoryStore):
        def record_outcome(self, run_id: str, rec: TaskRecord) -> None:
            if rec.task_key == "b":
                raise asyncio.CancelledError  # the old run hung: its worker vanished
            super().record_outcome(run_id, rec)

    async def main() -> Any:
        async with asyncio.timeout(100):
            return await DAGExecutor(WaveConfig(max_retries=0)).execute(
                TASKS, DEPS, echo, store=Store(), run_id="r"
            )

    result, _ = run_virtual(main())
    assert result.task_results["a"].status.value == "success"
    assert result.task_results["b"].status.value == "failed"
    assert "record_outcome raised CancelledError" in (result.task_results["b"].error or "")
    assert result.task_results["c"].status.value == "skipped"


def test_a_serializer_raising_cancelled_error_fails_the_task_only() -> None:
    class Serializer(JsonSerializer):
        def dumps(self, obj: Any) -> bytes:
            if obj == "b":
                raise asyncio.CancelledError
            return super().dumps(obj)

    async def main() -> Any:
        async with asyncio.timeout(100):
            return await DAGExecutor(WaveConfig(max_retries=0)).execute(
                TASKS, DEPS, echo, store=MemoryStore(serializer=Serializer()), run_id="r"
            )

    result, _ = run_virtual(main())
    assert [result.task_results[t].status.value for t in "abc"] == ["success", "failed", "skipped"]


@pytest.mark.parametrize("method", ["record_error", "record_success"])
@pytest.mark.parametrize("error", [KeyError("no record"), asyncio.CancelledError()])
def test_a_semaphore_whose_feedback_raises_does_not_end_the_run(
    method: str, error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(AdaptiveSemaphore):
        def record_error(self, exc: BaseException, admission: Any = None) -> bool:
            if method == "record_error":
                raise error
            return super().record_error(exc, admission)

        def record_success(self, admission: Any = None) -> None:
            if method == "record_success":
                raise error
            super().record_success(admission)

    semaphore = Broken(4)

    async def main() -> Any:
        async with asyncio.timeout(100):
            result = await DAGExecutor(WaveConfig(max_retries=1)).execute(
                TASKS, DEPS, first_try_fails, specialist_semaphore=semaphore
            )
        return result, await leftover_tasks()

    (result, left), _ = run_virtual(main())
    assert result.succeeded and result.total_successful == 3
    assert result.task_results["b"].retry_count == 1
    assert left == set() and semaphore.active == 0
    assert f"failed to record a {method.removeprefix('record_')}" in caplog.text


@pytest.mark.parametrize("where", ["body", "sync callback"])
def test_a_base_exception_of_the_callers_own_reaches_them_as_itself(where: str) -> None:
    """It used to come out wrapped in the engine's BaseExceptionGroup."""

    async def body(task_id: Any, spec: Any) -> Any:
        await asyncio.sleep(0.1)
        if where == "body" and task_id == "b":
            raise Fatal("stop")
        return task_id

    def callback(event_type: str, event: dict[str, Any]) -> None:
        if where == "sync callback" and event_type == "TASK_STARTED" and event["task_id"] == "b":
            raise Fatal("stop")

    store = MemoryStore()

    async def main() -> Any:
        executor = DAGExecutor()
        executor.on_event(callback)
        try:
            await executor.execute(TASKS, DEPS, body, store=store, run_id="r")
        finally:
            assert await leftover_tasks() == set()

    with pytest.raises(Fatal):
        run_virtual(main())
    info, _ = run_virtual(store.get_run("r"))
    assert info is not None and info.status == "interrupted"


def test_a_base_exception_from_an_async_callback_reaches_the_caller() -> None:
    """It used to end the event delivery silently (later events lost, run "fine")."""
    seen = Recorder()

    async def callback(event_type: str, event: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        if event_type == "TASK_COMPLETED" and event["task_id"] == "a":
            raise Fatal("stop")

    async def body(task_id: Any, spec: Any) -> Any:
        await asyncio.sleep(0.1)
        return task_id

    async def main() -> Any:
        executor = DAGExecutor()
        executor.on_event(seen)
        executor.on_event(callback)
        try:
            await executor.execute(TASKS, DEPS, body)
        finally:
            assert await leftover_tasks() == set()

    with pytest.raises(Fatal):
        run_virtual(main())
    assert seen.types(kind="TASK_COMPLETED") == ["TASK_COMPLETED"] * 3


def test_logging_is_quiet_for_a_healthy_semaphore(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="wave_executor")

    async def main() -> Any:
        return await DAGExecutor(WaveConfig(max_retries=1)).execute(
            TASKS, DEPS, first_try_fails, specialist_semaphore=AdaptiveSemaphore(4)
        )

    result, _ = run_virtual(main())
    assert result.succeeded
    assert "failed to record" not in caplog.text


def test_stop_while_start_is_restoring_leaves_the_reconciler_stopped() -> None:
    """stop() came back while start() still awaited the checkpoint store; start()
    then went on and started the control loop: a reconciler running after stop()."""
    loading = asyncio.Event()
    release = asyncio.Event()

    class SlowStore(InMemoryCheckpointStore):
        async def load_reconciler_state(self, reconciler_id: str) -> Any:
            loading.set()
            await release.wait()
            return await super().load_reconciler_state(reconciler_id)

    starts: list[Any] = []

    async def body(task_id: Any, spec: Any) -> None:
        starts.append(task_id)
        await asyncio.sleep(1000)

    async def main() -> Any:
        r = WaveReconciler(body, checkpoint_store=SlowStore())
        await r.update({"a": {}})
        start = asyncio.ensure_future(r.start())
        await loading.wait()
        async with asyncio.timeout(100):
            await r.stop()
            release.set()
            await start
        await asyncio.sleep(1)
        running = r.running
        await r.stop()  # ends the old code's control loop, so that the test can end
        return running, await leftover_tasks()

    (running, left), _ = run_virtual(main())
    assert not running
    assert starts == []
    assert left == set()
