"""Level mode (``LevelExecutor``): waves by depth, barriers, gates, merges, events.

Every test that involves time runs on the virtual clock, so durations and
gaps are exact.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import itertools
import json
import pathlib
import re
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import Probe, Recorder, leftover_tasks
from wave_executor import (
    AggregationStrategy,
    DAGExecutor,
    ExecutionContext,
    LevelExecutor,
    TaskStatus,
    UnknownDependencyError,
    WaveCircularDependencyError,
    WaveConfig,
    WaveResult,
)
from wave_executor._core import aggregation
from wave_executor._core.aggregation import aggregate
from wave_executor.testing import run_virtual

FAST = WaveConfig(max_retries=0)
README_TASKS = {"A": 10.0, "B": 1.0, "C": 1.0, "D": 1.0, "E": 1.0}
README_DEPS = {"C": {"A", "B"}, "E": {"D"}}


class Timeline:
    """A task body that sleeps ``spec`` seconds (a number, or spec["s"]) and
    records start and end on the loop's clock; ids in ``fail`` raise."""

    def __init__(self, fail: set[Any] | None = None) -> None:
        self.fail = fail or set()
        self.start: dict[Any, float] = {}
        self.end: dict[Any, float] = {}

    async def __call__(self, task_id: Any, spec: Any) -> Any:
        loop = asyncio.get_running_loop()
        self.start[task_id] = loop.time()
        seconds = spec.get("s", 0.0) if isinstance(spec, dict) else spec
        await asyncio.sleep(seconds)
        self.end[task_id] = loop.time()
        if task_id in self.fail:
            raise RuntimeError(f"{task_id} failed")
        return {"id": task_id}


def level_run(
    tasks: dict[Any, Any],
    deps: dict[Any, set[Any]],
    body: Callable[[Any, Any], Coroutine[Any, Any, Any]],
    config: WaveConfig = FAST,
    **kwargs: Any,
) -> tuple[ExecutionContext, float]:
    async def main() -> ExecutionContext:
        ctx = await LevelExecutor(config).execute(tasks, deps, body, **kwargs)
        assert not await leftover_tasks()
        return ctx

    return run_virtual(main())


# -- the README comparison ----------------------------------------------------


def test_readme_graph_levels_end_e_at_11_and_the_dag_at_2() -> None:
    async def main(executor: LevelExecutor | DAGExecutor) -> float:
        body = Timeline()
        await executor.execute(README_TASKS, README_DEPS, body)
        return body.end["E"]

    level_e, level_total = run_virtual(main(LevelExecutor()))
    dag_e, dag_total = run_virtual(main(DAGExecutor()))
    assert level_e == 11.0
    assert dag_e == 2.0
    assert level_e - dag_e == 9.0
    assert level_total == dag_total == 11.0  # A -> C bounds both


# -- waves ----------------------------------------------------------------------


def test_waves_are_dependency_depths_in_task_order() -> None:
    tasks = dict.fromkeys(["e", "d", "c", "b", "a", "x"], 0.0)
    deps = {"b": {"a"}, "c": {"b", "a"}, "d": {"a"}, "e": {"c", "d"}}
    ctx, _ = level_run(tasks, deps, Timeline())
    assert [sorted(w.task_ids) for w in ctx.waves] == [["a", "x"], ["b", "d"], ["c"], ["e"]]
    assert [list(w.tasks) for w in ctx.waves] == [["a", "x"], ["d", "b"], ["c"], ["e"]]
    assert [w.wave_id for w in ctx.waves] == ["wave-0", "wave-1", "wave-2", "wave-3"]
    assert all(w.dependencies_resolved for w in ctx.waves)
    assert list(ctx.wave_results) == ["wave-0", "wave-1", "wave-2", "wave-3"]
    assert list(ctx.wave_results["wave-1"].task_results) == ["d", "b"]
    for wave in ctx.wave_results.values():
        assert all(r.wave_id == wave.wave_id for r in wave.task_results.values())
    assert ctx.current_wave_index == 3
    assert (ctx.total_waves, ctx.completed_waves, ctx.progress) == (4, 4, 1.0)
    assert (ctx.total_tasks, ctx.total_successful, ctx.total_failed) == (6, 6, 0)
    assert ctx.stopped_reason is None and not ctx.cancelled and ctx.succeeded
    assert ctx.outputs["e"] == {"id": "e"}
    assert set(ctx.task_results) == set(tasks)


def test_barrier_no_task_of_a_wave_starts_before_the_previous_wave_ended() -> None:
    tasks = {"a": 3.0, "b": 1.0, "c": 2.0, "d": 0.5, "e": 1.0, "f": 0.0}
    deps = {"c": {"b"}, "d": {"b"}, "e": {"c"}, "f": {"d"}}
    body = Timeline()
    ctx, elapsed = level_run(tasks, deps, body, WaveConfig(max_retries=0, max_parallel_per_wave=2))
    waves = [list(w.tasks) for w in ctx.waves]
    assert waves == [["a", "b"], ["c", "d"], ["e", "f"]]
    for earlier, later in itertools.pairwise(waves):
        assert max(body.end[t] for t in earlier) <= min(body.start[t] for t in later)
    assert body.start["c"] == body.start["d"] == 3.0  # waited for a, unrelated to them
    assert elapsed == 3.0 + 2.0 + 1.0


def test_the_cap_applies_inside_a_wave() -> None:
    probe = Probe(1.0)
    ctx, elapsed = level_run(
        dict.fromkeys(range(6)), {}, probe, WaveConfig(max_parallel_per_wave=2, max_retries=0)
    )
    assert probe.peak == 2 and elapsed == 3.0 and ctx.total_successful == 6


def test_empty_graph() -> None:
    ctx, elapsed = level_run({}, {}, Timeline())
    assert ctx.waves == [] and ctx.wave_results == {} and elapsed == 0.0
    assert ctx.total_tasks == 0 and ctx.progress == 0.0 and ctx.succeeded


def test_inter_wave_delay_is_an_exact_gap_between_waves_only() -> None:
    body = Timeline()
    config = WaveConfig(inter_wave_delay_ms=250, max_retries=0)
    ctx, elapsed = level_run({"a": 1.0, "b": 1.0, "c": 1.0}, {"b": {"a"}, "c": {"b"}}, body, config)
    assert body.start["a"] == 0.0  # no pause before the first wave
    assert body.start["b"] - body.end["a"] == 0.25
    assert body.start["c"] - body.end["b"] == 0.25
    assert elapsed == 3.5  # no pause after the last wave
    assert ctx.wave_results["wave-1"].duration_ms == 1000.0


def test_retries_run_inside_the_wave_with_exact_backoff() -> None:
    calls: list[str] = []

    async def flaky(task_id: str, spec: Any) -> str:
        calls.append(task_id)
        if task_id == "a" and calls.count("a") == 1:
            raise ConnectionError("once")
        return task_id

    rec = Recorder()

    async def main() -> ExecutionContext:
        ex = LevelExecutor(WaveConfig(max_retries=2))
        ex.on_event(rec)
        return await ex.execute({"a": None, "b": None}, {"b": {"a"}}, flaky)

    ctx, elapsed = run_virtual(main())
    assert elapsed == 1.0  # the first retry waits 1 s
    assert ctx.task_results["a"].retry_count == 1
    assert ctx.task_results["a"].duration_ms == 1000.0
    assert rec.types("a") == ["TASK_STARTED", "TASK_RETRYING", "TASK_COMPLETED"]
    assert rec.of("TASK_RETRYING")[0]["wave_id"] == "wave-0"


# -- timeouts -------------------------------------------------------------------


def test_per_wave_timeout_cuts_the_wave_and_skips_dependents() -> None:
    rec = Recorder()
    body = Timeline()
    tasks = {"slow": 5.0, "fast": 1.0, "after_slow": 1.0, "after_fast": 1.0}
    deps = {"after_slow": {"slow"}, "after_fast": {"fast"}}

    async def main() -> ExecutionContext:
        ex = LevelExecutor(WaveConfig(per_wave_timeout=2.0, max_retries=0, min_success_rate=0))
        ex.on_event(rec)
        ctx = await ex.execute(tasks, deps, body)
        assert not await leftover_tasks()
        return ctx

    ctx, elapsed = run_virtual(main())
    assert elapsed == 3.0
    first = ctx.wave_results["wave-0"]
    assert first.timed_out and first.duration_ms == 2000.0
    slow = ctx.task_results["slow"]
    assert slow.status == TaskStatus.TIMEOUT
    assert slow.error == "per-wave timeout (2s) reached in wave-0"
    assert ctx.task_results["fast"].status == "success"
    assert ctx.task_results["after_slow"].status == "skipped"
    assert "'slow'" in (ctx.task_results["after_slow"].error or "")
    assert body.start["after_fast"] == 2.0
    assert ctx.task_results["after_fast"].status == "success"
    assert ctx.stopped_reason is None and not ctx.cancelled
    [failed] = rec.of("TASK_FAILED")
    assert failed["task_id"] == "slow" and failed["error"] == slow.error
    assert rec.of("TASK_SKIPPED")[0]["failed_deps"] == ["slow"]


def test_total_timeout_times_out_the_running_wave_and_skips_later_ones() -> None:
    rec = Recorder()

    async def main() -> ExecutionContext:
        ex = LevelExecutor(WaveConfig(total_execution_timeout=3.0, max_retries=0))
        ex.on_event(rec)
        ctx = await ex.execute({"a": 2.0, "b": 2.0, "c": 1.0}, {"b": {"a"}, "c": {"b"}}, Timeline())
        assert not await leftover_tasks()
        return ctx

    ctx, elapsed = run_virtual(main())
    assert elapsed == 3.0
    results = ctx.task_results
    assert results["a"].status == "success"
    assert results["b"].status == "timeout"
    assert results["b"].error == "total execution timeout (3s) reached"
    assert results["c"].status == "skipped"
    assert "wave-2 did not run: total execution timeout (3s) reached" in (results["c"].error or "")
    assert ctx.stopped_reason == "total_timeout" and ctx.cancelled and not ctx.succeeded
    assert not ctx.wave_results["wave-2"].executed
    assert (ctx.completed_waves, ctx.total_waves) == (2, 3)
    assert rec.of("TASK_SKIPPED")[0]["reason"] == "total_timeout"
    assert rec.of("EXECUTION_COMPLETED")[0]["stopped_reason"] == "total_timeout"


def test_total_timeout_during_the_inter_wave_delay() -> None:
    config = WaveConfig(total_execution_timeout=3.0, inter_wave_delay_ms=5000, max_retries=0)
    ctx, elapsed = level_run({"a": 1.0, "b": 1.0}, {"b": {"a"}}, Timeline(), config)
    assert elapsed == 3.0
    assert ctx.task_results["b"].status == "skipped"
    assert ctx.stopped_reason == "total_timeout"
    assert ctx.completed_waves == 1


# -- stopping early ---------------------------------------------------------------


def test_stop_on_first_error_cancels_the_wave_and_runs_no_later_wave() -> None:
    body = Timeline(fail={"bad"})
    tasks = {"bad": 1.0, "slow": 10.0, "ok": 0.5, "later": 1.0, "unrelated": 1.0}
    deps = {"later": {"slow"}, "unrelated": {"ok"}}
    config = WaveConfig(stop_on_first_error=True, max_retries=0)
    ctx, elapsed = level_run(tasks, deps, body, config)
    assert elapsed == 1.0
    results = ctx.task_results
    assert results["bad"].status == "failed"
    assert results["slow"].status == "cancelled"
    assert results["ok"].status == "success"
    assert results["later"].status == results["unrelated"].status == "skipped"
    assert "stop_on_first_error" in (results["unrelated"].error or "")
    assert "later" not in body.start and "unrelated" not in body.start
    assert ctx.stopped_reason == "stop_on_first_error" and ctx.cancelled
    assert ctx.wave_results["wave-0"].cancelled_count == 1


def test_strict_success_policy_stops_after_a_wave_with_a_failure() -> None:
    body = Timeline(fail={"b"})
    config = WaveConfig(allow_partial_success=False, max_retries=0)
    ctx, _ = level_run({"a": 1.0, "b": 1.0, "c": 1.0}, {"c": {"a"}}, body, config)
    assert ctx.task_results["c"].status == "skipped"
    assert "allow_partial_success" in (ctx.task_results["c"].error or "")
    assert "c" not in body.start
    assert ctx.stopped_reason == "allow_partial_success" and ctx.cancelled


def test_min_success_rate_gate() -> None:
    tasks = {f"w0-{i}": 1.0 for i in range(4)} | {"next": 1.0}
    deps = {"next": {"w0-0"}}
    low, _ = level_run(tasks, deps, Timeline(fail={"w0-1", "w0-2"}), WaveConfig(max_retries=0))
    assert low.stopped_reason == "min_success_rate"
    assert "below min_success_rate (0.7)" in (low.task_results["next"].error or "")
    enough, _ = level_run(tasks, deps, Timeline(fail={"w0-1"}), WaveConfig(max_retries=0))
    assert enough.stopped_reason is None
    assert enough.task_results["next"].status == "success"


def test_tasks_skipped_for_upstream_failures_do_not_count_against_their_wave() -> None:
    # wave-1 is 1 success and 3 dependency skips: it passes the gate.
    tasks = {"root_ok": 0.0, "root_bad": 0.0, "fine": 0.0}
    tasks |= {f"child{i}": 0.0 for i in range(3)} | {"last": 0.0}
    deps: dict[Any, set[Any]] = {f"child{i}": {"root_bad"} for i in range(3)}
    deps |= {"fine": {"root_ok"}, "last": {"fine"}}
    config = WaveConfig(max_retries=0, min_success_rate=0.5)
    ctx, _ = level_run(tasks, deps, Timeline(fail={"root_bad"}), config)
    wave1 = ctx.wave_results["wave-1"]
    assert (wave1.success_count, wave1.skipped_count) == (1, 3)
    assert wave1.success_rate == 0.25 and wave1.attempted_success_rate == 1.0
    assert ctx.task_results["last"].status == "success"
    assert ctx.stopped_reason is None and ctx.succeeded


def test_the_last_wave_sets_no_stop_reason_but_succeeded_reflects_it() -> None:
    ctx, _ = level_run({"a": 0.0, "b": 0.0}, {"b": {"a"}}, Timeline(fail={"b"}))
    assert ctx.stopped_reason is None and not ctx.cancelled
    assert not ctx.succeeded


# -- aggregation ---------------------------------------------------------------------


SEMANTIC_CASES: list[tuple[list[tuple[Any, Any]], Any]] = [
    ([], {}),
    ([("a", {"x": 1}), ("b", {"y": 2})], {"x": 1, "y": 2}),
    ([("a", {"x": 1}), ("b", {"x": 1})], {"x": 1}),  # equal values kept once
    ([("a", {"x": 1}), ("b", {"x": 2}), ("c", {"x": 1})], {"x": [1, 2]}),
    ([("a", {"x": [1]}), ("b", {"x": [1]})], {"x": [1]}),  # unhashable, equal
    ([("a", 5), ("b", {"y": 2})], {"a": 5, "y": 2}),  # non-dict keyed by task id
    ([("a", 5), ("b", {"a": 6})], {"a": [5, 6]}),
    ([("a", {"n": {"p": 1}}), ("b", {"n": {"q": 2}})], {"n": {"p": 1, "q": 2}}),
    ([("a", {"n": {"p": 1}}), ("b", {"n": {"p": 3}})], {"n": {"p": [1, 3]}}),
    ([("a", {"n": {"p": 1}}), ("b", {"n": 7})], {"n": [{"p": 1}, 7]}),
    ([("a", None)], {"a": None}),
]

DEEP_CASES: list[tuple[list[tuple[Any, Any]], Any]] = [
    ([], {}),
    ([("a", {"x": 1}), ("b", {"x": 2, "y": 3})], {"x": 2, "y": 3}),  # later wins
    ([("a", {"n": {"p": 1, "q": 1}}), ("b", {"n": {"q": 2}})], {"n": {"p": 1, "q": 2}}),
    ([("a", {"n": {"p": 1}}), ("b", {"n": 7})], {"n": 7}),
    ([("a", {"n": 7}), ("b", {"n": {"p": 1}})], {"n": {"p": 1}}),
    ([("a", 5), ("b", [1, 2])], {"a": 5, "b": [1, 2]}),
    ([("a", {"l": [1]}), ("b", {"l": [2]})], {"l": [2]}),  # lists are leaves
]


@pytest.mark.parametrize(("outputs", "expected"), SEMANTIC_CASES)
def test_semantic_merge(outputs: list[tuple[Any, Any]], expected: Any) -> None:
    assert aggregate(AggregationStrategy.SEMANTIC_MERGE, outputs) == expected


@pytest.mark.parametrize(("outputs", "expected"), DEEP_CASES)
def test_deep_merge(outputs: list[tuple[Any, Any]], expected: Any) -> None:
    assert aggregate(AggregationStrategy.DEEP_MERGE, outputs) == expected


def test_append_first_last() -> None:
    outputs: list[tuple[Any, Any]] = [("a", {"x": 1}), ("b", 2), ("c", None)]
    assert aggregate(AggregationStrategy.APPEND, outputs) == [{"x": 1}, 2, None]
    assert aggregate(AggregationStrategy.FIRST, outputs) == {"x": 1}
    assert aggregate(AggregationStrategy.LAST, outputs) is None
    assert aggregate(AggregationStrategy.APPEND, []) == []
    assert aggregate(AggregationStrategy.FIRST, []) is None
    assert aggregate(AggregationStrategy.LAST, []) is None


def test_merges_never_mutate_the_outputs() -> None:
    a = {"n": {"p": 1}}
    b = {"n": {"p": 2, "q": 3}}
    for strategy in (AggregationStrategy.SEMANTIC_MERGE, AggregationStrategy.DEEP_MERGE):
        merged = aggregate(strategy, [("a", a), ("b", b)])
        merged["n"]["z"] = 0
        assert a == {"n": {"p": 1}} and b == {"n": {"p": 2, "q": 3}}
    assert aggregation.deep_merge([("a", a)])["n"] is not a["n"]


def test_unknown_strategy_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown aggregation strategy"):
        aggregate("semantic_merge", [])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (AggregationStrategy.SEMANTIC_MERGE, {"k": ["a", "c"], "a": "a", "c": "c"}),
        (AggregationStrategy.APPEND, [{"k": "a", "a": "a"}, {"k": "c", "c": "c"}]),
        (AggregationStrategy.DEEP_MERGE, {"k": "c", "a": "a", "c": "c"}),
        (AggregationStrategy.FIRST, {"k": "a", "a": "a"}),
        (AggregationStrategy.LAST, {"k": "c", "c": "c"}),
    ],
)
def test_wave_merged_output_uses_the_strategy_over_successes_in_task_order(
    strategy: AggregationStrategy, expected: Any
) -> None:
    async def body(task_id: str, spec: Any) -> dict[str, str]:
        if task_id == "b":
            raise RuntimeError("no output")
        return {"k": task_id, task_id: task_id}

    config = WaveConfig(max_retries=0, aggregation_strategy=strategy, min_success_rate=0.0)
    ctx, _ = level_run(dict.fromkeys("abc"), {}, body, config)
    assert ctx.wave_results["wave-0"].merged_output == expected


def test_a_wave_without_successes_merges_to_the_empty_value() -> None:
    async def body(task_id: str, spec: Any) -> None:
        raise RuntimeError("no")

    empties: list[tuple[AggregationStrategy, Any]] = [
        (AggregationStrategy.SEMANTIC_MERGE, {}),
        (AggregationStrategy.APPEND, []),
        (AggregationStrategy.FIRST, None),
    ]
    for strategy, empty in empties:
        config = WaveConfig(max_retries=0, aggregation_strategy=strategy)
        ctx, _ = level_run({"a": None}, {}, body, config)
        assert ctx.wave_results["wave-0"].merged_output == empty


# -- outputs downstream ---------------------------------------------------------------


def test_inject_dep_outputs_copies_specs() -> None:
    seen: dict[str, Any] = {}

    async def body(task_id: str, spec: Any) -> str:
        seen[task_id] = spec
        return f"out-{task_id}"

    tasks: dict[str, Any] = {"a": {"k": 1}, "b": 7, "c": {"k": 3}}
    ctx, _ = level_run(tasks, {"c": {"a", "b"}}, body, inject_dep_outputs=True)
    assert seen["a"] == {"k": 1}  # no dependencies: the spec as it is (as in 0.3.0)
    assert seen["b"] == 7
    assert seen["c"] == {"k": 3, "_dep_outputs": {"a": "out-a", "b": "out-b"}}
    assert tasks == {"a": {"k": 1}, "b": 7, "c": {"k": 3}}  # never mutated
    assert ctx.outputs == {"a": "out-a", "b": "out-b", "c": "out-c"}


def test_without_injection_the_body_gets_the_callers_spec() -> None:
    spec = {"k": 1}
    seen: list[Any] = []

    async def body(task_id: str, s: Any) -> None:
        seen.append(s)

    level_run({"a": spec}, {}, body)
    assert seen == [spec] and seen[0] is spec


# -- events -------------------------------------------------------------------------


def test_events_bracket_waves_and_close_every_task_once() -> None:
    rec = Recorder()
    drained: list[str] = []
    tasks = {"a": 1.0, "bad": 0.5, "slow": 9.0, "b": 1.0, "c": 1.0, "d": 1.0}
    deps = {"b": {"a"}, "c": {"bad"}, "d": {"slow"}}

    async def main() -> ExecutionContext:
        ex = LevelExecutor(WaveConfig(max_retries=0, per_wave_timeout=5.0, min_success_rate=0))
        assert ex.on_event(rec) is rec

        @ex.on_event
        async def slow_async(event_type: str, event: dict[str, Any]) -> None:
            await asyncio.sleep(0.1)
            drained.append(event_type)

        ctx = await ex.execute(tasks, deps, Timeline(fail={"bad"}))
        assert not await leftover_tasks()
        return ctx

    ctx, _ = run_virtual(main())
    types = [t for t, _ in rec.events]
    assert types[0] == "EXECUTION_STARTED" and types[-1] == "EXECUTION_COMPLETED"
    assert types.count("WAVE_STARTED") == types.count("WAVE_COMPLETED") == 2
    assert len(drained) == len(rec.events)  # async callbacks finished before return
    execution_ids = {e["execution_id"] for _, e in rec.events}
    assert execution_ids == {ctx.execution_id}
    wave = -1
    for event_type, event in rec.events:
        if event_type == "WAVE_STARTED":
            wave = event["wave_index"]
            assert event["wave_id"] == f"wave-{wave}" and event["task_id"] is None
        elif event["task_id"] is not None:
            assert event["wave_index"] == wave, (event_type, event)
            assert event["wave_id"] == f"wave-{wave}"
    closing = ("TASK_COMPLETED", "TASK_FAILED", "TASK_SKIPPED")
    for task_id in tasks:
        assert sum(rec.types(task_id).count(t) for t in closing) == 1, task_id
    done = rec.of("WAVE_COMPLETED")
    assert done[0]["wave_index"] == 0 and done[0]["duration_ms"] == 5000.0
    assert (done[0]["success_count"], done[0]["failure_count"]) == (1, 1)
    assert (done[0]["timeout_count"], done[0]["timed_out"]) == (1, True)
    assert (done[1]["success_count"], done[1]["skipped_count"]) == (1, 2)
    end = rec.of("EXECUTION_COMPLETED")[0]
    assert (end["total_tasks"], end["total_successful"], end["total_skipped"]) == (6, 2, 2)
    assert (end["total_failed"], end["total_timeout"]) == (1, 1)
    assert end["total_waves"] == end["completed_waves"] == 2
    started = rec.of("EXECUTION_STARTED")[0]
    assert (started["total_tasks"], started["total_waves"]) == (6, 2)


def test_emit_events_false_silences_everything() -> None:
    rec = Recorder()

    async def main() -> None:
        quiet = LevelExecutor(WaveConfig(emit_events=False, max_retries=0))
        quiet.on_event(rec)
        await quiet.execute({"a": 0.0, "b": 0.0}, {"b": {"a"}}, Timeline(fail={"a"}))
        loud = LevelExecutor(FAST)
        loud.on_event(rec)
        await loud.execute({"a": 0.0}, {}, Timeline(), config=WaveConfig(emit_events=False))
        loud.remove_event_callback(rec)
        await loud.execute({"a": 0.0}, {}, Timeline())

    run_virtual(main())
    assert rec.events == []


def test_a_failing_callback_is_harmless(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> ExecutionContext:
        ex = LevelExecutor(FAST)

        @ex.on_event
        def broken(event_type: str, event: dict[str, Any]) -> None:
            raise RuntimeError("callback bug")

        return await ex.execute({"a": 0.0}, {}, Timeline())

    ctx, _ = run_virtual(main())
    assert ctx.total_successful == 1
    assert "callback bug" in caplog.text


# -- cancellation and bad input --------------------------------------------------------


def test_cancelling_execute_cancels_bodies_and_leaves_nothing_behind() -> None:
    cancelled: list[str] = []

    async def body(task_id: str, spec: float) -> None:
        try:
            await asyncio.sleep(spec)
        except asyncio.CancelledError:
            cancelled.append(task_id)
            raise

    async def main() -> None:
        ex = LevelExecutor(FAST)
        run = asyncio.ensure_future(ex.execute({"a": 1.0, "b": 5.0, "c": 1.0}, {"c": {"a"}}, body))
        await asyncio.sleep(2.0)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        assert not await leftover_tasks()

    _, elapsed = run_virtual(main())
    assert cancelled == ["b"] and elapsed == 2.0


async def test_bad_input_raises_before_anything_runs() -> None:
    called: list[Any] = []

    async def body(task_id: Any, spec: Any) -> None:
        called.append(task_id)

    ex = LevelExecutor()
    with pytest.raises(TypeError, match="mapping"):
        await ex.execute(["a"], {}, body)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        await ex.execute({"a": 1}, {}, "body")  # type: ignore[arg-type]
    with pytest.raises(UnknownDependencyError, match="not defined in tasks"):
        await ex.execute({"a": 1}, {"a": {"ghost"}}, body)
    with pytest.raises(ValueError, match="not defined in tasks"):
        await ex.execute({"a": 1}, {"ghost": {"a"}}, body)
    with pytest.raises(WaveCircularDependencyError) as info:
        await ex.execute({"a": 1, "b": 1, "c": 1}, {"a": {"b"}, "b": {"a"}, "c": {"a"}}, body)
    assert info.value.cycle_members == {"a", "b"}
    with pytest.raises(WaveCircularDependencyError):
        await ex.execute({"a": 1}, {"a": {"a"}}, body)
    with pytest.raises(ValueError, match="not defined in tasks"):
        await ex.execute({"a": 1}, {}, body, groups={"ghost": "g"})
    assert called == []


async def test_groups_and_retry_policies_apply_per_wave() -> None:
    probe = Probe(0.01)
    config = WaveConfig(max_retries=0, specialist_budgets={"g": 1})
    tasks = dict.fromkeys(range(4))
    ctx = await LevelExecutor(config).execute(
        tasks, {2: {0}, 3: {1}}, probe, groups=dict.fromkeys(range(4), "g")
    )
    assert probe.peak == 1 and ctx.total_successful == 4


async def test_to_dict_is_json_ready_and_facade_exports() -> None:
    import wave_executor.levels as facade

    assert facade.LevelExecutor is LevelExecutor
    ctx = await LevelExecutor(FAST).execute({1: 0.0, 2: 0.0}, {2: {1}}, Timeline())
    data = json.loads(json.dumps(ctx.to_dict()))
    assert data["total_tasks"] == 2 and data["succeeded"] is True
    assert data["wave_results"]["wave-1"]["task_results"]["2"]["wave_id"] == "wave-1"
    assert data["waves"][0]["task_ids"] == [1]
    assert isinstance(ctx.wave_results["wave-0"], WaveResult)


# -- property: random graphs ---------------------------------------------------------------


@st.composite
def random_dags(draw: st.DrawFn) -> tuple[dict[int, float], dict[int, set[int]], set[int]]:
    n = draw(st.integers(1, 9))
    durations = {i: float(draw(st.integers(0, 3))) for i in range(n)}
    deps: dict[int, set[int]] = {}
    for i in range(1, n):
        chosen = draw(st.sets(st.integers(0, i - 1), max_size=3))
        if chosen:
            deps[i] = chosen
    failing = draw(st.sets(st.integers(0, n - 1), max_size=3))
    return durations, deps, failing


def _depths(n: int, deps: dict[int, set[int]]) -> list[int]:
    depth = [0] * n
    for i in range(n):  # deps point to lower indices
        depth[i] = max((depth[d] + 1 for d in deps.get(i, ())), default=0)
    return depth


@settings(max_examples=60, deadline=None)
@given(random_dags())
def test_random_dags_run_by_depth_after_their_dependencies(
    dag: tuple[dict[int, float], dict[int, set[int]], set[int]],
) -> None:
    durations, deps, failing = dag
    body = Timeline(fail=failing)
    config = WaveConfig(max_retries=0, min_success_rate=0.0, max_parallel_per_wave=3)
    ctx, _ = level_run(durations, deps, body, config)
    depth = _depths(len(durations), deps)
    results = ctx.task_results
    assert set(results) == set(durations)
    for task_id, result in results.items():
        assert result.wave_id == f"wave-{depth[task_id]}"
        ups = deps.get(task_id, set())
        all_ok = all(results[d].status == "success" for d in ups)
        if all_ok:
            assert task_id in body.start
            assert all(body.end[d] <= body.start[task_id] for d in ups)
            expected = "failed" if task_id in failing else "success"
            assert result.status == expected
        else:
            assert task_id not in body.start
            assert result.status == "skipped"
    for k in range(len(ctx.waves) - 1):
        ran_k = [body.end[t] for t in ctx.waves[k].tasks if t in body.end]
        ran_next = [body.start[t] for t in ctx.waves[k + 1].tasks if t in body.start]
        if ran_k and ran_next:
            assert max(ran_k) <= min(ran_next)


# -- docs ------------------------------------------------------------------------------------

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "levels.md"
DOC_BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_the_levels_doc_has_examples() -> None:
    assert DOC_BLOCKS


@pytest.mark.parametrize("index", range(len(DOC_BLOCKS)))
def test_levels_doc_example(index: int) -> None:
    code = compile(DOC_BLOCKS[index], f"docs/levels.md example {index + 1}", "exec")
    exec(code, {"__name__": f"levels_doc_example_{index + 1}"})


def test_the_demo_compares_with_a_real_level_run() -> None:
    import subprocess
    import sys

    demo = DOC.parent.parent / "examples" / "demo.py"
    out = subprocess.run(
        [sys.executable, str(demo)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "--- wave-1 starts" in out
    assert "E ends at t=2.0 with DAGExecutor and at t=11.0 with LevelExecutor" in out


def test_wave_definitions_list_ids_sorted_even_when_they_do_not_compare() -> None:
    from wave_executor import WaveDefinition

    assert WaveDefinition("wave-0", 0, task_ids={3, 1, 2}).to_dict()["task_ids"] == [1, 2, 3]
    assert WaveDefinition("wave-0", 0, task_ids={"b", 1}).to_dict()["task_ids"] == [
        "b",
        1,
    ]  # by repr


def test_a_wave_cut_at_the_total_deadline_counts_as_the_total_timeout() -> None:
    config = WaveConfig(per_wave_timeout=2.0, total_execution_timeout=2.0, max_retries=0)
    ctx, elapsed = level_run({"a": 5.0, "b": 1.0}, {"b": {"a"}}, Timeline(), config)
    assert elapsed == 2.0
    assert ctx.task_results["a"].error == "total execution timeout (2s) reached"
    assert ctx.stopped_reason == "total_timeout"
    assert not ctx.wave_results["wave-0"].timed_out


# -- config validation, JSON output, per-wave timeouts and the gate ---------------------------


@pytest.mark.parametrize("bad", ["bogus", "SEMANTIC_MERGE", "Append", "", None, 3, ["append"]])
def test_a_bad_aggregation_strategy_fails_when_the_config_is_made(bad: Any) -> None:
    with pytest.raises(ValueError, match="aggregation_strategy must be") as info:
        WaveConfig(aggregation_strategy=bad)
    message = str(info.value)
    assert f"got {bad!r}" in message
    assert all(repr(s.value) in message for s in AggregationStrategy)
    with pytest.raises(ValueError, match="aggregation_strategy must be"):
        dataclasses.replace(FAST, aggregation_strategy=bad)


@pytest.mark.parametrize("strategy", list(AggregationStrategy))
def test_an_aggregation_strategy_may_be_given_by_its_value(strategy: AggregationStrategy) -> None:
    assert WaveConfig(aggregation_strategy=strategy).aggregation_strategy is strategy
    by_value = WaveConfig(aggregation_strategy=strategy.value)  # type: ignore[arg-type]
    assert by_value.aggregation_strategy is strategy
    assert dataclasses.replace(by_value).aggregation_strategy is strategy


def test_a_strategy_given_by_its_value_is_used_by_the_run() -> None:
    config = WaveConfig(max_retries=0, aggregation_strategy="append")  # type: ignore[arg-type]
    ctx, _ = level_run({"a": 0.0, "b": 0.0}, {}, Timeline(), config)
    assert ctx.wave_results["wave-0"].merged_output == [{"id": "a"}, {"id": "b"}]


def test_to_dict_is_json_ready_for_any_hashable_ids_and_outputs() -> None:
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    fetch, frozen, merge = ("fetch", 1), frozenset({"x"}), ("merge",)
    outputs: dict[Any, Any] = {
        fetch: {"tags": {"a"}, "pair": (1, 2), (3, 4): "tuple key", "at": when},
        2: {"tags": {"b"}, 5: "int key"},
        frozen: {1, 2},
        merge: ("done", frozenset({1})),
    }

    async def body(task_id: Any, spec: Any) -> Any:
        await asyncio.sleep(0)
        return outputs[task_id]

    tasks: dict[Any, Any] = dict.fromkeys(outputs)
    ctx, _ = level_run(tasks, {merge: {fetch, 2}}, body)
    assert ctx.succeeded
    records: list[Any] = [ctx, *ctx.waves, *ctx.wave_results.values()]
    for record in records:
        json.dumps(record.to_dict())
    data = json.loads(json.dumps(ctx.to_dict()))
    assert (data["total_tasks"], data["total_successful"], data["succeeded"]) == (4, 4, True)
    wave0 = data["wave_results"]["wave-0"]
    assert set(wave0["task_results"]) == {str(fetch), "2", str(frozen)}
    fetched = wave0["task_results"][str(fetch)]
    assert fetched["task_id"] == ["fetch", 1] and fetched["status"] == "success"
    assert fetched["output"] == {
        "tags": ["a"],
        "pair": [1, 2],
        "(3, 4)": "tuple key",
        "at": when.isoformat(),
    }
    assert sorted(wave0["task_results"][str(frozen)]["output"]) == [1, 2]
    merged = wave0["merged_output"]
    assert merged["tags"] == [["a"], ["b"]] and merged["5"] == "int key"
    assert merged["(3, 4)"] == "tuple key" and sorted(merged[str(frozen)]) == [1, 2]
    assert data["wave_results"]["wave-1"]["task_results"][str(merge)]["output"] == ["done", [1]]
    assert data["waves"][1]["task_ids"] == [["merge"]]
    assert sorted(map(repr, data["waves"][0]["task_ids"])) == ["2", "['fetch', 1]", "['x']"]
    # The records themselves are untouched.
    assert ctx.outputs[fetch]["tags"] == {"a"} and ctx.outputs[merge] == ("done", frozenset({1}))


def test_a_per_wave_timeout_that_leaves_the_wave_above_the_gate_lets_the_run_go_on() -> None:
    # Default min_success_rate (0.7): 3 of 4 tasks succeed, one times out.
    tasks = {"ok0": 1.0, "ok1": 1.0, "ok2": 1.0, "slow": 5.0, "next": 1.0}
    config = WaveConfig(per_wave_timeout=2.0, max_retries=0)
    ctx, elapsed = level_run(tasks, {"next": {"ok0"}}, Timeline(), config)
    first = ctx.wave_results["wave-0"]
    assert first.timed_out and first.timeout_count == 1
    assert first.attempted_success_rate == 0.75
    assert ctx.task_results["next"].status == "success"
    assert ctx.stopped_reason is None and not ctx.cancelled and ctx.succeeded
    assert elapsed == 3.0


def test_a_per_wave_timeout_that_drops_the_wave_below_the_gate_stops_the_run() -> None:
    # Default min_success_rate (0.7): 2 of 4 tasks time out.
    tasks = {"ok0": 1.0, "ok1": 1.0, "slow0": 5.0, "slow1": 5.0, "next": 1.0}
    body = Timeline()
    config = WaveConfig(per_wave_timeout=2.0, max_retries=0)
    ctx, elapsed = level_run(tasks, {"next": {"ok0"}}, body, config)
    assert elapsed == 2.0
    assert ctx.wave_results["wave-0"].timed_out
    assert ctx.stopped_reason == "min_success_rate" and ctx.cancelled and not ctx.succeeded
    assert not ctx.wave_results["wave-1"].executed and "next" not in body.start
    after = ctx.task_results["next"]
    assert after.status == "skipped"
    why = "wave-1 did not run: the success rate of wave-0 (0.5) is below min_success_rate (0.7)"
    assert why in (after.error or "")
    # With allow_partial_success=False a single timeout stops the run.
    strict = WaveConfig(per_wave_timeout=2.0, max_retries=0, allow_partial_success=False)
    tasks = {"ok0": 1.0, "ok1": 1.0, "ok2": 1.0, "slow": 5.0, "next": 1.0}
    ctx, _ = level_run(tasks, {"next": {"ok0"}}, Timeline(), strict)
    assert ctx.stopped_reason == "allow_partial_success"
    assert ctx.task_results["next"].status == "skipped"


def test_a_per_wave_timeout_in_the_last_wave_sets_no_stop_reason() -> None:
    config = WaveConfig(per_wave_timeout=2.0, max_retries=0)
    ctx, elapsed = level_run({"a": 0.0, "b": 5.0}, {"b": {"a"}}, Timeline(), config)
    assert elapsed == 2.0 and ctx.wave_results["wave-1"].timed_out
    assert ctx.stopped_reason is None and not ctx.cancelled
    assert not ctx.succeeded  # wave-1 (0 of 1) fails the gate, checked by succeeded


def test_the_levels_doc_says_a_per_wave_timeout_goes_through_the_success_gate() -> None:
    text = DOC.read_text()
    [row] = [line for line in text.splitlines() if line.startswith("| `per_wave_timeout` |")]
    assert 'stopped_reason="min_success_rate"' in row
    assert 'stopped_reason="allow_partial_success"' in row
    assert "does not stop the run, so it leaves `stopped_reason` None" not in text


def test_checkpoint_results_hold_each_barrier_of_the_waves_that_ran() -> None:
    body = Timeline(fail={"b"})
    config = WaveConfig(allow_partial_success=False, max_retries=0)
    tasks = {"a": 1.0, "b": 1.0, "c": 1.0, 1: 1.0}
    ctx, _ = level_run(tasks, {"c": {"a"}, 1: {"c"}}, body, config)
    assert ctx.stopped_reason == "allow_partial_success"
    assert list(ctx.checkpoint_results) == ["wave-0"]  # wave-1 and wave-2 never ran
    barrier = ctx.checkpoint_results["wave-0"]
    assert {t: r.status for t, r in barrier.items()} == {"a": "success", "b": "failed"}
    assert barrier == ctx.wave_results["wave-0"].task_results
