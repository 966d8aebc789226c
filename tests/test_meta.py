"""MetaDAG: the 0.3.0 contract and the defects we do not copy."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.helpers import Recorder, leftover_tasks
from wave_executor import WaveCircularDependencyError, WaveConfig
from wave_executor.meta import (
    MetaDAG,
    MetaDAGNodeSpec,
    MetaDAGResult,
    NodeOutcome,
    NodeRunner,
)
from wave_executor.testing import run_virtual


async def echo(task_id: Any, spec: Any) -> Any:
    return {"task": task_id, "upstream": spec.get("_upstream_outputs")}


async def boom(task_id: Any, spec: Any) -> Any:
    raise RuntimeError(f"{task_id} broke")


def dag(node_id: str, tasks: dict[Any, Any] | None = None, body: Any = echo, **kw: Any) -> Any:
    return MetaDAGNodeSpec(node_id, tasks if tasks is not None else {"t": {}}, body, **kw)


# -- 0.3.0's README example --------------------------------------------------------


async def test_the_0_3_0_readme_example_runs_unchanged() -> None:
    url_a, url_b = "https://a.example", "https://b.example"
    seen: dict[str, Any] = {}

    async def fetch(task_id: Any, spec: Any) -> Any:
        return f"<html {spec}>"  # no upstream node: the spec as it is

    async def analyze(task_id: Any, spec: Any) -> Any:
        seen["analyze"] = spec["_upstream_outputs"]
        return "report"

    async def store(task_id: Any, spec: Any) -> Any:
        seen["store"] = spec["_upstream_outputs"]
        return "written"

    meta = (
        MetaDAG(inject_dep_outputs=True)
        .add_node(
            MetaDAGNodeSpec(
                node_id="ingest",
                tasks={"page_a": url_a, "page_b": url_b},
                task_executor=fetch,
            )
        )
        .add_node(
            MetaDAGNodeSpec(
                node_id="analyze",
                tasks={"report": {}},
                task_executor=analyze,  # receives _upstream_outputs["ingest"]
            ),
            depends_on=["ingest"],
        )
        .add_node(
            MetaDAGNodeSpec(
                node_id="store",
                tasks={"db_write": {}},
                task_executor=store,
            ),
            depends_on=["analyze"],
        )
    )

    result = await meta.execute()
    text = json.dumps(result.to_dict())

    assert result.total_nodes == 3
    assert result.successful_nodes == 3
    assert result.failed_nodes == result.skipped_nodes == 0
    assert seen["analyze"] == {"ingest": {"page_a": f"<html {url_a}>", "page_b": f"<html {url_b}>"}}
    assert seen["store"] == {"analyze": {"report": "report"}}
    assert result.node_results["store"].task_outputs == {"db_write": "written"}
    assert json.loads(text)["nodes"]["ingest"]["status"] == "success"


async def test_empty_metadag() -> None:
    result = await MetaDAG().execute()
    assert result.total_nodes == 0
    assert result.node_results == {}
    json.dumps(result.to_dict())


# -- validation ----------------------------------------------------------------


def test_duplicate_node_id_raises() -> None:
    meta = MetaDAG().add_node(dag("a"))
    with pytest.raises(ValueError, match="already defined"):
        meta.add_node(dag("a"))


async def test_unknown_upstream_raises_at_execute() -> None:
    meta = MetaDAG().add_node(dag("a"), depends_on=["ghost"])
    with pytest.raises(ValueError, match="not defined"):
        await meta.execute()


async def test_cycle_raises() -> None:
    meta = MetaDAG().add_node(dag("a"), depends_on=["b"]).add_node(dag("b"), depends_on=["a"])
    with pytest.raises(WaveCircularDependencyError) as info:
        await meta.execute()
    assert info.value.cycle_members == {"a", "b"}


async def test_unknown_node_type_raises() -> None:
    meta = MetaDAG().add_node(dag("a", node_type="lambda"))
    with pytest.raises(ValueError, match="unknown node_type"):
        await meta.execute()


def test_missing_executor_and_meta_are_rejected() -> None:
    with pytest.raises(TypeError, match="task_executor"):
        MetaDAG().add_node(MetaDAGNodeSpec("a", {"t": {}}, None))
    with pytest.raises(ValueError, match="meta"):
        MetaDAG().add_node(MetaDAGNodeSpec("a", node_type="meta"))


# -- injection -----------------------------------------------------------------


async def test_non_dict_specs_are_wrapped_and_caller_specs_untouched() -> None:
    got: dict[str, Any] = {}

    async def body(task_id: Any, spec: Any) -> Any:
        got[task_id] = spec
        return task_id

    original = {"x": 1}
    meta = (
        MetaDAG()
        .add_node(dag("up", {"u": 7}, body))
        .add_node(dag("down", {"plain": "text", "d": original}, body), depends_on=["up"])
    )
    await meta.execute()
    assert got["u"] == 7  # no upstream node: the spec as it is (as in 0.3.0)
    assert got["plain"] == {"spec": "text", "_upstream_outputs": {"up": {"u": "u"}}}
    assert got["d"] == {"x": 1, "_upstream_outputs": {"up": {"u": "u"}}}
    assert original == {"x": 1}


async def test_no_injection_when_disabled() -> None:
    got: list[Any] = []

    async def body(task_id: Any, spec: Any) -> Any:
        got.append(spec)
        return 1

    meta = MetaDAG(inject_dep_outputs=False).add_node(dag("a", {"t": "s"}, body))
    meta.add_node(dag("b", {"t": {}}, body), depends_on=["a"])
    await meta.execute()
    assert got == ["s", {}]


async def test_node_inject_dep_outputs_feeds_tasks_within_a_dag_node() -> None:
    async def body(task_id: Any, spec: Any) -> Any:
        return spec.get("_dep_outputs", {})

    node = dag("n", {"a": {}, "b": {}}, body, task_dependencies={"b": ["a"]})
    node.inject_dep_outputs = True
    result = await MetaDAG().add_node(node).execute()
    assert result.node_results["n"].task_outputs == {"a": {}, "b": {"a": {}}}


async def test_outputs_flow_down_three_levels_of_nesting() -> None:
    """outer: src -> mid(meta: inner(meta: leaf)) -> sink."""
    seen: dict[str, Any] = {}

    async def leaf(task_id: Any, spec: Any) -> Any:
        seen["leaf"] = spec["_upstream_outputs"]
        return spec["_upstream_outputs"]["src"]["s"] * 10

    async def sink(task_id: Any, spec: Any) -> Any:
        seen["sink"] = spec["_upstream_outputs"]
        return "done"

    level3 = MetaDAG().add_node(dag("leaf", {"l": {}}, leaf))
    level2 = MetaDAG().add_node(MetaDAGNodeSpec("inner", node_type="meta", meta=level3))
    top = (
        MetaDAG()
        .add_node(dag("src", {"s": {}}, lambda_returning(4)))
        .add_node(MetaDAGNodeSpec("mid", node_type="meta", meta=level2), depends_on=["src"])
        .add_node(dag("sink", {"k": {}}, sink), depends_on=["mid"])
    )
    result = await top.execute()

    assert result.successful_nodes == 3
    assert seen["leaf"] == {"src": {"s": 4}}
    assert seen["sink"] == {"mid": {"inner": {"leaf": {"l": 40}}}}
    mid = result.node_results["mid"]
    assert mid.nested is not None
    inner = mid.nested.node_results["inner"]
    assert inner.nested is not None
    assert inner.nested.node_results["leaf"].task_outputs == {"l": 40}
    json.dumps(result.to_dict())


def lambda_returning(value: Any) -> Any:
    async def body(task_id: Any, spec: Any) -> Any:
        return value

    return body


def test_the_critical_path_crosses_nodes_tasks_and_nesting() -> None:
    async def sleepy(task_id: Any, spec: Any) -> Any:
        await asyncio.sleep(spec["s"])
        return task_id

    def secs(**durations: float) -> dict[str, Any]:
        return {t: {"s": d} for t, d in durations.items()}

    async def main() -> MetaDAGResult:
        inner = (
            MetaDAG()
            .add_node(MetaDAGNodeSpec("p", secs(t=4.0), sleepy))
            .add_node(MetaDAGNodeSpec("q", secs(u=1.0), sleepy), depends_on=["p"])
        )
        prep = MetaDAGNodeSpec(
            "prep", secs(x=1.0, y=2.0, z=0.5), sleepy, task_dependencies={"y": ["x"]}
        )
        return await (
            MetaDAG()
            .add_node(prep)
            .add_node(MetaDAGNodeSpec("inner", node_type="meta", meta=inner))
            .add_node(MetaDAGNodeSpec("final", secs(f=1.0), sleepy), depends_on=["prep", "inner"])
            .execute()
        )

    result, elapsed = run_virtual(main())
    assert elapsed == pytest.approx(6.0)
    expected = [("inner", "p", "t"), ("inner", "q", "u"), ("final", "f")]
    assert result.critical_path() == expected
    assert result.node_results["prep"].critical_path() == [("prep", "x"), ("prep", "y")]
    assert json.loads(json.dumps(result.to_dict()))["critical_path"] == [list(s) for s in expected]


async def test_nested_failure_fails_the_meta_node_and_skips_downstream() -> None:
    no_retry = WaveConfig(max_retries=0)
    inner = (
        MetaDAG()
        .add_node(dag("bad", body=boom, config=no_retry))
        .add_node(dag("after"), depends_on=["bad"])
    )
    top = (
        MetaDAG()
        .add_node(MetaDAGNodeSpec("m", node_type="meta", meta=inner))
        .add_node(dag("next"), depends_on=["m"])
    )
    result = await top.execute()
    m = result.node_results["m"]
    assert m.status == "failed"
    assert m.error is not None and "'bad': failed" in m.error
    assert m.nested is not None and m.nested.node_results["after"].status == "skipped"
    assert result.node_results["next"].status == "skipped"


# -- truthful statuses: dag nodes ------------------------------------------------


async def test_failed_dag_node_skips_downstream_nodes() -> None:
    events = Recorder()
    cfg = WaveConfig(max_retries=0)
    meta = (
        MetaDAG()
        .add_node(dag("a", {"ok": {}, "bad": {}}, body_failing("bad"), config=cfg))
        .add_node(dag("b"), depends_on=["a"])
        .add_node(dag("c"), depends_on=["b"])
        .add_node(dag("d"))
    )
    meta.on_event(events)
    result = await meta.execute()

    statuses = {n: r.status for n, r in result.node_results.items()}
    assert statuses == {"a": "failed", "b": "skipped", "c": "skipped", "d": "success"}
    assert (result.successful_nodes, result.failed_nodes, result.skipped_nodes) == (1, 1, 2)
    a = result.node_results["a"]
    assert a.task_outputs == {"ok": "ok"}  # outputs of the tasks that succeeded
    assert a.error is not None and "'bad': failed" in a.error
    assert a.dag_result is not None and a.dag_result.total_failed == 1
    b = result.node_results["b"]
    assert b.error is not None and "'a'" in b.error
    skipped = {e["task_id"]: e["failed_deps"] for e in events.of("NODE_SKIPPED")}
    assert skipped == {"b": ["a"], "c": ["b"]}
    assert not result.succeeded


def body_failing(*bad: str) -> Any:
    async def body(task_id: Any, spec: Any) -> Any:
        if task_id in bad:
            raise RuntimeError("nope")
        return task_id

    return body


async def test_partial_success_needs_opt_in() -> None:
    cfg = WaveConfig(max_retries=0, allow_partial_success=True, min_success_rate=0.5)
    tasks: dict[str, Any] = {"x": {}, "y": {}, "z": {}}
    strict = dag("strict", tasks, body_failing("z"), config=cfg)
    partial = dag("partial", tasks, body_failing("z"), config=cfg, accept_partial=True)
    too_many = dag("too_many", tasks, body_failing("y", "z"), config=cfg, accept_partial=True)
    result = await MetaDAG().add_node(strict).add_node(partial).add_node(too_many).execute()
    assert result.node_results["strict"].status == "failed"
    assert result.node_results["partial"].status == "success"
    assert result.node_results["partial"].task_outputs == {"x": "x", "y": "y"}
    assert result.node_results["too_many"].status == "failed"


def test_dag_node_timeout_is_failed_not_success() -> None:
    async def slow(task_id: Any, spec: Any) -> Any:
        await asyncio.sleep(10)

    async def main() -> MetaDAGResult:
        cfg = WaveConfig(default_task_timeout=1.0, max_retries=0)
        return await MetaDAG().add_node(dag("n", body=slow, config=cfg)).execute()

    result, elapsed = run_virtual(main())
    assert result.node_results["n"].status == "failed"
    assert result.node_results["n"].task_results["t"]["status"] == "timeout"
    assert elapsed == pytest.approx(1.0)


async def test_a_runner_that_raises_fails_the_node() -> None:
    class Broken:
        async def run(self, spec: MetaDAGNodeSpec, upstream_outputs: dict[Any, Any]) -> NodeOutcome:
            raise KeyError("oops")

    meta = MetaDAG().register_node_type("broken", Broken())
    meta.add_node(dag("n", node_type="broken")).add_node(dag("m"), depends_on=["n"])
    result = await meta.execute()
    assert result.node_results["n"].status == "failed"
    assert result.node_results["n"].error == "KeyError: 'oops'"
    assert result.node_results["m"].status == "skipped"


async def test_custom_node_kind_via_the_protocol() -> None:
    class Constant:
        async def run(self, spec: MetaDAGNodeSpec, upstream_outputs: dict[Any, Any]) -> NodeOutcome:
            return NodeOutcome("success", dict.fromkeys(spec.tasks, ("const", upstream_outputs)))

    runner: NodeRunner = Constant()
    assert isinstance(runner, NodeRunner)
    meta = MetaDAG().register_node_type("const", runner)
    meta.add_node(dag("a", {"v": {}})).add_node(dag("c", {"k": 1}, node_type="const"), ["a"])
    result = await meta.execute()
    upstream = {"a": {"v": {"task": "v", "upstream": None}}}  # "a" has no upstream node
    assert result.node_results["c"].task_outputs == {"k": ("const", upstream)}


# -- reconciler nodes ------------------------------------------------------------


def test_reconciler_node_succeeds_and_feeds_downstream() -> None:
    seen: list[Any] = []

    async def work(task_id: Any, spec: Any) -> Any:
        await asyncio.sleep(1)
        return f"{task_id}-out"

    async def after(task_id: Any, spec: Any) -> Any:
        seen.append(spec["_upstream_outputs"])
        return 1

    async def main() -> MetaDAGResult:
        rec = MetaDAGNodeSpec(
            "rec",
            {"a": {}, "b": {}},
            work,
            node_type="reconciler",
            task_dependencies={"b": ["a"]},
        )
        meta = MetaDAG().add_node(rec).add_node(dag("after", body=after), depends_on=["rec"])
        result = await meta.execute()
        assert await leftover_tasks() == set()
        return result

    result, elapsed = run_virtual(main())
    assert result.node_results["rec"].status == "success"
    assert result.node_results["rec"].task_outputs == {"a": "a-out", "b": "b-out"}
    assert seen == [{"rec": {"a": "a-out", "b": "b-out"}}]
    assert elapsed == pytest.approx(2.0)


def test_reconciler_node_fails_at_once_when_a_task_is_blocked() -> None:
    calls: list[float] = []

    async def crash(task_id: Any, spec: Any) -> Any:
        calls.append(asyncio.get_running_loop().time())
        raise RuntimeError("crash loop")

    async def main() -> MetaDAGResult:
        rec = MetaDAGNodeSpec(
            "rec",
            {"svc": {}, "dependent": {}},
            crash,
            node_type="reconciler",
            task_dependencies={"dependent": ["svc"]},
            completion_timeout=300.0,
            max_restart_attempts=2,
            restart_backoff_base=1.0,
        )
        meta = MetaDAG().add_node(rec).add_node(dag("after"), depends_on=["rec"])
        result = await meta.execute()
        assert await leftover_tasks() == set()
        return result

    result, elapsed = run_virtual(main())
    node = result.node_results["rec"]
    assert node.status == "failed"
    assert node.error is not None and "blocked" in node.error
    assert node.task_results["svc"]["status"] == "blocked"
    assert len(calls) == 3  # first run + 2 restarts (1 s, 2 s later)
    assert elapsed == pytest.approx(3.0)  # far less than completion_timeout
    assert result.node_results["after"].status == "skipped"


def test_reconciler_node_fails_when_a_task_fails_for_good() -> None:
    async def main() -> MetaDAGResult:
        rec = MetaDAGNodeSpec(
            "rec",
            {"x": {}, "y": {}},
            body_failing("x"),
            node_type="reconciler",
            policies={"x": "no"},
            task_dependencies={"y": ["x"]},
        )
        return await MetaDAG().add_node(rec).execute()

    result, elapsed = run_virtual(main())
    node = result.node_results["rec"]
    assert node.status == "failed"
    assert node.task_results["x"]["status"] == "failed"
    assert elapsed < 1.0


def test_reconciler_node_completion_timeout() -> None:
    async def forever(task_id: Any, spec: Any) -> Any:
        await asyncio.sleep(10_000)

    async def main() -> MetaDAGResult:
        rec = MetaDAGNodeSpec(
            "rec", {"x": {}}, forever, node_type="reconciler", completion_timeout=5.0
        )
        result = await MetaDAG().add_node(rec).execute()
        assert await leftover_tasks() == set()
        return result

    result, elapsed = run_virtual(main())
    assert result.node_results["rec"].status == "timeout"
    assert result.failed_nodes == 1
    assert elapsed == pytest.approx(5.0)


def test_reconciler_node_with_events_disabled_still_fails_within_a_poll() -> None:
    async def main() -> MetaDAGResult:
        rec = MetaDAGNodeSpec(
            "rec",
            {"x": {}},
            boom,
            node_type="reconciler",
            policies="no",
            config=WaveConfig(emit_events=False),
        )
        return await MetaDAG().add_node(rec).execute()

    result, elapsed = run_virtual(main())
    assert result.node_results["rec"].status == "failed"
    assert elapsed <= 0.1 + 1e-9


# -- events ----------------------------------------------------------------------


async def test_event_order_and_payloads() -> None:
    events = Recorder()
    delivered: list[str] = []

    async def async_callback(event_type: str, event: dict[str, Any]) -> None:
        delivered.append(event_type)

    meta = MetaDAG(config=WaveConfig(max_parallel_per_wave=1))
    meta.add_node(dag("a")).add_node(dag("b", body=boom, config=WaveConfig(max_retries=0)), ["a"])
    meta.add_node(dag("c"), depends_on=["b"])
    assert meta.on_event(events) is events
    meta.on_event(async_callback)
    result = await meta.execute()

    expected = [
        ("META_EXECUTION_STARTED", None),
        ("NODE_STARTED", "a"),
        ("NODE_COMPLETED", "a"),
        ("NODE_STARTED", "b"),
        ("NODE_COMPLETED", "b"),
        ("NODE_SKIPPED", "c"),
        ("META_EXECUTION_COMPLETED", None),
    ]
    assert [(t, e["task_id"]) for t, e in events.events] == expected
    assert delivered == [t for t, _ in expected]
    first = events.events[0][1]
    assert first["total_nodes"] == 3 and first["execution_id"] == result.execution_id
    assert events.of("NODE_STARTED")[0]["node_type"] == "dag"
    completed = events.of("NODE_COMPLETED")
    assert [e["status"] for e in completed] == ["success", "failed"]
    assert all(e["duration_ms"] >= 0 for e in completed)
    assert events.of("META_EXECUTION_COMPLETED")[0]["skipped_nodes"] == 1


def test_task_events_pass_on_the_events_of_tasks_inside_nodes() -> None:
    async def work(task_id: Any, spec: Any) -> Any:
        await asyncio.sleep(1)
        return task_id

    def build(task_events: bool) -> MetaDAG:
        two = dag("two", {"x": {}, "y": {}}, work, task_dependencies={"y": ["x"]})
        rec = MetaDAGNodeSpec("rec", {"svc": {}}, work, node_type="reconciler")
        meta = MetaDAG(task_events=task_events).add_node(dag("one", body=work))
        return meta.add_node(two, ["one"]).add_node(rec, ["two"])

    def events_of(meta: MetaDAG) -> list[tuple[str, Any, Any]]:
        seen: list[tuple[str, Any, Any]] = []
        meta.on_event(lambda kind, e: seen.append((kind, e["task_id"], e.get("node_id"))))
        result, _ = run_virtual(meta.execute())
        assert result.succeeded
        return seen

    quiet = events_of(build(task_events=False))
    assert all(not kind.startswith("TASK_") for kind, _, _ in quiet)  # 0.3.0's events only

    loud = events_of(build(task_events=True))
    assert [e for e in loud if not e[0].startswith("TASK_")] == quiet
    assert loud[1:4] == [
        ("NODE_STARTED", "one", "one"),  # NODE_* events carry node_id, as in 0.3.0
        ("TASK_STARTED", "t", "one"),
        ("TASK_COMPLETED", "t", "one"),
    ]
    two = [(kind, task) for kind, task, node in loud if node == "two" and kind.startswith("TASK_")]
    assert two == [
        ("TASK_STARTED", "x"),
        ("TASK_COMPLETED", "x"),
        ("TASK_STARTED", "y"),
        ("TASK_COMPLETED", "y"),
    ]
    rec = {kind for kind, _, node in loud if node == "rec" and kind.startswith("TASK_")}
    assert {"TASK_STARTED", "TASK_COMPLETED"} <= rec
    closing = loud.index(("NODE_COMPLETED", "two", "two"))
    assert loud.index(("TASK_COMPLETED", "y", "two")) < closing

    silent = build(task_events=True)
    silent.config = WaveConfig(emit_events=False)
    assert events_of(silent) == []


async def test_emit_events_false_silences_callbacks() -> None:
    events = Recorder()
    meta = MetaDAG(config=WaveConfig(emit_events=False)).add_node(dag("a"))
    meta.on_event(events)
    await meta.execute()
    assert events.events == []


# -- cancellation ----------------------------------------------------------------


def test_cancelling_execute_reaches_every_nested_task() -> None:
    cancelled: list[Any] = []

    async def hang(task_id: Any, spec: Any) -> Any:
        try:
            await asyncio.sleep(10_000)
        except asyncio.CancelledError:
            cancelled.append(task_id)
            raise

    async def main() -> None:
        inner = MetaDAG().add_node(dag("deep", {"deep_task": {}}, hang))
        meta = (
            MetaDAG()
            .add_node(dag("d", {"dag_task": {}}, hang))
            .add_node(MetaDAGNodeSpec("r", {"rec_task": {}}, hang, node_type="reconciler"))
            .add_node(MetaDAGNodeSpec("m", node_type="meta", meta=inner))
            .add_node(dag("later"), depends_on=["d"])
        )
        run = asyncio.create_task(meta.execute())
        await asyncio.sleep(5)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        assert await leftover_tasks() == set()

    _, elapsed = run_virtual(main())
    assert sorted(cancelled) == ["dag_task", "deep_task", "rec_task"]
    assert elapsed == pytest.approx(5.0)


# -- JSON ------------------------------------------------------------------------


def test_to_dict_is_json_serialisable_with_odd_keys_and_outputs() -> None:
    class Opaque:
        pass

    async def body(task_id: Any, spec: Any) -> Any:
        return {("tuple", "key"): Opaque(), "set": {1}}

    async def main() -> MetaDAGResult:
        meta = MetaDAG().add_node(dag("a", {1: {}}, body))
        meta.add_node(MetaDAGNodeSpec("r", {"x": {}}, body, node_type="reconciler"))
        meta.add_node(dag("f", body=boom, config=WaveConfig(max_retries=0)))
        meta.add_node(dag("s"), depends_on=["f"])
        return await meta.execute()

    result, _ = run_virtual(main())
    data = json.loads(json.dumps(result.to_dict()))
    assert data["nodes"]["a"]["task_outputs"]["1"]["set"] == [1]
    assert data["nodes"]["s"]["status"] == "skipped"
    assert data["nodes"]["r"]["task_results"]["x"]["status"] == "success"


def test_durations_follow_the_loop_clock() -> None:
    async def work(task_id: Any, spec: Any) -> Any:
        await asyncio.sleep(2)

    async def main() -> MetaDAGResult:
        meta = MetaDAG().add_node(dag("a", body=work)).add_node(dag("b", body=work), ["a"])
        return await meta.execute()

    result, elapsed = run_virtual(main())
    assert elapsed == pytest.approx(4.0)
    assert result.node_results["a"].duration_ms == pytest.approx(2000.0)
    assert result.duration_ms == pytest.approx(4000.0)


def test_total_execution_timeout_cuts_off_nodes_and_closes_them() -> None:
    events = Recorder()

    async def slow(task_id: Any, spec: Any) -> Any:
        await asyncio.sleep(100)

    async def main() -> MetaDAGResult:
        meta = MetaDAG(config=WaveConfig(total_execution_timeout=5.0))
        meta.add_node(dag("a", body=slow)).add_node(dag("b"), depends_on=["a"])
        meta.add_node(MetaDAGNodeSpec("r", {"x": {}}, slow, node_type="reconciler"))
        meta.on_event(events)
        result = await meta.execute()
        assert await leftover_tasks() == set()
        return result

    result, elapsed = run_virtual(main())
    assert elapsed == pytest.approx(5.0)
    assert {n: r.status for n, r in result.node_results.items()} == dict.fromkeys(
        ["a", "b", "r"], "timeout"
    )
    assert result.failed_nodes == 3
    assert result.node_results["a"].duration_ms == pytest.approx(5000.0)
    closing = {e["task_id"]: e["status"] for e in events.of("NODE_COMPLETED")}
    assert closing == {"a": "timeout", "b": "timeout", "r": "timeout"}
    assert events.types()[-1] == "META_EXECUTION_COMPLETED"


async def test_a_group_budget_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="budget of group 'gpu'"):
        WaveConfig(specialist_budgets={"gpu": 0})
    cfg = WaveConfig(specialist_budgets={"gpu": 1})
    cfg.specialist_budgets["gpu"] = 0  # changed after the check: refused when the node runs
    meta = MetaDAG(config=cfg).add_node(dag("a", specialist="gpu"))
    with pytest.raises(ValueError, match="budget"):
        await meta.execute()


# -- "always" tasks in reconciler nodes ---------------------------------------------


def _always_node(body: Any, **kw: Any) -> MetaDAGNodeSpec:
    return MetaDAGNodeSpec("svc", {"server": {}}, body, node_type="reconciler", **kw)


def test_a_crash_looping_always_task_fails_its_node_instead_of_succeeding_at_once() -> None:
    calls: list[float] = []

    async def crash(task_id: Any, spec: Any) -> Any:
        calls.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.1)
        raise RuntimeError("port in use")

    async def main() -> MetaDAGResult:
        node = _always_node(
            crash, policies="always", max_restart_attempts=2, restart_backoff_base=1.0
        )
        result = await MetaDAG().add_node(node).add_node(dag("after"), depends_on=["svc"]).execute()
        assert await leftover_tasks() == set()
        return result

    result, elapsed = run_virtual(main())
    node = result.node_results["svc"]
    assert node.status == "failed"  # 0.3.0 and our earlier code: "success" at t=0
    assert node.error is not None and "blocked" in node.error
    assert len(calls) == 3
    assert result.node_results["after"].status == "skipped"
    assert elapsed < 10


def test_an_always_task_counts_once_it_is_ready_or_has_exited_cleanly() -> None:
    from wave_executor.reconciler import mark_ready

    async def serve(task_id: Any, spec: Any) -> Any:
        if task_id == "server":
            await asyncio.sleep(2.0)  # warming up
            mark_ready()
            await asyncio.sleep(10_000)
        await asyncio.sleep(1.0)
        return "flushed"  # a clean exit (it would be restarted)

    async def main() -> MetaDAGResult:
        node = MetaDAGNodeSpec(
            "svc",
            {"server": {}, "flusher": {}, "migrate": {}},
            serve,
            node_type="reconciler",
            policies={"server": "always", "flusher": "always"},
        )
        result = await MetaDAG().add_node(node).execute()
        assert await leftover_tasks() == set()
        return result

    result, elapsed = run_virtual(main())
    node = result.node_results["svc"]
    assert node.status == "success"
    assert elapsed == pytest.approx(2.0, abs=0.2)  # when the server declared itself ready


def test_an_always_task_never_up_times_its_node_out_naming_it() -> None:
    async def silent(task_id: Any, spec: Any) -> Any:
        await asyncio.sleep(10_000)  # never ready, never exits

    async def main() -> MetaDAGResult:
        node = _always_node(silent, policies="always", completion_timeout=5.0)
        return await MetaDAG().add_node(node).execute()

    result, elapsed = run_virtual(main())
    node = result.node_results["svc"]
    assert node.status == "timeout"
    assert node.error is not None and "'server'" in node.error and "mark_ready" in node.error
    assert elapsed == pytest.approx(5.0, abs=0.2)


def test_an_always_task_that_exited_cleanly_counts_though_it_was_restarted_since() -> None:
    runs: list[float] = []

    async def serve(task_id: Any, spec: Any) -> Any:
        if task_id == "flusher":
            runs.append(asyncio.get_running_loop().time())
            if len(runs) == 1:
                await asyncio.sleep(0.5)
                return "flushed"  # up: a clean exit at t=0.5
            await asyncio.sleep(10_000)  # restarted at once; never ready
        await asyncio.sleep(2.0)
        return "migrated"

    async def main() -> MetaDAGResult:
        node = MetaDAGNodeSpec(
            "svc",
            {"flusher": {}, "migrate": {}},
            serve,
            node_type="reconciler",
            policies={"flusher": "always"},
            completion_timeout=10.0,
            restart_backoff_base=0.1,
        )
        return await MetaDAG().add_node(node).execute()

    result, elapsed = run_virtual(main())
    assert result.node_results["svc"].status == "success"
    assert len(runs) == 2
    assert elapsed == pytest.approx(2.0, abs=0.2)


async def test_node_events_carry_node_id_as_in_0_3_0() -> None:
    seen: list[tuple[str, Any, Any]] = []
    meta = MetaDAG().add_node(dag("a")).add_node(dag("b", body=boom)).add_node(dag("c"), ["b"])
    meta.on_event(lambda kind, e: seen.append((kind, e.get("node_id"), e["task_id"])))
    await meta.execute()
    node_events = [(kind, node) for kind, node, _ in seen if kind.startswith("NODE_")]
    assert ("NODE_STARTED", "a") in node_events and ("NODE_SKIPPED", "c") in node_events
    assert all(node == task for kind, node, task in seen if kind.startswith("NODE_"))
    assert [e for e in seen if e[0].startswith("META_")] == [
        ("META_EXECUTION_STARTED", None, None),
        ("META_EXECUTION_COMPLETED", None, None),
    ]


async def test_a_root_node_gets_its_task_specs_unchanged_as_in_0_3_0() -> None:
    got: dict[Any, Any] = {}

    async def body(task_id: Any, spec: Any) -> Any:
        got[task_id] = spec
        return task_id

    spec = {"k": 1}
    meta = MetaDAG().add_node(dag("root", {"r": spec, "plain": 7}, body))
    meta.add_node(dag("down", {"d": {}}, body), ["root"])
    result = await meta.execute()
    assert got["r"] is spec and got["plain"] == 7
    assert got["d"] == {"_upstream_outputs": {"root": {"r": "r", "plain": "plain"}}}
    data = result.to_dict()
    assert data["nodes"]["root"]["task_output_keys"] == ["r", "plain"]
