"""WaveReconciler: the 0.3.0 API, dependencies, readiness, hot updates, stop, events."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tests.helpers import Recorder, leftover_tasks
from wave_executor import WaveCircularDependencyError, WaveConfig
from wave_executor.reconciler import (
    ReconcileStatus,
    RestartSettings,
    WaveReconciler,
    mark_ready,
)
from wave_executor.testing import run_virtual


async def echo(task_id: Any, spec: Any) -> Any:
    return {"id": task_id, "spec": spec}


class Calls:
    """A task body that logs (task_id, virtual time) per call and can fail or sleep by spec."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, float]] = []

    def ids(self) -> list[Any]:
        return [t for t, _ in self.log]

    async def __call__(self, task_id: Any, spec: Any) -> Any:
        self.log.append((task_id, asyncio.get_running_loop().time()))
        spec = spec if isinstance(spec, dict) else {}
        await asyncio.sleep(spec.get("sleep", 0))
        if spec.get("fail"):
            raise RuntimeError(f"{task_id} failed")
        return task_id


async def test_tasks_run_in_dependency_order_and_complete() -> None:
    calls = Calls()
    r = WaveReconciler(calls)
    await r.start()
    await r.update({t: {} for t in "abcd"}, {"b": {"a"}, "c": {"a"}, "d": {"b", "c"}})
    assert await r.wait_until_complete(timeout=5)
    assert calls.ids()[0] == "a" and calls.ids()[-1] == "d"
    status = r.get_status()
    assert isinstance(status, ReconcileStatus)
    assert (status.desired_task_count, status.success_count, status.pending_count) == (4, 4, 0)
    assert status.task_states == dict.fromkeys("abcd", "success")
    assert r.get_task_state("d").output == "d"
    assert r.get_task_state("d").restart_count == 0
    await r.stop()
    assert await leftover_tasks() == set()


async def test_inject_dep_outputs_like_the_dag_executor() -> None:
    seen: dict[str, Any] = {}

    async def body(task_id: str, spec: Any) -> str:
        seen[task_id] = spec
        return f"out-{task_id}"

    plain = {"k": 1}
    r = WaveReconciler(body, inject_dep_outputs=True)
    await r.start()
    await r.update({"a": plain, "b": plain, "c": "raw"}, {"b": ["a"], "c": ["a", "b"]})
    assert await r.wait_until_complete(timeout=5)
    await r.stop()
    assert seen["a"] == {"k": 1}  # no dependencies: the spec as it is (as in 0.3.0)
    assert seen["b"] == {"k": 1, "_dep_outputs": {"a": "out-a"}}
    assert seen["c"] == {"spec": "raw", "_dep_outputs": {"a": "out-a", "b": "out-b"}}
    assert plain == {"k": 1}  # the caller's spec is never mutated


async def test_bad_input_is_refused_with_a_clear_error_and_changes_nothing() -> None:
    r = WaveReconciler(echo)
    with pytest.raises(ValueError, match="'b' depends on 'zz', which is not defined"):
        await r.update({"a": 1, "b": 2}, {"b": {"zz"}})
    with pytest.raises(ValueError, match="dependencies are given for task 'x'"):
        await r.update({"a": 1}, {"x": {"a"}})
    with pytest.raises(WaveCircularDependencyError) as info:
        await r.update(dict.fromkeys("abcd", 0), {"a": {"b"}, "b": {"a"}, "c": {"a"}})
    assert info.value.cycle_members == {"a", "b"}  # not c, which only sits downstream
    with pytest.raises(ValueError, match="unknown restart policy 'alway' for task 'a'"):
        await r.update({"a": 1}, policies={"a": "alway"})
    with pytest.raises(ValueError, match="policies given for task 'q'"):
        await r.update({"a": 1}, policies={"q": "no"})
    with pytest.raises(ValueError, match="max_restart_attempts for task 'a' must be an int"):
        await r.update({"a": 1}, max_restart_attempts={"a": -1})
    with pytest.raises(ValueError, match="restart_backoff_base must be a number"):
        await r.update({"a": 1}, restart_backoff_base=-3.0)
    with pytest.raises(ValueError, match="timeout must be > 0"):
        await r.update({"a": 1}, timeouts=0)
    with pytest.raises(TypeError, match="collection of task ids"):
        await r.update({"a": 1, "b": 2}, {"b": "a"})
    with pytest.raises(TypeError, match="callable"):
        WaveReconciler("not a function")  # type: ignore[arg-type]
    assert r.get_status().desired_task_count == 0


async def test_settings_take_a_dict_or_one_value_for_all() -> None:
    r = WaveReconciler(echo)
    await r.update(
        {"a": 1, "b": 2},
        policies="always",
        max_restart_attempts={"a": 9},
        restart_backoff_base=0.5,
        timeouts={"b": 30},
    )
    specs = r._sup.desired
    assert specs["a"].restart_policy == "always" and specs["b"].restart_policy == "always"
    assert (specs["a"].max_restart_attempts, specs["b"].max_restart_attempts) == (9, 5)
    assert specs["a"].restart_backoff_base == specs["b"].restart_backoff_base == 0.5
    assert (specs["a"].timeout_s, specs["b"].timeout_s) == (None, 30.0)


def test_the_concurrency_cap_holds_and_waiting_tasks_are_pending() -> None:
    running: list[int] = []
    peak = 0

    async def body(task_id: str, spec: Any) -> None:
        nonlocal peak
        running.append(1)
        peak = max(peak, len(running))
        await asyncio.sleep(10)
        running.pop()

    async def main() -> tuple[ReconcileStatus, bool]:
        r = WaveReconciler(body, WaveConfig(max_parallel_per_wave=2))
        await r.start()
        await r.update(dict.fromkeys("abcde", 0))
        await asyncio.sleep(1)
        status = r.get_status()
        ok = await r.wait_until_complete(timeout=100)
        await r.stop()
        return status, ok

    (status, ok), elapsed = run_virtual(main())
    assert (status.running_count, status.pending_count) == (2, 3)  # 0.3.0 said "running" for all
    assert ok and peak == 2 and elapsed == pytest.approx(30.0)


def test_readiness_lets_dependents_of_a_long_running_task_start() -> None:
    calls = Calls()

    async def server(task_id: str, spec: Any) -> None:
        await asyncio.sleep(2)  # setting up
        mark_ready()
        mark_ready()  # idempotent
        await asyncio.sleep(1000)  # serving

    async def body(task_id: str, spec: Any) -> Any:
        if task_id == "server":
            return await server(task_id, spec)
        return await calls(task_id, spec)

    async def main() -> tuple[bool, str]:
        r = WaveReconciler(body)
        rec = Recorder()
        r.on_event(rec)
        await r.start()
        deps, policies = {"client": {"server"}}, {"server": "always"}
        await r.update({"server": 0, "client": 0}, deps, policies=policies)
        ok = await r.wait_until_complete(timeout=60)
        assert rec.types("server", kind="TASK_READY") == ["TASK_READY"]
        server_state = r.get_status().task_states["server"]
        await r.stop()
        return ok, server_state

    (ok, server_state), _ = run_virtual(main())
    assert ok and server_state == "running"
    assert calls.log == [("client", 2.0)]  # started the moment the server was ready


async def test_mark_ready_outside_a_supervised_run_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="mark_ready"):
        mark_ready()


def test_a_task_without_readiness_keeps_its_dependents_waiting() -> None:
    async def body(task_id: str, spec: Any) -> None:
        await asyncio.sleep(1000)

    async def main() -> tuple[bool, str]:
        r = WaveReconciler(body)
        await r.start()
        await r.update({"a": 0, "b": 0}, {"b": {"a"}})
        ok = await r.wait_until_complete(timeout=10)
        state = r.get_status().task_states["b"]
        await r.stop()
        return ok, state

    assert run_virtual(main())[0] == (False, "pending")


async def test_a_dead_dependency_skips_its_dependents_and_an_update_revives_them() -> None:
    calls = Calls()
    rec = Recorder()
    r = WaveReconciler(calls)
    r.on_event(rec)
    await r.start()
    deps = {"b": {"a"}, "c": {"b"}}
    await r.update({"a": {"fail": True}, "b": {}, "c": {}}, deps, policies="no")
    assert await r.wait_until_complete(timeout=5)
    states = r.get_status().task_states
    assert states == {"a": "failed", "b": "skipped", "c": "skipped"}
    assert r.get_task_state("b").reason == "dependency 'a' is failed"
    assert r.get_task_state("c").reason == "dependency 'b' is skipped (root cause: 'a' is failed)"
    assert [e["failed_deps"] for e in rec.of("TASK_SKIPPED")] == [["a"], ["b"]]
    assert r.get_status().skipped_count == 2
    await r.update({"a": {}, "b": {}, "c": {}}, deps, policies="no")  # fix a's spec
    assert await r.wait_until_complete(timeout=5)
    assert r.get_status().task_states == dict.fromkeys("abc", "success")
    assert calls.ids() == ["a", "a", "b", "c"]
    await r.stop()


def test_hot_update_touches_only_what_changed() -> None:
    calls = Calls()
    rec = Recorder()

    async def main() -> None:
        r = WaveReconciler(calls)
        r.on_event(rec)
        await r.start()
        forever = {"sleep": 1e6}
        await r.update({"keep": forever, "change": forever, "drop": forever, "later": {}},
                       {"later": {"drop"}})  # fmt: skip
        await asyncio.sleep(5)
        assert sorted(calls.ids()) == ["change", "drop", "keep"]
        await r.update({"keep": forever, "change": {"sleep": 1e6, "v": 2}, "later": {}})
        # Before update() returned, the removed task was cancelled, awaited and stopped.
        assert r.get_status().task_states["drop"] == "stopped"
        stopped = rec.of("TASK_STOPPED")
        assert [(e["task_id"], e["reason"]) for e in stopped] == [
            ("drop", "removed_from_desired"),
            ("change", "spec_changed"),
        ]
        await asyncio.sleep(0.001)
        # "later" lost its dependency on "drop": it ran at once.
        assert sorted(calls.ids()) == ["change", "change", "drop", "keep", "later"]
        assert rec.types("keep") == ["TASK_STARTED"]  # never touched
        assert r.get_task_state("change").restart_count == 0  # a fresh quota
        status = r.get_status()
        assert (status.desired_task_count, status.running_count, status.stopped_count) == (3, 2, 1)
        await r.stop()
        assert await leftover_tasks() == set()

    run_virtual(main())


def test_removing_and_re_adding_a_task_starts_it_afresh() -> None:
    calls = Calls()

    async def main() -> None:
        r = WaveReconciler(calls)
        await r.start()
        await r.update({"a": {"sleep": 100}})
        await asyncio.sleep(1)
        await r.update({})
        assert r.get_status().task_states == {"a": "stopped"}
        await r.update({"a": {"sleep": 100}})
        await asyncio.sleep(1)
        assert r.get_status().task_states == {"a": "running"}
        assert r.get_task_state("a").restart_count == 0
        await r.stop()

    run_virtual(main())
    assert calls.ids() == ["a", "a"]


async def test_stop_cancels_runs_leaves_no_task_and_start_resumes() -> None:
    calls = Calls()
    rec = Recorder()
    seen_async: list[str] = []

    async def slow_callback(event_type: str, event: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        seen_async.append(event_type)

    r = WaveReconciler(calls, poll_interval_s=0.01)
    r.on_event(rec)
    r.on_event(slow_callback)
    await r.start()
    await r.start()  # idempotent
    await r.update({"long": {"sleep": 100}, "crash": {"fail": True}}, restart_backoff_base=50)
    await asyncio.sleep(0.05)
    assert r.running
    await r.stop()
    assert not r.running
    assert await leftover_tasks() == set()  # no loop, no run, no timer task, no dispatcher
    assert r.get_status().task_states == {"long": "stopped", "crash": "pending"}
    assert rec.of("TASK_STOPPED")[0]["reason"] == "reconciler_stopped"
    assert seen_async[-1] == "RECONCILER_STOPPED"  # async deliveries drained
    await r.start()
    await asyncio.sleep(0.01)
    assert r.get_status().task_states["long"] == "running"
    await r.stop()
    assert await leftover_tasks() == set()


async def test_events_reach_sync_and_async_callbacks_and_a_failing_one_is_harmless(
    caplog: pytest.LogCaptureFixture,
) -> None:
    got_async: list[str] = []
    r = WaveReconciler(echo)

    @r.on_event
    async def handler(event_type: str, event: dict[str, Any]) -> None:
        got_async.append(event_type)

    def broken(event_type: str, event: dict[str, Any]) -> None:
        raise RuntimeError("callback bug")

    rec = Recorder()
    assert r.on_event(rec) is rec
    r.on_event(broken)
    await r.start()
    await r.update({"a": 1})
    assert await r.wait_until_complete(timeout=5)
    await r.stop()
    assert handler is not None
    expected = ["RECONCILER_STARTED", "DESIRED_STATE_UPDATED", "TASK_STARTED", "TASK_COMPLETED",
                "RECONCILER_STOPPED"]  # fmt: skip
    assert [t for t, _ in rec.events] == expected
    assert got_async == expected
    started = rec.of("TASK_STARTED")[0]
    assert started["task_id"] == "a" and started["restart_count"] == 0
    assert started["execution_id"] == "default" and "timestamp" in started
    assert "callback bug" in caplog.text
    # emit_events=False silences every callback.
    quiet = WaveReconciler(echo, WaveConfig(emit_events=False))
    rec2 = Recorder()
    quiet.on_event(rec2)
    await quiet.start()
    await quiet.update({"a": 1})
    assert await quiet.wait_until_complete(timeout=5)
    await quiet.stop()
    assert rec2.events == []


def test_a_task_timeout_is_opt_in_and_per_task() -> None:
    calls = Calls()
    rec = Recorder()

    async def main() -> dict[Any, str]:
        r = WaveReconciler(calls, WaveConfig(default_task_timeout=1.0))
        r.on_event(rec)
        await r.start()
        tasks = {"bounded": {"sleep": 10}, "free": {"sleep": 500}}
        await r.update(tasks, policies="no", timeouts={"bounded": 5})
        assert await r.wait_until_complete(timeout=1000)
        states = r.get_status().task_states
        await r.stop()
        return states

    states, elapsed = run_virtual(main())
    assert states == {"bounded": "timeout", "free": "success"}
    failed = rec.of("TASK_FAILED")[0]
    assert failed["status"] == "timeout" and failed["error"] == "timeout after 5s"
    assert elapsed == pytest.approx(500.0)


def test_rest_for_one_restarts_dependents_when_an_upstream_restarts() -> None:
    calls = Calls()
    rec = Recorder()
    crashes = iter([True, False])

    async def body(task_id: str, spec: Any) -> None:
        await calls(task_id, spec)
        if task_id == "db":
            mark_ready()
            await asyncio.sleep(10)
            if next(crashes, False):
                raise RuntimeError("db crashed")
        await asyncio.sleep(1e6)

    async def main(rest_for_one: bool) -> None:
        settings = RestartSettings(rest_for_one=rest_for_one)
        r = WaveReconciler(body, restart_settings=settings)
        r.on_event(rec)
        await r.start()
        await r.update({"db": 0, "api": 0, "web": 0}, {"api": {"db"}, "web": {"api"}},
                       policies="always", restart_backoff_base=1.0)  # fmt: skip
        await asyncio.sleep(60)
        await r.stop()

    run_virtual(main(rest_for_one=False))
    assert calls.ids() == ["db", "api", "db"]  # api keeps running through db's restart
    calls.log.clear()
    rec.events.clear()
    crashes = iter([True, False])
    run_virtual(main(rest_for_one=True))
    # db crashes at 10 and restarts at 11: api is stopped and starts again once db is ready.
    assert calls.log == [("db", 0.0), ("api", 0.0), ("db", 11.0), ("api", 11.0)]
    stops = [(e["task_id"], e["reason"], e.get("upstream")) for e in rec.of("TASK_STOPPED")]
    assert stops[0] == ("api", "upstream_restarted", "db")
    assert rec.of("TASK_BLOCKED") == []


def test_wait_until_complete_wakes_on_change_not_on_a_poll() -> None:
    async def main() -> tuple[bool, float]:
        r = WaveReconciler(echo, poll_interval_s=100.0)
        await r.start()
        await r.update({"a": 1, "b": 2}, {"b": {"a"}})
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        ok = await r.wait_until_complete(timeout=300.0, poll_interval=50.0)
        waited = loop.time() - t0
        await r.stop()
        return ok, waited

    (ok, waited), _ = run_virtual(main())
    assert ok and waited == 0.0


async def test_wait_until_complete_times_out_before_start_and_accepts_empty() -> None:
    r = WaveReconciler(echo)
    assert await r.wait_until_complete(timeout=0.01)  # nothing desired
    await r.update({"a": 1})
    assert not await r.wait_until_complete(timeout=0.01)  # not started: nothing runs
    await r.start()
    assert await r.wait_until_complete(timeout=5)
    await r.stop()


def test_a_reconciler_can_be_used_again_on_another_event_loop() -> None:
    r = WaveReconciler(echo)

    async def once(tasks: dict[str, int]) -> bool:
        await r.start()
        await r.update(tasks)
        ok = await r.wait_until_complete(timeout=5)
        await r.stop()
        return ok

    assert asyncio.run(once({"a": 1}))
    assert asyncio.run(once({"a": 1, "b": 2}))
    assert r.get_status().success_count == 2


async def test_get_status_before_start(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    r = WaveReconciler(echo)
    status = r.get_status()
    assert status.desired_task_count == 0 and status.uptime_s == 0.0
    assert status.reconcile_cycle == 0
    with pytest.raises(KeyError):
        r.get_task_state("nope")


def test_mark_ready_works_from_a_task_the_body_spawned() -> None:
    starts: list[tuple[str, float]] = []

    async def body(task_id: str, spec: Any) -> None:
        starts.append((task_id, asyncio.get_running_loop().time()))
        if task_id == "server":

            async def warm_up() -> None:
                await asyncio.sleep(3)
                mark_ready()

            helper = asyncio.create_task(warm_up())
            await asyncio.sleep(1000)
            await helper

    async def main() -> None:
        r = WaveReconciler(body)
        await r.start()
        await r.update({"server": 0, "client": 0}, {"client": {"server"}})
        await asyncio.sleep(10)
        await r.stop()

    run_virtual(main())
    assert starts == [("server", 0.0), ("client", 3.0)]


async def test_update_while_stopped_leaves_no_task_behind() -> None:
    async def on_event(event_type: str, event: dict[str, Any]) -> None:
        await asyncio.sleep(0)

    r = WaveReconciler(echo, checkpoint_store=None)
    r.on_event(on_event)
    await r.update({"a": 1})
    assert await leftover_tasks() == set()
    await r.start()
    assert await r.wait_until_complete(timeout=5)
    await r.stop()
    await r.update({"a": 1, "b": 2})
    assert await leftover_tasks() == set()
    assert r.get_status().task_states == {"a": "success", "b": "pending"}


@pytest.mark.skipif(not hasattr(asyncio, "eager_task_factory"), reason="Python 3.12+")
async def test_eager_task_factory_runs_bodies_inside_start_without_losing_readiness() -> None:
    asyncio.get_running_loop().set_task_factory(getattr(asyncio, "eager_task_factory"))  # noqa: B009 (3.12+)
    calls: list[str] = []

    async def body(task_id: str, spec: Any) -> None:
        calls.append(task_id)
        if task_id == "server":
            mark_ready()  # before the first suspension: runs inside create_task
            await asyncio.sleep(100)

    r = WaveReconciler(body)
    await r.start()
    deps, policies = {"client": {"server"}}, {"server": "always"}
    await r.update({"server": 0, "client": 0, "one": 0}, deps, policies=policies)
    assert await r.wait_until_complete(timeout=5)
    assert sorted(calls) == ["client", "one", "server"]
    await r.stop()
    asyncio.get_running_loop().set_task_factory(None)
    assert await leftover_tasks() == set()
