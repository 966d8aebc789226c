"""Scheduler invariants on random graphs (hypothesis), run on virtual time."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wave_executor import DAGExecutor, RetryPolicy, WaveConfig
from wave_executor.testing import run_virtual


@dataclass
class Case:
    n: int
    deps: dict[int, set[int]]
    durations: list[int]
    failing: set[int]  # tasks whose every attempt fails
    flaky: set[int]  # tasks whose first attempt fails
    cap: int
    retries: int


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n = draw(st.integers(0, 30))
    deps: dict[int, set[int]] = {}
    for j in range(n):
        if j:
            ups = draw(st.sets(st.integers(0, j - 1), max_size=min(j, 4)))
            if ups:
                deps[j] = ups
    durations = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    failing = draw(st.sets(st.integers(0, max(n - 1, 0)), max_size=3)) if n else set()
    flaky = draw(st.sets(st.integers(0, max(n - 1, 0)), max_size=3)) if n else set()
    cap, retries = draw(st.integers(1, 6)), draw(st.integers(0, 2))
    return Case(n, deps, durations, failing, flaky - failing, cap, retries)


@dataclass
class Trace:
    running: int = 0
    peak: int = 0
    attempts: dict[int, int] = field(default_factory=dict)
    active: set[int] = field(default_factory=set)
    succeeded_at: dict[int, float] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)


def run_case(case: Case) -> tuple[Any, Trace, list[tuple[str, dict[str, Any]]]]:
    trace = Trace()
    events: list[tuple[str, dict[str, Any]]] = []

    async def body(task_id: int, spec: Any) -> int:
        loop = asyncio.get_running_loop()
        if task_id in trace.active:
            trace.violations.append(f"{task_id} runs twice at once")
        for d in case.deps.get(task_id, ()):
            if d not in trace.succeeded_at:
                trace.violations.append(f"{task_id} started before {d} succeeded")
        trace.active.add(task_id)
        trace.attempts[task_id] = trace.attempts.get(task_id, 0) + 1
        trace.running += 1
        trace.peak = max(trace.peak, trace.running)
        try:
            await asyncio.sleep(case.durations[task_id])
            if task_id in case.failing or (task_id in case.flaky and trace.attempts[task_id] == 1):
                raise RuntimeError(f"fail {task_id}")
            trace.succeeded_at[task_id] = loop.time()
            return task_id
        finally:
            trace.running -= 1
            trace.active.discard(task_id)

    async def main() -> Any:
        policy = RetryPolicy(max_retries=case.retries, base_delay=1.0)
        ex = DAGExecutor(WaveConfig(max_parallel_per_wave=case.cap, retry_policy=policy))
        ex.on_event(lambda t, e: events.append((t, e)))
        tasks = {i: {"circuit_key": "shared"} if i % 2 else None for i in range(case.n)}
        return await ex.execute(tasks, case.deps, body)

    result, _ = run_virtual(main())
    return result, trace, events


def expected_status(case: Case, i: int, memo: dict[int, str]) -> str:
    if i not in memo:
        if any(expected_status(case, d, memo) != "success" for d in case.deps.get(i, ())):
            memo[i] = "skipped"
        elif i in case.failing or (i in case.flaky and case.retries == 0):
            memo[i] = "failed"
        else:
            memo[i] = "success"
    return memo[i]


@settings(max_examples=150, deadline=None)
@given(cases())
def test_scheduler_invariants(case: Case) -> None:
    result, trace, events = run_case(case)
    assert trace.violations == []
    assert trace.peak <= case.cap
    assert set(result.task_results) == set(range(case.n))  # exactly one result per task
    memo: dict[int, str] = {}
    breaker_open = any(r.error and "is open" in r.error for r in result.task_results.values())
    for i, r in result.task_results.items():
        want = expected_status(case, i, memo)
        if not breaker_open:
            assert r.status == want, (i, r.status, r.error)
        # A task is never called more than its attempt budget allows.
        assert trace.attempts.get(i, 0) <= case.retries + 1
        if r.status == "skipped":
            assert trace.attempts.get(i, 0) == 0
    # Exactly one TASK_STARTED per started task and exactly one closing event per task.
    started = [e["task_id"] for t, e in events if t == "TASK_STARTED"]
    assert len(started) == len(set(started))
    closing = [
        e["task_id"] for t, e in events if t in ("TASK_COMPLETED", "TASK_FAILED", "TASK_SKIPPED")
    ]
    assert sorted(closing) == list(range(case.n))
    assert events[0][0] == "EXECUTION_STARTED" and events[-1][0] == "EXECUTION_COMPLETED"


@settings(max_examples=60, deadline=None)
@given(cases())
def test_every_dependency_finishes_before_its_dependent_starts(case: Case) -> None:
    result, _, _ = run_case(case)
    for i, deps in case.deps.items():
        r = result.task_results[i]
        if r.status == "skipped":
            continue
        for d in deps:
            dep = result.task_results[d]
            assert dep.status == "success"
            assert dep.completed_at is not None and dep.completed_at <= r.started_at
