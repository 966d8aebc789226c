"""Run-time fan-out: ``execute(fan_out={parent: fn})`` and ``ChildId``."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from wave_executor import ChildId, DAGExecutor, RetryPolicy, WaveConfig
from wave_executor._core.fan_out import child_items
from wave_executor._core.resume import task_key
from wave_executor.backends import ThreadBackend
from wave_executor.store import MemoryStore, SQLiteStore
from wave_executor.testing import run_virtual

from .helpers import Recorder, leftover_tasks

FAST = WaveConfig(max_retries=0, circuit_breaker_enabled=False)


def make_body(outputs: dict[Any, Any], calls: list[Any] | None = None) -> Any:
    async def body(task_id: Any, spec: Any) -> Any:
        if calls is not None:
            calls.append(task_id)
        if task_id not in outputs:
            return (task_id, sorted(spec.get("_dep_outputs", {}).items(), key=repr))
        return outputs[task_id]

    return body


async def square(child: ChildId, item: int) -> int:
    return item * item


# -- ChildId ------------------------------------------------------------------------


def test_child_id_is_a_value_unlike_any_other_id() -> None:
    c = ChildId("fetch", 2)
    assert c == ChildId("fetch", 2) and hash(c) == hash(ChildId("fetch", 2))
    others: list[object] = [("fetch", 2), "fetch[2]", ChildId("fetch", "2")]
    assert all(c != other for other in others)
    assert str(c) == repr(c) == "fetch[2]"
    assert str(ChildId("a", "x")) == "a['x']"
    with pytest.raises(AttributeError):
        c.key = 3  # type: ignore[misc]
    assert len({c, ChildId("fetch", 2), ChildId("fetch", 3)}) == 2


def test_child_items_accepts_mappings_and_iterables_only() -> None:
    assert child_items("p", {"b": 1, "a": 2}) == [("b", 1), ("a", 2)]
    assert child_items("p", (x for x in "xy")) == [(0, "x"), (1, "y")]
    assert child_items("p", []) == []
    for bad in ("abc", b"abc", 5, None):
        with pytest.raises(TypeError, match="must return a mapping"):
            child_items("p", bad)


def test_store_keys_of_children_are_distinct_from_every_other_id() -> None:
    ids: list[Any] = [
        "a", "#a", 1, "1", "#1", 1.5, ChildId("a", 1), ChildId("a", "1"), ChildId(1, 1),
        ChildId("#a", 1), '#["a","#1"]', ChildId("a", "#1"),
    ]  # fmt: skip
    keys = [task_key(t) for t in ids]
    assert len(set(keys)) == len(keys)
    assert task_key("a") == "a" and task_key(1) == "#1"  # old keys unchanged
    with pytest.raises(TypeError):
        task_key(ChildId("a", (1, 2)))


# -- the basics ----------------------------------------------------------------------


async def test_a_list_fans_out_and_the_parent_gathers_the_outputs() -> None:
    body = make_body({"split": [1, 2, 3]})
    result = await DAGExecutor(FAST).execute(
        {"split": {}, "sum": {}}, {"sum": ["split"]}, body,
        inject_dep_outputs=True, fan_out={"split": square},
    )  # fmt: skip
    assert result.succeeded
    assert result.task_results["split"].output == {0: 1, 1: 4, 2: 9}
    assert result.task_results["sum"].output == ("sum", [("split", {0: 1, 1: 4, 2: 9})])
    children = result.children("split")
    assert list(children) == [ChildId("split", k) for k in range(3)]
    assert [r.output for r in children.values()] == [1, 4, 9]
    assert result.task_results[ChildId("split", 1)].status == "success"
    assert result.total_tasks == 5 and result.total_successful == 5  # children count
    assert result.children("sum") == {}


async def test_a_mapping_keeps_its_keys_and_order() -> None:
    async def upper(child: ChildId, item: str) -> str:
        return f"{child.key}={item.upper()}"

    body = make_body({"p": {"z": "a", "y": "b", "x": "c"}})
    result = await DAGExecutor(FAST).execute({"p": {}}, {}, body, fan_out={"p": upper})
    assert list(result.task_results["p"].output.items()) == [
        ("z", "z=A"), ("y", "y=B"), ("x", "x=C"),
    ]  # fmt: skip


async def test_an_empty_output_succeeds_at_once_with_an_empty_dict() -> None:
    body = make_body({"p": []})
    result = await DAGExecutor(FAST).execute(
        {"p": {}, "q": {}}, {"q": ["p"]}, body, inject_dep_outputs=True, fan_out={"p": square}
    )
    assert result.succeeded and result.task_results["p"].output == {}
    assert result.task_results["q"].output == ("q", [("p", {})])


@pytest.mark.parametrize("output", ["abc", b"ab", 42, None])
async def test_an_output_that_is_not_a_collection_fails_the_parent(output: Any) -> None:
    calls: list[Any] = []
    body = make_body({"p": output}, calls)
    result = await DAGExecutor(WaveConfig(max_retries=3, circuit_breaker_enabled=False)).execute(
        {"p": {}, "q": {}}, {"q": ["p"]}, body, fan_out={"p": square}
    )
    p = result.task_results["p"]
    assert p.status == "failed" and "must return a mapping" in (p.error or "")
    assert calls == ["p"]  # a TypeError of the output's shape is not retried
    assert result.task_results["q"].status == "skipped"


async def test_a_sync_function_returning_an_awaitable_works_and_a_plain_value_fails() -> None:
    def via_sync(child: ChildId, item: int) -> Any:
        return square(child, item)

    def plain(child: ChildId, item: int) -> int:
        return item

    body = make_body({"a": [1, 2], "b": [1]})
    result = await DAGExecutor(FAST).execute(
        {"a": {}, "b": {}}, {}, body, fan_out={"a": via_sync, "b": plain}
    )
    assert result.task_results["a"].output == {0: 1, 1: 4}
    assert result.task_results[ChildId("b", 0)].status == "failed"
    assert "not an awaitable" in (result.task_results[ChildId("b", 0)].error or "")


async def test_fan_out_arguments_are_checked_before_anything_runs() -> None:
    calls: list[Any] = []
    body = make_body({}, calls)
    ex = DAGExecutor(FAST)
    with pytest.raises(ValueError, match="not defined in tasks"):
        await ex.execute({"a": {}}, {}, body, fan_out={"zz": square})
    with pytest.raises(TypeError, match="must be callable"):
        await ex.execute({"a": {}}, {}, body, fan_out={"a": 3})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="must be a mapping"):
        await ex.execute({"a": {}}, {}, body, fan_out=[square])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ChildId"):
        await ex.execute({"a": {}, ChildId("a", 0): {}}, {}, body, fan_out={"a": square})
    assert calls == []


# -- failures and trigger rules ------------------------------------------------------


async def flaky(child: ChildId, item: int) -> int:
    if item % 2:
        raise RuntimeError(f"odd item {item}")
    return item


async def test_failed_children_fail_the_parent_and_all_done_sees_the_rest() -> None:
    body = make_body({"p": [0, 1, 2, 3, 4]})
    tasks: dict[str, Any] = {"p": {}, "strict": {}, "cleanup": {}, "on_fail": {}}
    deps = {"strict": ["p"], "cleanup": ["p"], "on_fail": ["p"]}
    result = await DAGExecutor(FAST).execute(
        tasks, deps, body, inject_dep_outputs=True, fan_out={"p": flaky},
        trigger_rules={"cleanup": "all_done", "on_fail": "one_failed"},
    )  # fmt: skip
    p = result.task_results["p"]
    assert p.status == "failed"
    assert p.error is not None and "2 of 5" in p.error and "p[1]" in p.error and "p[3]" in p.error
    assert p.output == {0: 0, 2: 2, 4: 4}  # what the succeeded children gave
    assert result.task_results["strict"].status == "skipped"
    assert result.task_results["cleanup"].output == ("cleanup", [("p", {0: 0, 2: 2, 4: 4})])
    assert result.task_results["on_fail"].status == "success"
    statuses = {c.key: r.status for c, r in result.children("p").items()}
    assert statuses == {0: "success", 1: "failed", 2: "success", 3: "failed", 4: "success"}


def test_children_inherit_retry_policy_and_timeout() -> None:
    attempts: dict[Any, int] = {}

    async def child(c: ChildId, item: str) -> str:
        attempts[c] = attempts.get(c, 0) + 1
        if item == "flaky" and attempts[c] < 3:
            raise RuntimeError("not yet")
        if item == "slow":
            await asyncio.sleep(10)
        return item

    async def main() -> Any:
        return await DAGExecutor(FAST).execute(
            {"p": {}}, {}, make_body({"p": ["flaky", "slow", "ok"]}), fan_out={"p": child},
            retry_policies={"p": RetryPolicy(max_retries=2, base_delay=0.1)},
            timeouts={"p": 1.0},
        )  # fmt: skip

    result, elapsed = run_virtual(main())
    flaky_r, slow_r, ok_r = result.children("p").values()
    assert (flaky_r.status, flaky_r.retry_count, flaky_r.output) == ("success", 2, "flaky")
    assert slow_r.status == "timeout" and attempts[ChildId("p", 1)] == 1  # timeouts: no retry
    assert ok_r.status == "success"
    assert result.task_results["p"].status == "failed"
    assert elapsed < 5


# -- scheduling: caps, groups, priorities, breakers, backends, events ----------------


def test_children_respect_the_cap_and_their_parents_group() -> None:
    running = peak = 0
    peak_by_group: dict[str, int] = {}
    now: dict[str, int] = {}

    async def child(c: ChildId, item: int) -> None:
        nonlocal running, peak
        group = "slow" if c.parent == "s" else "other"
        running += 1
        now[group] = now.get(group, 0) + 1
        peak = max(peak, running)
        peak_by_group[group] = max(peak_by_group.get(group, 0), now[group])
        await asyncio.sleep(0.01)
        now[group] -= 1
        running -= 1

    config = WaveConfig(
        max_retries=0, circuit_breaker_enabled=False, max_parallel_per_wave=5,
        adaptive_batch_window=False, adaptive_group_windows=False,
        specialist_budgets={"slow": 2},
    )  # fmt: skip

    async def main() -> Any:
        return await DAGExecutor(config).execute(
            {"s": {}, "o": {}}, {}, make_body({"s": range(12), "o": range(12)}),
            fan_out={"s": child, "o": child}, groups={"s": "slow"},
        )  # fmt: skip

    result, _ = run_virtual(main())
    assert result.succeeded and result.total_tasks == 26
    assert peak == 5 and peak_by_group["slow"] == 2


def test_a_group_function_is_asked_about_each_child() -> None:
    seen: list[Any] = []
    running: dict[Any, int] = {}
    peak: dict[Any, int] = {}

    def group_of(task_id: Any, spec: Any) -> str | None:
        seen.append(task_id)
        if isinstance(task_id, ChildId):
            return "even" if spec % 2 == 0 else None  # None: the parent's group
        return "parent"

    async def child(c: ChildId, item: int) -> None:
        g = "even" if item % 2 == 0 else "parent"
        running[g] = running.get(g, 0) + 1
        peak[g] = max(peak.get(g, 0), running[g])
        await asyncio.sleep(0.01)
        running[g] -= 1

    config = WaveConfig(
        max_retries=0, circuit_breaker_enabled=False, max_parallel_per_wave=50,
        adaptive_batch_window=False, adaptive_group_windows=False,
        specialist_budgets={"even": 1, "parent": 3},
    )  # fmt: skip

    async def main() -> Any:
        return await DAGExecutor(config).execute(
            {"p": {}}, {}, make_body({"p": range(10)}), fan_out={"p": child}, groups=group_of
        )

    result, _ = run_virtual(main())
    assert result.succeeded
    assert ChildId("p", 3) in seen
    assert peak == {"even": 1, "parent": 3}


async def test_children_share_their_parents_circuit_breaker() -> None:
    config = WaveConfig(max_retries=0, circuit_failure_threshold=2, max_parallel_per_wave=1)
    calls: list[Any] = []

    async def broken(c: ChildId, item: int) -> None:
        calls.append(c)
        raise ConnectionError("down")

    result = await DAGExecutor(config).execute(
        {"p": {}}, {}, make_body({"p": range(5)}), fan_out={"p": broken},
        circuit_key=lambda task_id, spec: "api" if task_id == "p" else None,
    )  # fmt: skip
    assert len(calls) == 2  # then the "api" circuit is open: the rest fail fast
    errors = [r.error or "" for r in result.children("p").values()]
    assert sum("circuit" in e.lower() for e in errors) == 3


async def test_children_run_on_their_parents_backend() -> None:
    threads: set[str] = set()

    def on_thread(c: ChildId, item: int) -> int:  # a thread backend runs plain functions
        threads.add(threading.current_thread().name)
        return item

    def main_thread_body(task_id: Any, spec: Any) -> Any:
        return [1, 2, 3]

    with ThreadBackend(max_workers=2) as backend:
        result = await DAGExecutor(FAST).execute(
            {"p": {}}, {}, main_thread_body, fan_out={"p": on_thread}, backends={"p": backend}
        )
    assert result.task_results["p"].output == {0: 1, 1: 2, 2: 3}
    assert threads and threading.current_thread().name not in threads


async def test_children_are_dispatched_by_their_parents_priority() -> None:
    order: list[Any] = []

    async def body(task_id: Any, spec: Any) -> Any:
        order.append(task_id)
        return range(3) if task_id == "head" else None

    async def child(c: ChildId, item: int) -> None:
        order.append(c)

    config = WaveConfig(max_retries=0, max_parallel_per_wave=1, adaptive_batch_window=False)
    # "head" leads a long chain; "lone" has none: head's children outrank "lone".
    tasks: dict[str, Any] = {"head": {}, "lone": {}, "x": {}, "y": {}}
    deps = {"x": ["head"], "y": ["x"]}
    await DAGExecutor(config).execute(tasks, deps, body, fan_out={"head": child})
    assert order[:4] == ["head", ChildId("head", 0), ChildId("head", 1), ChildId("head", 2)]


async def test_events_of_children_name_their_parent() -> None:
    ex = DAGExecutor(FAST)
    events = Recorder()
    ex.on_event(events)
    result = await ex.execute({"p": {}}, {}, make_body({"p": [0, 1]}), fan_out={"p": flaky})
    assert not result.succeeded
    child_events = [e for _, e in events.events if isinstance(e["task_id"], ChildId)]
    assert child_events and all(e["parent_id"] == "p" for e in child_events)
    assert events.types(ChildId("p", 0)) == ["TASK_STARTED", "TASK_COMPLETED"]
    assert events.types(ChildId("p", 1))[-1] == "TASK_ESCALATED"
    failed = events.of("TASK_FAILED")[-1]
    assert failed["task_id"] == "p" and failed["failed_children"] == [ChildId("p", 1)]
    assert "parent_id" not in failed


def test_the_critical_path_goes_through_the_slowest_child() -> None:
    async def child(c: ChildId, item: float) -> None:
        await asyncio.sleep(item)

    async def body(task_id: Any, spec: Any) -> Any:
        await asyncio.sleep(0.05)
        return [0.1, 0.5, 0.2] if task_id == "p" else None

    async def main() -> Any:
        return await DAGExecutor(FAST).execute(
            {"p": {}, "q": {}}, {"q": ["p"]}, body, fan_out={"p": child}
        )

    result, _ = run_virtual(main())
    assert result.get_critical_path({"q": ["p"]}) == ["p", ChildId("p", 1), "q"]
    assert result.task_results["p"].duration_ms >= 500


# -- stopping -------------------------------------------------------------------------


async def test_cancelling_the_run_leaves_no_child_running() -> None:
    started: set[Any] = set()
    ended: set[Any] = set()
    enough = asyncio.Event()

    async def child(c: ChildId, item: int) -> None:
        started.add(c)
        if len(started) == 4:
            enough.set()
        try:
            await asyncio.sleep(3600)
        finally:
            ended.add(c)

    config = WaveConfig(max_retries=0, max_parallel_per_wave=4, adaptive_batch_window=False)
    run = asyncio.ensure_future(
        DAGExecutor(config).execute(
            {"p": {}}, {}, make_body({"p": range(100)}), fan_out={"p": child}
        )
    )
    await asyncio.wait_for(enough.wait(), 5)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert len(started) == 4 and ended == started
    assert await leftover_tasks() == set()


def test_stop_on_first_error_and_the_total_timeout_reach_the_children() -> None:
    async def child(c: ChildId, item: int) -> None:
        await asyncio.sleep(0.01 if item == 0 else 10)
        if item == 0:
            raise RuntimeError("first")

    config = WaveConfig(
        max_retries=0, stop_on_first_error=True, max_parallel_per_wave=3,
        circuit_breaker_enabled=False,
    )  # fmt: skip

    async def stopping() -> Any:
        return await DAGExecutor(config).execute(
            {"p": {}}, {}, make_body({"p": range(6)}), fan_out={"p": child}
        )

    result, elapsed = run_virtual(stopping())
    assert result.stopped_reason == "stop_on_first_error" and elapsed < 1
    statuses = result.statuses()
    assert statuses[ChildId("p", 0)] == "failed" and statuses["p"] == "cancelled"
    assert all(statuses[ChildId("p", k)] == "cancelled" for k in range(1, 6))

    timed = WaveConfig(max_retries=0, total_execution_timeout=1.0, max_parallel_per_wave=3)

    async def timing_out() -> Any:
        return await DAGExecutor(timed).execute(
            {"p": {}}, {}, make_body({"p": range(1, 7)}), fan_out={"p": child}
        )

    result, elapsed = run_virtual(timing_out())
    assert result.stopped_reason == "total_timeout" and elapsed == pytest.approx(1.0)
    assert set(result.statuses().values()) == {"timeout"}
    assert len(result.statuses()) == 7


# -- durability -----------------------------------------------------------------------


async def test_a_resumed_run_reruns_only_the_children_that_did_not_succeed() -> None:
    store = MemoryStore()
    calls: list[Any] = []
    broken = {3, 5}

    async def child(c: ChildId, item: int) -> int:
        calls.append(c.key)
        if item in broken:
            raise RuntimeError("flaky")
        return item * 10

    body = make_body({"p": list(range(8))})
    tasks: dict[str, Any] = {"p": {}, "q": {}}
    deps = {"q": ["p"]}
    ex = DAGExecutor(FAST)
    first = await ex.execute(tasks, deps, body, fan_out={"p": child}, store=store, run_id="r")
    assert not first.succeeded and sorted(calls) == list(range(8))
    calls.clear()
    broken.clear()
    second = await ex.execute(tasks, deps, body, fan_out={"p": child}, store=store, run_id="r")
    assert sorted(calls) == [3, 5]  # the six finished children were not run again
    assert second.succeeded
    assert second.task_results["p"].output == {k: k * 10 for k in range(8)}
    assert list(second.task_results["p"].output) == list(range(8))  # item order
    restored_children = [c for c in second.restored if isinstance(c, ChildId)]
    assert restored_children == [ChildId("p", k) for k in (0, 1, 2, 4, 6, 7)]
    calls.clear()
    third_calls: list[Any] = []
    third = await ex.execute(
        tasks, deps, make_body({"p": list(range(8))}, third_calls), fan_out={"p": child},
        store=store, run_id="r",
    )  # fmt: skip
    assert calls == [] and third_calls == []  # the whole parent is reused, int keys included
    assert third.task_results["p"].output == {k: k * 10 for k in range(8)}


async def test_a_changed_item_runs_its_child_again_on_resume() -> None:
    store = MemoryStore()
    calls: list[Any] = []
    items = [1, 2, 3]

    async def body(task_id: Any, spec: Any) -> Any:
        if task_id == "fail":
            raise RuntimeError("keep the run unfinished")
        return list(items)

    async def child(c: ChildId, item: int) -> int:
        calls.append(item)
        return item

    tasks: dict[str, Any] = {"p": {}, "fail": {}}
    deps = {"fail": ["p"]}
    ex = DAGExecutor(FAST)
    await ex.execute(tasks, deps, body, fan_out={"p": child}, store=store, run_id="r")
    # A changed spec runs "p" again; its children are looked up by item.
    calls.clear()
    items[1] = 20
    result = await ex.execute(
        {"p": {"v": 2}, "fail": {}}, deps, body, fan_out={"p": child}, store=store, run_id="r"
    )
    assert calls == [20]  # items 1 and 3 are unchanged: their children are reused
    assert result.task_results["p"].output == {0: 1, 1: 20, 2: 3}


async def test_children_with_keys_a_store_cannot_keep_fail_the_parent() -> None:
    body = make_body({"p": {(1, 2): "a"}})
    result = await DAGExecutor(FAST).execute(
        {"p": {}}, {}, body, fan_out={"p": square}, store=MemoryStore()
    )
    assert result.task_results["p"].status == "failed"
    assert "strings or numbers" in (result.task_results["p"].error or "")


def test_level_mode_and_metadag_take_no_fan_out() -> None:
    import inspect

    from wave_executor import LevelExecutor, MetaDAG

    assert "fan_out" not in inspect.signature(LevelExecutor.execute).parameters
    assert "fan_out" in inspect.signature(DAGExecutor.execute).parameters
    assert not any("fan_out" in str(p) for p in inspect.signature(MetaDAG.__init__).parameters)


def test_after_stop_on_first_error_cleanup_tasks_still_run() -> None:
    async def child(c: ChildId, item: int) -> None:
        await asyncio.sleep(0.01 if item == 0 else 10)
        if item == 0:
            raise RuntimeError("first")

    config = WaveConfig(max_retries=0, stop_on_first_error=True, circuit_breaker_enabled=False)

    async def main() -> Any:
        return await DAGExecutor(config).execute(
            {"p": {}, "cleanup": {}}, {"cleanup": ["p"]}, make_body({"p": range(3)}),
            inject_dep_outputs=True, fan_out={"p": child}, trigger_rules={"cleanup": "all_done"},
        )  # fmt: skip

    result, elapsed = run_virtual(main())
    assert elapsed < 1
    assert result.statuses()["p"] == "cancelled"
    assert result.task_results["cleanup"].output == ("cleanup", [])  # p gave no output


# -- the pure core --------------------------------------------------------------------


def test_a_plan_grows_by_children_that_release_nothing() -> None:
    from wave_executor._core.graph import build_graph
    from wave_executor._core.plan import Plan
    from wave_executor._core.status import TaskStatus

    graph = build_graph(["p", "q"], {"q": ["p"]})
    plan = Plan(graph)
    assert plan.take() == 0
    first = graph.grow([ChildId("p", 0), ChildId("p", 1), ChildId("p", 2)], graph.priority[0])
    assert first == 2 and graph.index[ChildId("p", 2)] == 4 and len(graph) == 5
    assert plan.expand(0, 3, completed=[1]) == 2
    assert plan.status(3) is TaskStatus.SUCCESS  # restored
    assert plan.unfinished == 1 + 1 + 2  # p (running), q, two children
    assert {plan.take(), plan.take()} == {2, 4} and plan.take() is None
    assert plan.succeed(2) == 0 and plan.fail(4, TaskStatus.FAILED) == []
    assert plan.status(0) is TaskStatus.RUNNING  # the runtime ends the parent
    assert plan.succeed(0) == 1 and plan.take() == 1
    with pytest.raises(ValueError, match="unique"):
        graph.grow([ChildId("p", 0)], 0)


def test_a_plan_refuses_to_expand_a_task_that_is_not_running() -> None:
    from wave_executor._core.graph import build_graph
    from wave_executor._core.plan import Plan
    from wave_executor.errors import IllegalTransitionError

    graph = build_graph(["p", "q"], {"q": ["p"]})
    plan = Plan(graph)
    with pytest.raises(IllegalTransitionError):
        plan.expand(1, 2)  # "q" is pending


async def test_a_sqlite_store_resumes_children_across_store_instances(tmp_path: Path) -> None:
    calls: list[Any] = []
    broken = {"b"}

    async def child(c: ChildId, item: str) -> str:
        calls.append(c.key)
        if item in broken:
            raise RuntimeError("flaky")
        return item.upper()

    body = make_body({"p": {"x": "a", "y": "b", 7: "c"}})
    db = tmp_path / "runs.db"
    for _ in range(2):
        async with SQLiteStore(db) as store:
            result = await DAGExecutor(FAST).execute(
                {"p": {}}, {}, body, fan_out={"p": child}, store=store, run_id="r"
            )
        broken.clear()
    assert calls == ["x", "y", 7, "y"]
    assert result.task_results["p"].output == {"x": "A", "y": "B", 7: "C"}
    async with SQLiteStore(db) as store:
        keys = {t.task_key for t in await store.run_tasks("r")}
    assert keys == {"p", '#["p","x"]', '#["p","y"]', '#["p","#7"]'}


async def test_a_failure_while_splitting_the_output_fails_the_parent() -> None:
    def items() -> Any:
        yield 1
        raise LookupError("the listing broke")

    def group_of(task_id: Any, spec: Any) -> str | None:
        if isinstance(task_id, ChildId):
            raise KeyError("no group for children")
        return None

    async def body(task_id: Any, spec: Any) -> Any:
        return items() if task_id == "gen" else [1, 2]

    result = await DAGExecutor(FAST).execute(
        {"gen": {}, "grouped": {}, "other": {}}, {}, body,
        fan_out={"gen": square, "grouped": square}, groups=group_of,
    )  # fmt: skip
    assert "the listing broke" in (result.task_results["gen"].error or "")
    assert "no group for children" in (result.task_results["grouped"].error or "")
    assert result.task_results["other"].status == "success"
    assert result.total_tasks == 3  # no child was made


async def test_the_callers_tasks_mapping_is_left_as_it_was() -> None:
    tasks: dict[str, dict[str, Any]] = {"split": {}, "sum": {}}
    result = await DAGExecutor(FAST).execute(
        tasks, {"sum": ["split"]}, make_body({"split": [1, 2]}), fan_out={"split": square}
    )
    assert result.succeeded and len(result.children("split")) == 2
    assert tasks == {"split": {}, "sum": {}}


async def test_progress_is_told_of_the_children_a_fan_out_adds() -> None:
    from wave_executor.progress import CountingProgress

    progress = CountingProgress()
    result = await DAGExecutor(FAST).execute(
        {"split": {}, "sum": {}}, {"sum": ["split"]}, make_body({"split": [1, 2, 3]}),
        fan_out={"split": square}, progress=progress,
    )  # fmt: skip
    assert result.succeeded
    assert progress.total == 5 and progress.done == 5


async def test_progress_counts_a_parent_whose_children_failed_as_failed() -> None:
    from wave_executor.progress import CountingProgress

    async def half(child: ChildId, item: int) -> int:
        if item % 2:
            raise ValueError(item)
        return item

    progress = CountingProgress()
    await DAGExecutor(FAST).execute(
        {"split": {}}, {}, make_body({"split": [1, 2]}), fan_out={"split": half}, progress=progress
    )
    assert progress.total == progress.done == 3
    assert progress.failed == 2  # the child 1 and its parent


async def test_a_store_that_cannot_record_a_failed_parent_does_not_break_the_run() -> None:
    class Refusing(MemoryStore):
        def record_outcome(self, run_id: str, rec: Any) -> None:
            if rec.task_key == task_key("split"):
                raise asyncio.CancelledError  # nobody cancelled anything
            super().record_outcome(run_id, rec)

    async def half(child: ChildId, item: int) -> int:
        if item % 2:
            raise ValueError(item)
        return item

    result = await asyncio.wait_for(
        DAGExecutor(FAST).execute(
            {"split": {}, "after": {}}, {"after": ["split"]}, make_body({"split": [1, 2]}),
            fan_out={"split": half}, store=Refusing(), trigger_rules={"after": "all_done"},
        ),
        timeout=30,
    )  # fmt: skip
    assert result.task_results["split"].status == "failed"
    assert result.task_results["after"].status == "success"
