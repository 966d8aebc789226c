"""DAGExecutor behaviour from the 0.3.0 contract, plus the defects we fix."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest

from tests.helpers import Probe, Recorder, leftover_tasks
from wave_executor import (
    AdaptiveSemaphore,
    DAGExecutor,
    RetryPolicy,
    TaskStatus,
    WaveCircularDependencyError,
    WaveConfig,
)
from wave_executor.testing import run_virtual

FAST = WaveConfig(max_retries=0)


async def echo(task_id: str, spec: Any) -> Any:
    return {"id": task_id, "spec": spec}


async def test_runs_every_task_and_reports_totals() -> None:
    result = await DAGExecutor().execute({"a": {}, "b": {}, "c": {}}, {"c": {"a", "b"}}, echo)
    assert result.total_tasks == 3
    assert result.total_successful == 3
    assert result.overall_success_rate == 1.0
    assert result.succeeded
    tr = result.task_results["c"]
    assert tr.status == "success" and tr.wave_id == "dag" and tr.retry_count == 0
    assert tr.output == {"id": "c", "spec": {}}
    assert tr.completed_at is not None and tr.completed_at >= tr.started_at


async def test_a_task_starts_only_after_its_own_dependencies() -> None:
    finished: set[str] = set()

    async def body(task_id: str, spec: dict[str, set[str]]) -> None:
        assert spec["needs"] <= finished, f"{task_id} started before {spec['needs']}"
        await asyncio.sleep(0)
        finished.add(task_id)

    deps = {"b": {"a"}, "c": {"a"}, "d": {"b", "c"}}
    tasks = {t: {"needs": deps.get(t, set())} for t in "abcd"}
    result = await DAGExecutor().execute(tasks, deps, body)
    assert result.total_successful == 4


async def test_failure_skips_dependents_and_names_the_failed_dependency() -> None:
    async def body(task_id: str, spec: Any) -> None:
        if task_id == "a":
            raise RuntimeError("boom")

    rec = Recorder()
    ex = DAGExecutor(FAST)
    ex.on_event(rec)
    result = await ex.execute(dict.fromkeys("abcd"), {"b": {"a"}, "c": {"b"}, "d": set()}, body)
    assert result.task_results["a"].status == "failed"
    assert result.task_results["a"].error == "boom"
    assert result.task_results["b"].status == "skipped"
    assert "'a'" in (result.task_results["b"].error or "")
    assert result.task_results["c"].status == "skipped"
    assert "root failure: 'a'" in (result.task_results["c"].error or "")
    assert result.task_results["d"].status == "success"
    assert result.total_failed == 1 and result.total_skipped == 2
    assert result.overall_success_rate == 0.5  # 1 success out of 2 non-skipped
    skipped = {e["task_id"]: e["failed_deps"] for e in rec.of("TASK_SKIPPED")}
    assert skipped == {"b": ["a"], "c": ["b"]}


async def test_escalation_report_after_the_last_attempt() -> None:
    async def body(task_id: str, spec: Any) -> None:
        raise ValueError("bad input")

    rec = Recorder()
    ex = DAGExecutor(WaveConfig(retry_policy=RetryPolicy(max_retries=2, backoff_factor=0)))
    ex.on_event(rec)
    result = await ex.execute({"a": 1}, {}, body)
    tr = result.task_results["a"]
    assert tr.status == "failed" and tr.retry_count == 2
    report = tr.output["escalation"]
    assert report["attempt_count"] == 3
    assert report["failure_history"] == ["bad input"] * 3
    assert "consistent" in report["root_cause"]
    assert report["circuit_state"] == "closed"
    assert report["resolution_options"]
    assert rec.of("TASK_ESCALATED")[0]["escalation"] == report
    assert len(rec.of("TASK_RETRYING")) == 2


def test_retries_wait_the_0_3_0_delays_on_a_virtual_clock() -> None:
    starts: list[float] = []

    async def body(task_id: str, spec: Any) -> str:
        starts.append(asyncio.get_running_loop().time())
        if len(starts) < 4:
            raise RuntimeError(f"try {len(starts)}")
        return "ok"

    async def main() -> Any:
        return await DAGExecutor().execute({"a": 1}, {}, body)  # default: 3 retries, factor 2

    result, elapsed = run_virtual(main())
    assert result.task_results["a"].status == "success"
    assert result.task_results["a"].retry_count == 3
    gaps = [round(b - a, 9) for a, b in itertools.pairwise(starts)]
    assert gaps == [1.0, 2.0, 4.0]
    assert elapsed == pytest.approx(7.0)
    assert result.task_results["a"].duration_ms == pytest.approx(7000.0)


def test_a_retry_does_not_hold_a_slot_during_its_backoff() -> None:
    calls: list[tuple[str, float]] = []

    async def body(task_id: str, spec: Any) -> None:
        calls.append((task_id, asyncio.get_running_loop().time()))
        if task_id == "flaky" and len(calls) == 1:
            raise RuntimeError("once")
        await asyncio.sleep(0.5)

    async def main() -> Any:
        cfg = WaveConfig(max_parallel_per_wave=1)
        return await DAGExecutor(cfg).execute({"flaky": 1, "other": 1}, {}, body)

    result, _ = run_virtual(main())
    assert result.total_successful == 2
    # "other" ran while "flaky" waited out its 1 s backoff.
    assert calls[1] == ("other", 0.0)
    assert calls[2] == ("flaky", 1.0)


def test_timeout_gives_status_timeout_and_a_closing_event() -> None:
    rec = Recorder()

    async def body(task_id: str, spec: Any) -> None:
        await asyncio.sleep(10)

    async def main() -> Any:
        ex = DAGExecutor(WaveConfig(default_task_timeout=2.0))
        ex.on_event(rec)
        return await ex.execute({"slow": 1, "after": 1}, {"after": {"slow"}}, body)

    result, elapsed = run_virtual(main())
    tr = result.task_results["slow"]
    assert tr.status == "timeout" and tr.retry_count == 0  # timeouts are not retried by default
    assert "timeout" in tr.output["escalation"]["root_cause"]
    assert result.task_results["after"].status == "skipped"
    assert elapsed == pytest.approx(2.0)
    assert rec.types("slow") == ["TASK_STARTED", "TASK_FAILED", "TASK_ESCALATED"]
    assert rec.of("TASK_FAILED")[0]["status"] == "timeout"


def test_timeouts_are_retried_when_the_policy_says_so() -> None:
    attempts: list[float] = []

    async def body(task_id: str, spec: Any) -> str:
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) == 1:
            await asyncio.sleep(10)
        return "fast now"

    async def main() -> Any:
        policy = RetryPolicy(max_retries=1, retry_timeouts=True, base_delay=0.5)
        ex = DAGExecutor(WaveConfig(default_task_timeout=1.0, retry_policy=policy))
        return await ex.execute({"a": 1}, {}, body)

    result, _ = run_virtual(main())
    assert result.task_results["a"].status == "success"
    assert attempts == [0.0, 1.5]


def test_total_timeout_ends_every_unfinished_task_with_a_closing_event() -> None:
    rec = Recorder()

    async def body(task_id: str, spec: float) -> None:
        await asyncio.sleep(spec)

    async def main() -> Any:
        cfg = WaveConfig(total_execution_timeout=5.0, max_parallel_per_wave=1)
        ex = DAGExecutor(cfg)
        ex.on_event(rec)
        tasks = {"quick": 1.0, "long": 100.0, "never": 1.0, "child": 1.0}
        return await ex.execute(tasks, {"child": {"long"}}, body)

    result, elapsed = run_virtual(main())
    assert elapsed == pytest.approx(5.0)
    statuses = {t: r.status for t, r in result.task_results.items()}
    # "long" heads the longest chain, so with one slot it runs first and blocks the rest.
    assert statuses == dict.fromkeys(["quick", "long", "never", "child"], "timeout")
    assert result.task_results["long"].duration_ms == pytest.approx(5000.0)
    started = {e["task_id"]: e["started"] for e in rec.of("TASK_FAILED")}
    assert started == {"long": True, "quick": False, "never": False, "child": False}
    assert result.stopped_reason == "total_timeout"
    assert result.total_tasks == 4
    closing = {e["task_id"] for e in rec.of("TASK_FAILED")} | {
        e["task_id"] for e in rec.of("TASK_COMPLETED")
    }
    assert closing == {"quick", "long", "never", "child"}
    assert rec.events[-1][0] == "EXECUTION_COMPLETED"


def test_stop_on_first_error_cancels_the_rest_and_reports_them() -> None:
    cancelled_bodies: list[str] = []

    async def body(task_id: str, spec: float) -> None:
        try:
            await asyncio.sleep(spec)
        except asyncio.CancelledError:
            cancelled_bodies.append(task_id)
            raise
        if task_id == "bad":
            raise RuntimeError("fail fast")

    async def main() -> Any:
        ex = DAGExecutor(WaveConfig(stop_on_first_error=True, max_retries=0))
        tasks = {"bad": 1.0, "slow": 10.0, "later": 1.0}
        result = await ex.execute(tasks, {"later": {"slow"}}, body)
        assert not await leftover_tasks()
        return result

    result, elapsed = run_virtual(main())
    assert elapsed == pytest.approx(1.0)
    assert result.task_results["bad"].status == "failed"
    assert result.task_results["slow"].status == "cancelled"
    assert result.task_results["later"].status == "cancelled"
    assert sorted(result.cancelled) == ["later", "slow"]
    assert result.stopped_reason == "stop_on_first_error"
    assert cancelled_bodies == ["slow"]
    assert not result.succeeded


async def test_cycles_raise_before_anything_runs() -> None:
    called: list[str] = []

    async def body(task_id: str, spec: Any) -> None:
        called.append(task_id)

    with pytest.raises(WaveCircularDependencyError) as info:
        await DAGExecutor().execute(
            dict.fromkeys("abcz"), {"a": {"b"}, "b": {"c"}, "c": {"a"}, "z": {"a"}}, body
        )
    assert info.value.cycle_members == {"a", "b", "c"}
    assert called == []


async def test_unknown_dependency_raises_value_error() -> None:
    with pytest.raises(ValueError, match="not defined in tasks"):
        await DAGExecutor().execute({"a": 1}, {"a": {"nope"}}, echo)


async def test_inject_dep_outputs_copies_specs() -> None:
    seen: dict[str, Any] = {}

    async def body(task_id: str, spec: Any) -> str:
        seen[task_id] = spec
        return f"out-{task_id}"

    tasks: dict[str, Any] = {"a": {"k": 1}, "b": {"k": 2}, "c": "plain"}
    deps = {"b": {"a"}, "c": {"a", "b"}}
    await DAGExecutor().execute(tasks, deps, body, inject_dep_outputs=True)
    assert seen["a"] == {"k": 1}  # no dependencies: the spec as it is (as in 0.3.0)
    assert seen["b"] == {"k": 2, "_dep_outputs": {"a": "out-a"}}
    assert seen["c"] == {"spec": "plain", "_dep_outputs": {"a": "out-a", "b": "out-b"}}
    assert tasks == {"a": {"k": 1}, "b": {"k": 2}, "c": "plain"}  # never mutated


async def test_cap_of_one_runs_one_task_at_a_time() -> None:
    probe = Probe(0.001)
    await DAGExecutor(WaveConfig(max_parallel_per_wave=1)).execute(
        dict.fromkeys(range(20)), {}, probe
    )
    assert probe.peak == 1  # 0.3.0 ran 2 (its cap was clamped up to min_parallel)


async def test_wide_graph_uses_the_whole_window() -> None:
    probe = Probe(0.001)
    cfg = WaveConfig(max_parallel_per_wave=16)  # adaptive_batch_window=True by default
    await DAGExecutor(cfg).execute(dict.fromkeys(range(500)), {}, probe)
    assert probe.peak == 16  # 0.3.0 shrank to 2 as soon as more than 20 tasks waited


async def test_specialist_semaphore_is_held_by_every_task() -> None:
    sem = AdaptiveSemaphore(2, adaptive=False)
    peak = 0

    async def body(task_id: int, spec: Any) -> None:
        nonlocal peak
        peak = max(peak, sem.active)
        await asyncio.sleep(0.001)

    await DAGExecutor(WaveConfig(max_parallel_per_wave=8)).execute(
        dict.fromkeys(range(12)), {}, body, specialist_semaphore=sem
    )
    assert peak == 2 and sem.active == 0


async def test_events_sync_and_async_callbacks_in_order() -> None:
    sync_rec = Recorder()
    async_seen: list[str] = []
    ex = DAGExecutor()

    @ex.on_event
    async def handler(event_type: str, event: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        async_seen.append(event_type)

    assert handler is not None  # on_event returns the callback (0.3.0 returned None)
    ex.on_event(sync_rec)
    result = await ex.execute({"a": 1, "b": 2}, {"b": {"a"}}, echo)
    expected = [
        "EXECUTION_STARTED",
        "TASK_STARTED",
        "TASK_COMPLETED",
        "TASK_STARTED",
        "TASK_COMPLETED",
        "EXECUTION_COMPLETED",
    ]
    assert sync_rec.types() == expected
    assert async_seen == expected  # all delivered before execute() returned
    started, *_, completed = (e for _, e in sync_rec.events)
    assert started["total_tasks"] == 2 and started["task_id"] is None
    assert started["execution_id"] == result.execution_id
    assert completed["total_successful"] == 2 and "duration_ms" in completed
    done = sync_rec.of("TASK_COMPLETED")[0]
    assert done["status"] == "success" and done["duration_ms"] >= 0
    assert isinstance(done["timestamp"], str)
    assert not await leftover_tasks()


async def test_a_failing_callback_is_logged_and_harmless(caplog: pytest.LogCaptureFixture) -> None:
    ex = DAGExecutor()

    @ex.on_event
    def broken(event_type: str, event: dict[str, Any]) -> None:
        raise RuntimeError("callback bug")

    @ex.on_event
    async def broken_async(event_type: str, event: dict[str, Any]) -> None:
        raise RuntimeError("async callback bug")

    result = await ex.execute({"a": 1}, {}, echo)
    assert result.total_successful == 1
    assert "callback bug" in caplog.text and "async callback bug" in caplog.text


async def test_emit_events_false_in_execute_config_silences_callbacks() -> None:
    rec = Recorder()
    ex = DAGExecutor()
    ex.on_event(rec)
    await ex.execute({"a": 1}, {}, echo, config=WaveConfig(emit_events=False))
    assert rec.events == []


async def test_each_execution_gets_a_fresh_id() -> None:
    ex = DAGExecutor()
    ids = {(await ex.execute({"a": 1}, {}, echo)).execution_id for _ in range(3)}
    assert len(ids) == 3


async def test_circuit_key_breaker_is_shared_and_fails_fast() -> None:
    calls: list[str] = []

    async def body(task_id: str, spec: Any) -> None:
        calls.append(task_id)
        raise ConnectionError("service down")

    cfg = WaveConfig(max_retries=0, circuit_failure_threshold=2, max_parallel_per_wave=1)
    ex = DAGExecutor(cfg)
    tasks = {f"t{i}": {"circuit_key": "svc"} for i in range(5)}
    result = await ex.execute(tasks, {}, body)
    assert calls == ["t0", "t1"]  # then the circuit is open: no more calls
    refused = result.task_results["t2"]
    assert refused.status == "failed" and "circuit 'svc' is open" in (refused.error or "")
    assert refused.output["escalation"]["circuit_state"] == "open"
    assert ex.circuit_breaker_states()["svc"]["state"] == "open"
    ex.reset_circuit_breakers()
    assert ex.circuit_breaker_states() == {}


async def test_task_id_breakers_do_not_outlive_a_run() -> None:
    attempts = 0

    async def body(task_id: str, spec: Any) -> str:
        nonlocal attempts
        attempts += 1
        if attempts <= 5:
            raise RuntimeError("early trouble")
        return "healthy"

    cfg = WaveConfig(max_retries=0, circuit_failure_threshold=5)
    ex = DAGExecutor(cfg)
    for _ in range(5):
        await ex.execute({"job": 1}, {}, body)
    result = await ex.execute({"job": 1}, {}, body)
    # 0.3.0 kept the task-id breaker open across runs and failed this without calling.
    assert result.task_results["job"].status == "success"


async def test_circuit_breakers_can_be_disabled() -> None:
    async def body(task_id: str, spec: Any) -> None:
        raise RuntimeError("x")

    ex = DAGExecutor(WaveConfig(max_retries=0, circuit_breaker_enabled=False))
    result = await ex.execute({"a": {"circuit_key": "k"}}, {}, body)
    assert result.task_results["a"].output["escalation"]["circuit_state"] == "disabled"
    assert ex.circuit_breaker_states() == {}


async def test_cancelling_execute_cancels_every_task_and_leaves_none() -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    async def body(task_id: str, spec: Any) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(task_id)
            raise

    ex = DAGExecutor()

    @ex.on_event
    async def slow_listener(event_type: str, event: dict[str, Any]) -> None:
        await asyncio.sleep(60)

    run = asyncio.create_task(ex.execute(dict.fromkeys("abc"), {}, body))
    await started.wait()
    await asyncio.sleep(0)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert sorted(cancelled) == ["a", "b", "c"]
    assert not await leftover_tasks()


async def test_result_to_dict_is_json_ready() -> None:
    async def body(task_id: str, spec: Any) -> Any:
        if task_id == "x":
            raise RuntimeError("nope")
        return [task_id]

    result = await DAGExecutor(FAST).execute({"x": 1, "y": 2, "z": 3}, {"z": {"x"}}, body)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["total_tasks"] == 3 and data["total_failed"] == 1
    assert data["total_skipped"] == 1 and data["overall_success_rate"] == 0.5
    assert data["task_results"]["y"]["output"] == ["y"]
    assert data["task_results"]["x"]["output"]["escalation"]["attempt_count"] == 1
    tr = result.task_results["y"].to_dict()
    assert set(tr) == {
        "task_id", "wave_id", "status", "output", "error", "duration_ms",
        "retry_count", "started_at", "completed_at",
    }  # fmt: skip


def test_critical_path_follows_the_longest_durations() -> None:
    async def body(task_id: str, spec: float) -> None:
        await asyncio.sleep(spec)

    deps = {"c": {"a", "b"}, "e": {"d"}, "f": {"c", "e"}}

    async def main() -> Any:
        tasks = {"a": 10.0, "b": 1.0, "c": 1.0, "d": 5.0, "e": 5.0, "f": 1.0}
        return await DAGExecutor().execute(tasks, deps, body)

    result, elapsed = run_virtual(main())
    assert elapsed == pytest.approx(12.0)
    assert result.get_critical_path(deps) == ["a", "c", "f"]
    assert result.duration_ms == pytest.approx(12000.0)


@pytest.mark.parametrize(
    ("partial", "rate", "successes", "expected"),
    [(True, 0.7, 8, True), (True, 0.7, 6, False), (False, 0.0, 9, False), (False, 0.0, 10, True)],
)
async def test_success_policy(partial: bool, rate: float, successes: int, expected: bool) -> None:
    async def body(task_id: int, spec: Any) -> None:
        if task_id >= successes:
            raise RuntimeError("x")

    cfg = WaveConfig(max_retries=0, allow_partial_success=partial, min_success_rate=rate)
    result = await DAGExecutor(cfg).execute(dict.fromkeys(range(10)), {}, body)
    assert result.succeeded is expected
    assert result.to_dict()["succeeded"] is expected


async def test_empty_graph() -> None:
    result = await DAGExecutor().execute({}, {}, echo)
    assert result.total_tasks == 0 and result.overall_success_rate == 0.0 and result.succeeded


async def test_status_values_are_task_status_members() -> None:
    result = await DAGExecutor().execute({"a": 1}, None, echo)
    assert result.task_results["a"].status is TaskStatus.SUCCESS


async def test_non_string_task_ids() -> None:
    result = await DAGExecutor().execute({1: "x", (2, "b"): "y"}, {(2, "b"): [1]}, echo)
    assert result.total_successful == 2


def test_body_that_swallows_cancellation_after_timeout_keeps_the_worker_healthy() -> None:
    async def body(task_id: str, spec: Any) -> str:
        if task_id == "stubborn":
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                return "swallowed"
        await asyncio.sleep(0.01)
        return "ok"

    async def main() -> Any:
        cfg = WaveConfig(default_task_timeout=0.05, max_parallel_per_wave=1, max_retries=0)
        return await DAGExecutor(cfg).execute(
            {"stubborn": 1, "next": 1}, {"next": {"stubborn"}}, body
        )

    result, elapsed = run_virtual(main())
    assert result.task_results["stubborn"].output == "swallowed"
    assert result.task_results["next"].status == "success"  # not hit by a stale cancel
    assert elapsed == pytest.approx(0.06)


async def test_a_dependency_listed_twice_is_waited_for_once_and_named_once() -> None:
    async def body(task_id: str, spec: Any) -> None:
        if task_id == "a":
            raise RuntimeError("x")

    ran: list[str] = []

    async def ok(task_id: str, spec: Any) -> None:
        ran.append(task_id)

    good = await DAGExecutor(FAST).execute({"a": 1, "b": 2}, {"b": ["a", "a"]}, ok)
    assert ran == ["a", "b"] and good.total_successful == 2
    rec = Recorder()
    ex = DAGExecutor(FAST)
    ex.on_event(rec)
    bad = await ex.execute({"a": 1, "b": 2}, {"b": ["a", "a"]}, body)
    assert bad.task_results["b"].status == "skipped"
    assert rec.of("TASK_SKIPPED")[0]["failed_deps"] == ["a"]


async def _awaits_a_cancelled_future(task_id: Any, spec: Any) -> Any:
    if task_id != "bad":
        await asyncio.sleep(0.5)
        return task_id
    await asyncio.sleep(0.5)
    future = asyncio.get_running_loop().create_future()
    future.cancel()  # e.g. a request another part of the program gave up on
    return await future  # raises CancelledError: nobody cancelled *this* task


@pytest.mark.parametrize("mode", ["dag", "levels"])
def test_a_body_raising_cancelled_error_by_itself_fails_its_task(mode: str) -> None:
    from wave_executor import LevelExecutor

    async def main() -> Any:
        cfg = WaveConfig(max_retries=1, retry_policy=RetryPolicy(max_retries=1, base_delay=0.1))
        executor = DAGExecutor(cfg) if mode == "dag" else LevelExecutor(cfg)
        async with asyncio.timeout(60):  # old code: the run waited for "bad" for ever
            result = await executor.execute(
                {"bad": 1, "child": 2, "other": 3},
                {"child": ["bad"]},
                _awaits_a_cancelled_future,
            )
        return result, await leftover_tasks()

    (result, leftover), elapsed = run_virtual(main())
    results = result.task_results  # a DAGExecutionResult or an ExecutionContext
    assert results["bad"].status == TaskStatus.FAILED
    assert results["bad"].error == "CancelledError"
    assert results["bad"].retry_count == 1  # an ordinary failure: retried by the policy
    assert results["child"].status == TaskStatus.SKIPPED
    assert results["other"].status == TaskStatus.SUCCESS
    assert elapsed < 5
    assert not leftover


def test_a_sync_executor_fails_each_task_at_once_saying_so() -> None:
    def forgot_async(task_id: Any, spec: Any) -> Any:
        return task_id * 2

    async def main() -> Any:
        cfg = WaveConfig(retry_policy=RetryPolicy(max_retries=3, base_delay=1.0))
        return await DAGExecutor(cfg).execute({"a": 1, "b": 2}, {"b": ["a"]}, forgot_async)

    result, elapsed = run_virtual(main())
    a = result.task_results["a"]
    assert a.status == TaskStatus.FAILED and a.retry_count == 0  # every attempt would fail alike
    assert a.error == (
        "the task executor returned 'aa' (str), not an awaitable: define it with 'async def', "
        "or run plain functions with backend=ThreadBackend() (wave_executor.backends)"
    )
    assert result.task_results["b"].status == TaskStatus.SKIPPED
    assert elapsed == 0.0


async def test_a_def_returning_an_awaitable_and_a_body_raising_type_error_are_ordinary() -> None:
    async def twice(task_id: Any) -> Any:
        return task_id * 2

    def returns_coroutine(task_id: Any, spec: Any) -> Any:
        return twice(task_id)

    result = await DAGExecutor(FAST).execute({"a": 1}, None, returns_coroutine)
    assert result.task_results["a"].output == "aa"

    calls: list[Any] = []

    async def raises_type_error(task_id: Any, spec: Any) -> Any:
        calls.append(task_id)
        raise TypeError("bad operand")

    policy = RetryPolicy(max_retries=1, base_delay=0.0)
    result = await DAGExecutor(WaveConfig(retry_policy=policy)).execute(
        {"a": 1}, None, raises_type_error
    )
    assert result.task_results["a"].error == "bad operand"
    assert calls == ["a", "a"]  # retried as usual
