"""Trigger rules: the dict API, level mode, MetaDAG, resume, stops (docs/trigger-rules.md)."""

from __future__ import annotations

import asyncio
import json
import pathlib
import re
from typing import Any

import pytest

from wave_executor import DAGExecutor, LevelExecutor, WaveConfig
from wave_executor.meta import MetaDAG, MetaDAGNodeSpec
from wave_executor.store import MemoryStore
from wave_executor.testing import run_virtual

FAST = WaveConfig(max_retries=0, circuit_breaker_enabled=False)
STRICT = WaveConfig(max_retries=0, allow_partial_success=False)


def scripted(fail: set[str], durations: dict[str, float] | None = None) -> Any:
    """A body that sleeps ``durations[task]`` (virtual seconds) and fails the tasks in ``fail``;
    it returns its id and the upstream outputs it was given."""
    seen: dict[str, float] = {}

    async def body(task_id: str, spec: Any) -> Any:
        seen[task_id] = asyncio.get_running_loop().time()
        await asyncio.sleep((durations or {}).get(task_id, 1.0))
        if task_id in fail:
            raise RuntimeError(f"{task_id} failed")
        return (task_id, sorted(spec.get("_dep_outputs", {})) if isinstance(spec, dict) else [])

    body.seen = seen  # type: ignore[attr-defined]
    return body


def run(
    tasks: list[str],
    deps: dict[str, list[str]],
    rules: dict[str, str],
    fail: set[str] = frozenset(),  # type: ignore[assignment]
    durations: dict[str, float] | None = None,
    config: WaveConfig = FAST,
) -> Any:
    body = scripted(set(fail), durations)

    async def main() -> Any:
        return await DAGExecutor(config).execute(
            {t: {} for t in tasks}, deps, body, inject_dep_outputs=True, trigger_rules=rules
        )

    result, _ = run_virtual(main())
    return result, body.seen


def test_an_unknown_rule_name_raises_value_error_before_anything_runs() -> None:
    body = scripted(set())
    with pytest.raises(ValueError, match=r"unknown trigger rule 'sometimes'.*all_done"):
        run_virtual(
            DAGExecutor(FAST).execute({"a": {}}, {}, body, trigger_rules={"a": "sometimes"})
        )
    assert body.seen == {}


def test_a_rule_for_an_unknown_task_raises_value_error() -> None:
    with pytest.raises(ValueError, match="unknown task: 'zz'"):
        run_virtual(
            DAGExecutor(FAST).execute(
                {"a": {}}, {}, scripted(set()), trigger_rules={"zz": "always"}
            )
        )


def test_a_join_with_all_done_runs_after_a_failed_fetch_and_gets_only_the_successful_outputs() -> (
    None
):
    result, _ = run(
        ["p1", "p2", "p3", "report"],
        {"report": ["p1", "p2", "p3"]},
        {"report": "all_done"},
        fail={"p2"},
    )
    report = result.task_results["report"]
    assert report.status == "success"
    assert report.output == ("report", ["p1", "p3"])


def test_an_idle_one_failed_handler_is_skipped_as_rule_not_met_and_the_run_still_succeeds() -> None:
    result, seen = run(
        ["work", "on_error", "after"],
        {"on_error": ["work"], "after": ["on_error"]},
        {"on_error": "one_failed"},
        config=STRICT,
    )
    handler = result.task_results["on_error"]
    assert handler.status == "skipped" and handler.skip_reason == "rule_not_met"
    assert handler.error == "skipped: trigger rule one_failed not met (upstreams: 'work': success)"
    assert result.task_results["after"].skip_reason == "rule_not_met"
    assert "on_error" not in seen
    assert result.total_skipped_by_rule == 2
    assert result.succeeded
    assert result.overall_success_rate == 1.0


def test_a_task_below_a_failure_is_skipped_as_upstream_failed_with_the_0_3_0_error() -> None:
    result, _ = run(["a", "b", "c"], {"b": ["a"], "c": ["b"]}, {"c": "none_failed"}, fail={"a"})
    b, c = result.task_results["b"], result.task_results["c"]
    assert (b.status, b.skip_reason) == ("skipped", "upstream_failed")
    assert b.error == "skipped: dependencies did not succeed: ['a']"
    assert (c.status, c.skip_reason) == ("skipped", "upstream_failed")
    assert c.error is not None and "trigger rule none_failed" in c.error
    assert not result.succeeded or result.total_skipped_by_rule == 0


def test_one_success_fires_at_the_first_success_without_waiting() -> None:
    result, seen = run(
        ["m1", "m2", "m3", "use"],
        {"use": ["m1", "m2", "m3"]},
        {"use": "one_success"},
        durations={"m1": 5.0, "m2": 2.0, "m3": 9.0},
    )
    assert seen["use"] == 2.0
    assert result.task_results["use"].output == ("use", ["m2"])


def test_one_failed_fires_at_the_first_failure() -> None:
    _, seen = run(
        ["a", "b", "alert"],
        {"alert": ["a", "b"]},
        {"alert": "one_failed"},
        fail={"b"},
        durations={"a": 7.0, "b": 3.0},
    )
    assert seen["alert"] == 3.0


def test_always_runs_at_once_whatever_its_upstreams_do() -> None:
    result, seen = run(["a", "watch"], {"watch": ["a"]}, {"watch": "always"}, fail={"a"})
    assert seen["watch"] == 0.0
    assert result.task_results["watch"].status == "success"


def test_to_dict_adds_skip_reason_for_skipped_tasks_only() -> None:
    result, _ = run(["a", "b"], {"b": ["a"]}, {"b": "all_failed"})
    data = json.loads(json.dumps(result.to_dict()))
    assert data["task_results"]["b"]["skip_reason"] == "rule_not_met"
    assert "skip_reason" not in data["task_results"]["a"]


def test_stop_on_first_error_still_runs_all_done_cleanup_once_its_upstreams_are_done() -> None:
    config = WaveConfig(max_retries=0, stop_on_first_error=True, circuit_breaker_enabled=False)
    result, seen = run(
        ["bad", "slow", "next", "cleanup", "after_cleanup"],
        {"next": ["slow"], "cleanup": ["bad", "next"], "after_cleanup": ["cleanup"]},
        {"cleanup": "all_done", "after_cleanup": "always"},
        fail={"bad"},
        durations={"bad": 1.0, "slow": 10.0},
        config=config,
    )
    statuses = result.statuses()
    assert result.stopped_reason == "stop_on_first_error"
    assert statuses["slow"] == "cancelled" and statuses["next"] == "cancelled"
    assert statuses["cleanup"] == "success" and seen["cleanup"] == 1.0
    assert statuses["after_cleanup"] == "success"


def test_a_cancelled_caller_runs_no_cleanup() -> None:
    body = scripted(set(), {"slow": 10.0})

    async def main() -> None:
        run = asyncio.ensure_future(
            DAGExecutor(FAST).execute(
                {"slow": {}, "cleanup": {}},
                {"cleanup": ["slow"]},
                body,
                trigger_rules={"cleanup": "all_done"},
            )
        )
        await asyncio.sleep(1.0)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    run_virtual(main())
    assert "cleanup" not in body.seen


def test_the_total_timeout_runs_no_cleanup() -> None:
    config = WaveConfig(max_retries=0, total_execution_timeout=3.0)
    result, seen = run(
        ["slow", "cleanup"],
        {"cleanup": ["slow"]},
        {"cleanup": "all_done"},
        durations={"slow": 10.0},
        config=config,
    )
    assert result.stopped_reason == "total_timeout"
    assert "cleanup" not in seen
    assert result.task_results["cleanup"].status == "timeout"


def test_a_resumed_run_decides_the_rules_the_same_way() -> None:
    store = MemoryStore()
    broken = {"b"}
    calls: list[str] = []

    async def body(task_id: str, spec: Any) -> str:
        calls.append(task_id)
        if task_id in broken:
            raise RuntimeError("down")
        return task_id

    tasks: dict[str, dict[str, Any]] = {"a": {}, "b": {}, "join": {}, "alert": {}}
    deps = {"join": ["a", "b"], "alert": ["b"]}
    rules = {"join": "all_done", "alert": "one_failed"}

    async def main() -> tuple[Any, Any]:
        ex = DAGExecutor(FAST)
        first = await ex.execute(tasks, deps, body, store=store, run_id="r", trigger_rules=rules)
        broken.clear()
        calls.clear()
        second = await ex.execute(tasks, deps, body, store=store, run_id="r", trigger_rules=rules)
        return first, second

    (first, second), _ = run_virtual(main())
    assert first.statuses() == {
        "a": "success",
        "b": "failed",
        "join": "success",
        "alert": "success",
    }
    assert second.statuses()["alert"] == "skipped"
    assert second.task_results["alert"].skip_reason == "rule_not_met"
    assert sorted(calls) == ["b", "join"]  # "a" is reused
    assert second.succeeded


def test_level_mode_decides_the_rules_at_the_barrier() -> None:
    body = scripted({"b"})

    async def main() -> Any:
        gate = WaveConfig(max_retries=0, circuit_breaker_enabled=False, min_success_rate=0.5)
        return await LevelExecutor(gate).execute(
            {"a": {}, "b": {}, "join": {}, "alert": {}, "idle": {}},
            {"join": ["a", "b"], "alert": ["b"], "idle": ["a"]},
            body,
            inject_dep_outputs=True,
            trigger_rules={"join": "all_done", "alert": "one_failed", "idle": "all_failed"},
        )

    ctx, _ = run_virtual(main())
    results = ctx.task_results
    assert results["join"].status == "success" and results["join"].output == ("join", ["a"])
    assert results["alert"].status == "success"
    assert results["idle"].skip_reason == "rule_not_met"
    assert ctx.total_skipped_by_rule == 1
    with pytest.raises(ValueError, match="unknown trigger rule"):
        run_virtual(LevelExecutor(FAST).execute({"a": {}}, {}, body, trigger_rules={"a": "x"}))


def test_a_meta_dag_all_done_node_runs_after_a_failed_node_and_an_idle_one_does_not_fail() -> None:
    async def ok(task_id: str, spec: Any) -> str:
        return task_id

    async def broken(task_id: str, spec: Any) -> str:
        raise RuntimeError("down")

    meta = MetaDAG(WaveConfig(max_retries=0, circuit_breaker_enabled=False))
    meta.add_node(MetaDAGNodeSpec("fetch", {"t": {}}, broken))
    meta.add_node(MetaDAGNodeSpec("fine", {"t": {}}, ok))
    meta.add_node(
        MetaDAGNodeSpec("report", {"t": {}}, ok), depends_on=["fetch"], trigger_rule="all_done"
    )
    meta.add_node(
        MetaDAGNodeSpec("idle", {"t": {}}, ok), depends_on=["fine"], trigger_rule="one_failed"
    )
    result, _ = run_virtual(meta.execute())
    assert result.node_results["report"].status == "success"
    assert result.node_results["idle"].status == "skipped"
    assert result.skipped_by_rule_nodes == 1
    assert not result.succeeded  # "fetch" failed
    with pytest.raises(ValueError, match="unknown trigger rule"):
        MetaDAG().add_node(MetaDAGNodeSpec("x", {"t": {}}, ok), trigger_rule="sometimes")


def test_the_examples_of_docs_trigger_rules_run() -> None:
    doc = pathlib.Path(__file__).resolve().parent.parent / "docs" / "trigger-rules.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.DOTALL)
    assert blocks
    for k, block in enumerate(blocks):
        exec(compile(block, f"docs/trigger-rules.md example {k + 1}", "exec"), {})
