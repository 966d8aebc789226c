"""DAGExecutor against task bodies that swallow cancellation.

A per-attempt timeout, the total timeout, ``stop_on_first_error`` and a
cancelled caller each cancel the running bodies once. A body that swallows
that cancellation must not keep the run (or the caller) waiting for good:
it is cancelled again every second and named in a WARNING once it is 5 s
late. All on the virtual clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import pytest

from tests.helpers import Stubborn, leftover_tasks
from wave_executor import AdaptiveSemaphore, Admission, DAGExecutor, TaskStatus, WaveConfig
from wave_executor.testing import run_virtual

#: A limit no correct run here comes near; old code hit it (a stuck run).
HANG = 120.0


def dispatch(**special: Any) -> Any:
    """A body: the named tasks get their own body, the others return after 0.5 s."""

    async def body(task_id: Any, spec: Any) -> Any:
        if task_id in special:
            return await special[task_id](task_id, spec)
        await asyncio.sleep(0.5)
        return task_id

    return body


def test_an_attempt_that_swallows_its_timeout_is_cancelled_again_and_times_out() -> None:
    once = Stubborn(swallow=1, refuse_for=60)  # yields to the second cancellation

    async def main() -> Any:
        cfg = WaveConfig(default_task_timeout=1.0, max_retries=0)
        async with asyncio.timeout(HANG):
            result = await DAGExecutor(cfg).execute(
                {"stubborn": 1, "after": 2}, {"after": ["stubborn"]}, dispatch(stubborn=once)
            )
        return result, await leftover_tasks()

    (result, leftover), elapsed = run_virtual(main())
    assert once.cancels == [1.0, 2.0]
    tr = result.task_results["stubborn"]
    assert tr.status == TaskStatus.TIMEOUT and tr.error == "timeout after 1s"
    assert result.task_results["after"].status == TaskStatus.SKIPPED
    assert elapsed == pytest.approx(2.0)
    assert not leftover


def test_an_attempt_cancelled_twice_is_a_timeout_even_if_it_then_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stubborn = Stubborn(refuse_for=7.5)  # swallows everything, returns at 1 + 7.5

    async def main() -> Any:
        cfg = WaveConfig(default_task_timeout=1.0, max_retries=0)
        async with asyncio.timeout(HANG):
            return await DAGExecutor(cfg).execute({"s": 1}, None, dispatch(s=stubborn))

    with caplog.at_level(logging.WARNING, logger="wave_executor"):
        result, elapsed = run_virtual(main())
    assert stubborn.cancels == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert stubborn.ended == 8.5  # it returned by itself, past its timeout
    assert result.task_results["s"].status == TaskStatus.TIMEOUT
    assert elapsed == pytest.approx(8.5)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per attempt, when it is 5 s late
    assert "'s'" in warnings[0] and "after its timeout" in warnings[0]


def test_a_retried_attempt_after_a_stubborn_one_gets_a_fresh_deadline() -> None:
    calls: list[float] = []

    async def flaky(task_id: Any, spec: Any) -> str:
        loop = asyncio.get_running_loop()
        calls.append(loop.time())
        if len(calls) == 1:
            await Stubborn(swallow=1, refuse_for=60)(task_id, spec)
            return "first try"
        await asyncio.sleep(0.5)
        return "second try"

    async def main() -> Any:
        from wave_executor import RetryPolicy

        policy = RetryPolicy(max_retries=1, retry_timeouts=True, base_delay=0.25, jitter=False)
        cfg = WaveConfig(default_task_timeout=1.0, retry_policy=policy)
        async with asyncio.timeout(HANG):
            return await DAGExecutor(cfg).execute({"t": 1}, None, flaky)

    result, elapsed = run_virtual(main())
    tr = result.task_results["t"]
    assert tr.status == TaskStatus.SUCCESS and tr.output == "second try"
    assert calls == [0.0, pytest.approx(2.25)]
    assert elapsed == pytest.approx(2.75)


def test_the_total_timeout_ends_the_run_though_a_body_swallows_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stubborn = Stubborn(swallow=6, refuse_for=60)  # gives up at the 7th cancellation

    async def main() -> Any:
        cfg = WaveConfig(total_execution_timeout=2.0)
        async with asyncio.timeout(HANG):
            result = await DAGExecutor(cfg).execute(
                {"stubborn": 1, "quick": 2, "child": 3},
                {"child": ["stubborn"]},
                dispatch(stubborn=stubborn),
            )
        return result, await leftover_tasks()

    with caplog.at_level(logging.INFO, logger="wave_executor"):
        (result, leftover), elapsed = run_virtual(main())
    assert stubborn.cancels == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert elapsed == pytest.approx(8.0)
    assert result.stopped_reason == "total_timeout"
    statuses = {k: v.status for k, v in result.task_results.items()}
    assert statuses == {
        "stubborn": TaskStatus.TIMEOUT,
        "quick": TaskStatus.SUCCESS,
        "child": TaskStatus.TIMEOUT,
    }
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "'quick'" not in warnings[0]
    assert "task 'stubborn' is still running 5 s after the run was stopped" in warnings[0]
    assert "it swallows cancellation" in warnings[0]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(m.endswith("the run ended 6 s after it was stopped") for m in infos)
    assert not leftover


def test_stop_on_first_error_is_not_held_up_by_a_stubborn_sibling() -> None:
    stubborn = Stubborn(swallow=2, refuse_for=60)

    async def broken(task_id: Any, spec: Any) -> None:
        await asyncio.sleep(1.0)
        raise ValueError("bad")

    async def main() -> Any:
        cfg = WaveConfig(stop_on_first_error=True, max_retries=0)
        async with asyncio.timeout(HANG):
            return await DAGExecutor(cfg).execute(
                {"stubborn": 1, "broken": 2}, None, dispatch(stubborn=stubborn, broken=broken)
            )

    result, elapsed = run_virtual(main())
    assert result.stopped_reason == "stop_on_first_error"
    assert stubborn.cancels == [1.0, 2.0, 3.0]
    assert result.task_results["stubborn"].status == TaskStatus.CANCELLED
    assert elapsed == pytest.approx(3.0)


def test_a_cancelled_caller_gets_control_back_though_a_body_swallows_it() -> None:
    stubborn = Stubborn(swallow=3, refuse_for=60)

    async def main() -> Any:
        run = asyncio.ensure_future(
            DAGExecutor().execute({"stubborn": 1}, None, dispatch(stubborn=stubborn))
        )
        await asyncio.sleep(1.0)
        run.cancel()
        async with asyncio.timeout(HANG):
            with pytest.raises(asyncio.CancelledError):
                await run
        return asyncio.get_running_loop().time(), await leftover_tasks()

    (ended, leftover), _ = run_virtual(main())
    assert stubborn.cancels == [1.0, 2.0, 3.0, 4.0]
    assert ended == pytest.approx(4.0)
    assert not leftover


def test_a_body_that_yields_to_the_first_cancellation_costs_no_extra_wait() -> None:
    async def main() -> Any:
        cfg = WaveConfig(total_execution_timeout=1.0)
        return await DAGExecutor(cfg).execute({"slow": 1}, None, dispatch(slow=_sleep_long))

    result, elapsed = run_virtual(main())
    assert result.task_results["slow"].status == TaskStatus.TIMEOUT
    assert elapsed == pytest.approx(1.0)


async def _sleep_long(task_id: Any, spec: Any) -> None:
    await asyncio.sleep(1000)


def _loop_errors(errors: list[dict[str, Any]]) -> None:
    """Route the loop's unhandled callback errors into ``errors``."""
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))


def test_a_retry_due_while_the_run_unwinds_starts_nothing() -> None:
    stubborn = Stubborn(swallow=3, refuse_for=60)  # holds the unwinding up from 2 to 5
    attempts: list[float] = []

    async def flaky(task_id: Any, spec: Any) -> None:
        attempts.append(asyncio.get_running_loop().time())
        await asyncio.sleep(1.5)
        raise ConnectionError("flaky")

    async def main() -> Any:
        from wave_executor import RetryPolicy

        errors: list[dict[str, Any]] = []
        _loop_errors(errors)
        policy = RetryPolicy(max_retries=3, base_delay=1.0, jitter=False)
        cfg = WaveConfig(total_execution_timeout=2.0, retry_policy=policy)
        async with asyncio.timeout(HANG):
            result = await DAGExecutor(cfg).execute(
                {"stubborn": 1, "flaky": 2}, None, dispatch(stubborn=stubborn, flaky=flaky)
            )
        await asyncio.sleep(0)
        return result, errors, await leftover_tasks()

    (result, errors, leftover), elapsed = run_virtual(main())
    assert errors == []  # old code: "TaskGroup ... is shutting down" from the backoff timer
    assert attempts == [0.0]  # the retry due at 2.5 did not start
    tr = result.task_results["flaky"]
    assert tr.status == TaskStatus.TIMEOUT and tr.retry_count == 1
    assert result.stopped_reason == "total_timeout"
    assert elapsed == pytest.approx(5.0)
    assert not leftover


def test_a_body_that_swallows_the_stop_and_returns_releases_nothing() -> None:
    from tests.helpers import Recorder

    async def deaf(task_id: Any, spec: Any) -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.5)  # finishes its work regardless
        return "done anyway"

    async def broken(task_id: Any, spec: Any) -> None:
        await asyncio.sleep(1.0)
        raise ValueError("bad")

    async def main() -> Any:
        recorder = Recorder()
        executor = DAGExecutor(WaveConfig(stop_on_first_error=True, max_retries=0))
        executor.on_event(recorder)
        async with asyncio.timeout(HANG):
            result = await executor.execute(
                {"deaf": 1, "broken": 2, "c1": 3, "c2": 4},
                {"c1": ["deaf"], "c2": ["deaf"]},
                dispatch(deaf=deaf, broken=broken),
            )
        return result, recorder, await leftover_tasks()

    (result, recorder, leftover), elapsed = run_virtual(main())
    assert result.stopped_reason == "stop_on_first_error"
    statuses = {k: v.status for k, v in result.task_results.items()}
    assert statuses == {
        "deaf": TaskStatus.SUCCESS,  # its output came back: it stands
        "broken": TaskStatus.FAILED,
        "c1": TaskStatus.CANCELLED,
        "c2": TaskStatus.CANCELLED,
    }
    assert result.task_results["deaf"].output == "done anyway"
    assert recorder.types("c1", kind="TASK_STARTED") == []
    assert recorder.types("c2", kind="TASK_STARTED") == []
    assert elapsed == pytest.approx(1.5)
    assert not leftover


def test_a_body_failing_while_the_run_unwinds_is_not_retried() -> None:
    async def fails_on_stop(task_id: Any, spec: Any) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise ConnectionError("lost the connection while stopping") from None

    async def main() -> Any:
        from wave_executor import RetryPolicy

        policy = RetryPolicy(max_retries=3, base_delay=0.0, jitter=False)
        cfg = WaveConfig(total_execution_timeout=1.0, retry_policy=policy)
        async with asyncio.timeout(HANG):
            return await DAGExecutor(cfg).execute({"t": 1}, None, dispatch(t=fails_on_stop))

    result, elapsed = run_virtual(main())
    tr = result.task_results["t"]
    assert tr.status == TaskStatus.FAILED and tr.retry_count == 0
    assert "lost the connection" in (tr.error or "")
    assert elapsed == pytest.approx(1.0)


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt])
def test_an_overdue_attempt_raising_a_base_exception_is_not_called_a_timeout(
    exc_type: type[BaseException],
) -> None:
    from wave_executor._runtime.attempt import Watchdog, run_attempt

    async def swallows_then_exits(task_id: Any, spec: Any) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise exc_type from None

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        watchdog = Watchdog(loop, task, recancel_every=1.0)
        try:
            await run_attempt(swallows_then_exits, "t", None, watchdog, 1.0, loop.time())
        except BaseException as exc:  # the type is what is checked
            raised: BaseException = exc
        finally:
            watchdog.close()
        return type(raised), task.cancelling()

    (raised, cancelling), elapsed = run_virtual(main())
    assert raised is exc_type
    assert cancelling == 0  # the watchdog took its cancellations back
    assert elapsed == pytest.approx(2.0)


async def _group_with_a_late_failure() -> None:
    """A TaskGroup whose child fails after the group body ended: on Python
    3.11 and early 3.12 it leaves its task's cancellation count at 1."""

    async def crash() -> None:
        await asyncio.sleep(0.01)
        raise ValueError("child")

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(crash())
    except* ValueError:
        pass


@pytest.mark.parametrize("second", ["raises_cancelled", "times_out"])
def test_a_stale_cancellation_count_left_by_a_body_does_not_wreck_later_tasks(
    second: str,
) -> None:
    async def body(task_id: Any, spec: Any) -> Any:
        if task_id == "first":
            await _group_with_a_late_failure()
            return "ok"
        if second == "raises_cancelled":
            future = asyncio.get_running_loop().create_future()
            future.cancel()
            return await future
        await asyncio.sleep(100)  # past its 1 s attempt timeout
        return None

    async def main() -> Any:
        cfg = WaveConfig(
            max_retries=0, max_parallel_per_wave=1, adaptive_batch_window=False,
            default_task_timeout=1.0, total_execution_timeout=HANG,
        )  # fmt: skip
        return await DAGExecutor(cfg).execute(
            {"first": 1, "second": 2}, {"second": ["first"]}, body
        )

    result, elapsed = run_virtual(main())
    assert result.task_results["first"].status == TaskStatus.SUCCESS
    tr = result.task_results["second"]
    if second == "raises_cancelled":
        assert (tr.status, tr.error) == (TaskStatus.FAILED, "CancelledError")
        assert elapsed == pytest.approx(0.01)
    else:
        assert (tr.status, tr.error) == (TaskStatus.TIMEOUT, "timeout after 1s")
        assert elapsed == pytest.approx(1.01)
    assert result.stopped_reason is None


def test_a_worker_crash_stops_the_run_before_the_others_unwind() -> None:
    calls: list[str] = []

    class Fatal(BaseException):
        """Not an Exception: a semaphore's ordinary errors are only logged."""

    class BrokenSemaphore(AdaptiveSemaphore):
        def record_error(self, exc: BaseException, admission: Admission | None = None) -> bool:
            if str(exc) == "a failed":
                raise Fatal("no record for a")  # the user's semaphore ends the program
            return super().record_error(exc, admission)

    async def body(task_id: Any, spec: Any) -> Any:
        calls.append(task_id)
        if task_id == "a":
            await asyncio.sleep(0.1)
            raise ValueError("a failed")
        try:
            await asyncio.sleep(1000)
        except asyncio.CancelledError:
            raise ConnectionError("lost while cancelled") from None  # retryable, normally

    async def main() -> Any:
        cfg = WaveConfig(max_retries=3, retry_backoff_factor=0.0)
        async with asyncio.timeout(HANG):
            await DAGExecutor(cfg).execute(
                {"a": 1, "s": 2}, {}, body, specialist_semaphore=BrokenSemaphore(10)
            )

    # Old code: an ExceptionGroup, with a RuntimeError("TaskGroup ... is shutting
    # down") from a retry of "s" besides; now the caller gets what was raised, alone.
    with pytest.raises(Fatal):
        run_virtual(main())
    assert calls == ["a", "s"]


def test_a_caller_cancelling_during_a_stop_on_first_error_unwind_gets_cancelled_error() -> None:
    stubborn = Stubborn(swallow=3, refuse_for=60)

    async def broken(task_id: Any, spec: Any) -> None:
        await asyncio.sleep(1.0)
        raise ValueError("bad")

    async def main() -> Any:
        cfg = WaveConfig(stop_on_first_error=True, max_retries=0)
        run = asyncio.ensure_future(
            DAGExecutor(cfg).execute(
                {"stubborn": 1, "broken": 2}, None, dispatch(stubborn=stubborn, broken=broken)
            )
        )
        await asyncio.sleep(2.0)  # the run is unwinding, held up by "stubborn"
        run.cancel()
        async with asyncio.timeout(HANG):
            with pytest.raises(asyncio.CancelledError):
                await run  # old code on 3.11/3.12: a result, the cancellation lost
        return await leftover_tasks()

    leftover, _ = run_virtual(main())
    assert not leftover


def test_a_cancelled_caller_is_cancelled_once_after_a_stop_on_first_error_unwind() -> None:
    log: list[str] = []

    async def body(task_id: Any, spec: Any) -> None:
        if task_id == "bad":
            await asyncio.sleep(1.0)
            raise ValueError("bad")
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            await asyncio.sleep(0.5)  # a clean-up that takes a moment
            raise

    async def caller() -> None:
        cfg = WaveConfig(stop_on_first_error=True, max_retries=0)
        try:
            await DAGExecutor(cfg).execute({"bad": 1, "slow": 2}, None, body)
        except asyncio.CancelledError:
            try:
                await asyncio.sleep(1)  # the caller's own clean-up
                log.append("clean-up done")
            except asyncio.CancelledError:  # Python 3.13, before the fix
                log.append("a second CancelledError")
            raise

    async def main() -> None:
        task = asyncio.ensure_future(caller())
        await asyncio.sleep(1.2)  # "bad" failed at 1.0; "slow" is cleaning up
        task.cancel()
        async with asyncio.timeout(HANG):
            with pytest.raises(asyncio.CancelledError):
                await task

    run_virtual(main())
    assert log == ["clean-up done"]


def test_a_stop_during_an_attempt_is_not_taken_for_its_timeout() -> None:
    async def body(task_id: Any, spec: Any) -> None:
        if task_id == "bad":
            await asyncio.sleep(1.0)
            raise ValueError("bad")
        swallowed = 0
        while True:  # swallows one cancellation (the stop's), yields to the next
            try:
                await asyncio.sleep(100)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed == 2:
                    raise

    async def main() -> Any:
        cfg = WaveConfig(stop_on_first_error=True, max_retries=0)
        async with asyncio.timeout(HANG):
            return await DAGExecutor(cfg).execute(
                {"bad": 1, "stub": 2}, None, body, timeouts={"stub": 1.5}
            )

    result, elapsed = run_virtual(main())
    stub = result.task_results["stub"]
    assert stub.status == TaskStatus.CANCELLED  # the stop at 1.0 came first
    assert elapsed == pytest.approx(1.5)


@pytest.mark.parametrize("stop", ["total_timeout", "stop_on_first_error"])
async def test_bodies_get_their_clean_up_time_when_a_run_stops(stop: str) -> None:
    """On a real clock: the run cancels the bodies once, then waits a second
    before cancelling them again (after a failure it used to cancel them
    twice at once, cutting their clean-up short)."""
    cleaned: list[str] = []

    async def body(task_id: Any, spec: Any) -> None:
        if task_id == "bad":
            await asyncio.sleep(0.02)
            raise ValueError("bad")
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)  # closing a connection, say
            cleaned.append(task_id)
            raise

    if stop == "total_timeout":
        cfg, tasks = WaveConfig(total_execution_timeout=0.05), {"a": 1, "b": 2}
    else:
        cfg, tasks = WaveConfig(stop_on_first_error=True, max_retries=0), {"bad": 1, "a": 2}
    result = await DAGExecutor(cfg).execute(tasks, None, body)
    assert result.stopped_reason == stop
    assert sorted(cleaned) == sorted(t for t in tasks if t != "bad")


def test_an_attempt_that_leaves_a_stale_count_and_then_hangs_still_times_out() -> None:
    async def body(task_id: Any, spec: Any) -> None:
        await _group_with_a_late_failure()  # Python 3.11/3.12: cancelling() stays 1
        await asyncio.sleep(100)  # past its 1 s timeout, in the same attempt

    async def main() -> Any:
        cfg = WaveConfig(max_retries=0, default_task_timeout=1.0)
        async with asyncio.timeout(HANG):
            return await DAGExecutor(cfg).execute({"t": 1}, None, body)

    result, elapsed = run_virtual(main())
    tr = result.task_results["t"]
    assert (tr.status, tr.error) == (TaskStatus.TIMEOUT, "timeout after 1s")
    assert elapsed == pytest.approx(1.0)
