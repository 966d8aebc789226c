"""Defects the fault campaign found, one test each (each failed before its fix)."""

from __future__ import annotations

import asyncio
import logging
import sys
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


def test_a_base_exception_of_the_callers_own_reaches_them_as_itself() -> None:
    """It used to come out wrapped in the engine's BaseExceptionGroup."""

    async def body(task_id: Any, spec: Any) -> Any:
        await asyncio.sleep(0.1)
        if task_id == "b":
            raise Fatal("stop")
        return task_id

    store = MemoryStore()

    async def main() -> Any:
        try:
            await DAGExecutor().execute(TASKS, DEPS, body, store=store, run_id="r")
        finally:
            assert await leftover_tasks() == set()

    with pytest.raises(Fatal):
        run_virtual(main())
    info, _ = run_virtual(store.get_run("r"))
    assert info is not None and info.status == "interrupted"


@pytest.mark.parametrize("sync", [True, False])
def test_a_callbacks_own_base_exception_is_logged_like_any_callback_error(
    sync: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """As documented: only KeyboardInterrupt and SystemExit get through. A sync one
    used to end the run, an async one the delivery of every later event."""
    seen = Recorder()

    def raise_once(event_type: str, event: dict[str, Any]) -> None:
        if event_type == "TASK_COMPLETED" and event["task_id"] == "a":
            raise Fatal("stop")

    async def async_callback(event_type: str, event: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        raise_once(event_type, event)

    async def main() -> Any:
        executor = DAGExecutor()
        executor.on_event(seen)
        executor.on_event(raise_once if sync else async_callback)
        result = await executor.execute(TASKS, DEPS, echo)
        return result, await leftover_tasks()

    (result, left), _ = run_virtual(main())
    assert result.succeeded and left == set()
    assert seen.types(kind="TASK_COMPLETED") == ["TASK_COMPLETED"] * 3
    assert "callback" in caplog.text and "Fatal: stop" in caplog.text


def test_a_reconciler_callbacks_own_base_exception_does_not_kill_its_control_loop() -> None:
    """The control loop died of it, and wait_until_complete() waited for good."""

    def callback(event_type: str, event: dict[str, Any]) -> None:
        if event_type == "TASK_STARTED":
            raise Fatal("stop")

    async def main() -> Any:
        r = WaveReconciler(echo)
        r.on_event(callback)
        async with r:
            await r.update({"a": {}, "b": {}}, {"b": ["a"]})
            done = await r.wait_until_complete(timeout=60)
        return done, r.get_status().task_states, await leftover_tasks()

    (done, states, left), _ = run_virtual(main())
    assert done and states == {"a": "success", "b": "success"} and left == set()


class Checkpoints(InMemoryCheckpointStore):
    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error: BaseException | None = error

    async def save_reconciler_state(self, *args: Any) -> None:
        error, self.error = self.error, None  # fails once
        if error is not None:
            raise error
        await super().save_reconciler_state(*args)


def test_a_checkpoint_store_raising_cancelled_error_is_logged_not_raised_by_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """stop() raised CancelledError at its caller, who had cancelled nothing."""

    async def main() -> Any:
        r = WaveReconciler(echo, checkpoint_store=Checkpoints(asyncio.CancelledError()))
        await r.start()
        await r.update({"a": {}})
        await r.wait_until_complete(timeout=60)
        await r.stop()
        return await leftover_tasks()

    left, _ = run_virtual(main())
    assert left == set()
    assert "checkpoint of task 'a' failed" in caplog.text


def test_a_checkpoint_stores_own_base_exception_reaches_the_caller_of_stop() -> None:
    """It ended the checkpoint writer silently, and stop() said nothing of it."""

    async def main() -> Any:
        r = WaveReconciler(echo, checkpoint_store=Checkpoints(Fatal("disk gone")))
        await r.start()
        await r.update({"a": {}})
        await r.wait_until_complete(timeout=60)
        await asyncio.sleep(1)  # the writer task meets the failure, not stop()
        try:
            await r.stop()
        finally:
            assert await leftover_tasks() == set()

    with pytest.raises(Fatal):
        run_virtual(main())


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


def test_a_cancelled_stop_leaves_no_task_of_the_reconciler_behind() -> None:
    """stop() cancelled while it awaited the runs left the checkpoint writer alive
    for good (and, cancelled earlier, the restart timers and the runs too)."""

    async def slow_to_end(task_id: Any, spec: Any) -> None:
        try:
            await asyncio.sleep(1000)
        finally:
            await asyncio.sleep(0.5)  # it takes a moment to clean up

    async def main() -> Any:
        r = WaveReconciler(slow_to_end, checkpoint_store=InMemoryCheckpointStore())
        await r.start()
        await r.update({"a": {}, "b": {}})
        await asyncio.sleep(1)
        stopping = asyncio.ensure_future(r.stop())
        await asyncio.sleep(0.1)
        stopping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stopping
        await asyncio.sleep(1)  # the runs end by themselves
        return r.running, await leftover_tasks()

    (running, left), _ = run_virtual(main())
    assert not running and left == set()


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager_task_factory: Python 3.12+")
def test_a_worker_that_fails_at_once_under_an_eager_task_factory_stops_the_spawning() -> None:
    """With eager tasks a worker runs inside create_task(): the one that failed there
    made the next create_task() of the same spawn raise "TaskGroup is shutting down"
    (a RuntimeError beside the caller's own exception, in a BaseExceptionGroup)."""

    async def body(task_id: Any, spec: Any) -> Any:
        raise Fatal("at once")

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined,unused-ignore]
        try:
            await DAGExecutor().execute({"a": 1, "b": 2, "c": 3}, {}, body)
        finally:
            assert await leftover_tasks() == set()

    with pytest.raises(Fatal):
        run_virtual(main())
