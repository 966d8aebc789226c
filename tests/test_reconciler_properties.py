"""Supervisor invariants on random graphs (hypothesis), run on virtual time."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import leftover_tasks
from wave_executor import WaveConfig
from wave_executor.reconciler import WaveReconciler
from wave_executor.testing import run_virtual


@dataclass
class Case:
    n: int
    deps: dict[int, set[int]]
    durations: list[int]
    crashes: dict[int, int]  # task -> how many of its first runs crash
    policy: dict[int, str]  # "no" or "on-failure"
    attempts: int
    cap: int


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n = draw(st.integers(0, 15))
    deps: dict[int, set[int]] = {}
    for j in range(1, n):
        ups = draw(st.sets(st.integers(0, j - 1), max_size=min(j, 3)))
        if ups:
            deps[j] = ups
    durations = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    crashes = draw(st.dictionaries(st.integers(0, max(n - 1, 0)), st.integers(1, 4), max_size=4))
    policy = {i: draw(st.sampled_from(["no", "on-failure"])) for i in range(n)}
    return Case(n, deps, durations, crashes if n else {}, policy, draw(st.integers(0, 3)),
                draw(st.integers(1, 5)))  # fmt: skip


@dataclass
class Trace:
    active: set[int] = field(default_factory=set)
    peak: int = 0
    runs: dict[int, int] = field(default_factory=dict)
    succeeded: set[int] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)


def expected(case: Case, i: int, memo: dict[int, str]) -> str:
    """The status each task must end in: the model the supervisor is checked against."""
    if i not in memo:
        if any(expected(case, d, memo) != "success" for d in case.deps.get(i, ())):
            memo[i] = "skipped"
        elif case.crashes.get(i, 0) == 0:
            memo[i] = "success"
        elif case.policy[i] == "no":
            memo[i] = "failed"
        else:
            memo[i] = "success" if case.crashes[i] <= case.attempts else "blocked"
    return memo[i]


@settings(max_examples=120, deadline=None)
@given(cases())
def test_supervisor_invariants(case: Case) -> None:
    trace = Trace()

    async def body(task_id: int, spec: Any) -> int:
        if task_id in trace.active:
            trace.violations.append(f"{task_id} runs twice at once")
        missing = [d for d in case.deps.get(task_id, ()) if d not in trace.succeeded]
        if missing:
            trace.violations.append(f"{task_id} started before {missing} succeeded")
        trace.active.add(task_id)
        trace.peak = max(trace.peak, len(trace.active))
        run = trace.runs[task_id] = trace.runs.get(task_id, 0) + 1
        try:
            await asyncio.sleep(case.durations[task_id])
            if run <= case.crashes.get(task_id, 0):
                raise RuntimeError(f"crash {run}")
            trace.succeeded.add(task_id)
            return task_id
        finally:
            trace.active.discard(task_id)

    async def main() -> tuple[bool, dict[Any, str], set[Any]]:
        r = WaveReconciler(body, WaveConfig(max_parallel_per_wave=case.cap))
        await r.start()
        await r.update(
            dict.fromkeys(range(case.n), None), case.deps, policies=case.policy,
            max_restart_attempts=case.attempts, restart_backoff_base=1.0,
        )  # fmt: skip
        ok = await r.wait_until_complete(timeout=10_000)
        states = dict(r.get_status().task_states)
        await r.stop()
        return ok, states, await leftover_tasks()

    (ok, states, leftovers), _ = run_virtual(main())
    assert ok and not leftovers
    assert trace.violations == []
    assert trace.peak <= case.cap
    memo: dict[int, str] = {}
    assert states == {i: expected(case, i, memo) for i in range(case.n)}
    for i in range(case.n):
        allowed = 1 if case.policy[i] == "no" else case.attempts + 1
        assert trace.runs.get(i, 0) <= allowed
        if states[i] == "skipped":
            assert i not in trace.runs
