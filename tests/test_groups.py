"""Groups: per-group budgets inside one DAG."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wave_executor import DAGExecutor, WaveConfig
from wave_executor.testing import run_virtual


@dataclass
class GroupCase:
    n: int
    deps: dict[int, set[int]]
    durations: list[int]
    group: dict[int, str]
    budgets: dict[str, int]
    cap: int


@st.composite
def group_cases(draw: st.DrawFn) -> GroupCase:
    n = draw(st.integers(1, 40))
    deps: dict[int, set[int]] = {}
    for j in range(1, n):
        ups = draw(st.sets(st.integers(0, j - 1), max_size=min(j, 3)))
        if ups:
            deps[j] = ups
    names = ["llm", "http", "db"]
    group = {i: g for i in range(n) if (g := draw(st.sampled_from([*names, None]))) is not None}
    budgets = {name: draw(st.integers(1, 4)) for name in names}
    durations = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    return GroupCase(n, deps, durations, group, budgets, draw(st.integers(1, 8)))


def run_group_case(case: GroupCase) -> dict[int, tuple[float, float]]:
    spans: dict[int, tuple[float, float]] = {}

    async def body(task_id: int, spec: Any) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(case.durations[task_id])
        spans[task_id] = (start, loop.time())

    async def main() -> Any:
        cfg = WaveConfig(
            max_parallel_per_wave=case.cap,
            specialist_budgets=case.budgets,
            default_specialist_budget=99,
        )
        return await DAGExecutor(cfg).execute(
            dict.fromkeys(range(case.n)), case.deps, body, groups=case.group
        )

    result, _ = run_virtual(main())
    assert result.total_successful == case.n
    return spans


def running_at(spans: dict[int, tuple[float, float]], t: float, tasks: Any) -> int:
    return sum(1 for k in tasks if spans[k][0] <= t < spans[k][1])


@settings(max_examples=120, deadline=None)
@given(group_cases())
def test_group_caps_hold_and_a_full_group_never_delays_another(case: GroupCase) -> None:
    spans = run_group_case(case)
    members: dict[str, list[int]] = defaultdict(list)
    for i, g in case.group.items():
        members[g].append(i)
    instants = sorted({s for s, _ in spans.values()})
    for t in instants:
        assert running_at(spans, t, range(case.n)) <= case.cap
        for g, tasks in members.items():
            assert running_at(spans, t, tasks) <= case.budgets[g]
    for i in range(case.n):
        ready = max((spans[d][1] for d in case.deps.get(i, ())), default=0.0)
        if spans[i][0] > ready:
            # It waited: at the moment it became ready, a slot it needed was taken.
            global_full = running_at(spans, ready, range(case.n)) >= case.cap
            name = case.group.get(i)
            group_full = (
                name is not None and running_at(spans, ready, members[name]) >= case.budgets[name]
            )
            assert global_full or group_full, f"task {i} was held up for no reason"


def test_a_full_group_does_not_block_other_groups() -> None:
    order: list[str] = []

    async def body(task_id: str, spec: Any) -> None:
        order.append(task_id)
        await asyncio.sleep(1)

    async def main() -> Any:
        cfg = WaveConfig(max_parallel_per_wave=4, specialist_budgets={"llm": 1})
        tasks = {"llm1": 1, "llm2": 1, "llm3": 1, "http1": 1}
        # llm tasks head longer chains (higher priority) but their group holds one at a time.
        deps = {"http1": set[str]()}
        groups = {"llm1": "llm", "llm2": "llm", "llm3": "llm"}
        return await DAGExecutor(cfg).execute(tasks, deps, body, groups=groups)

    result, elapsed = run_virtual(main())
    assert result.total_successful == 4
    assert order[:2] == ["llm1", "http1"]
    assert elapsed == pytest.approx(3.0)


def test_groups_by_function_and_unknown_group_tasks_are_errors() -> None:
    seen: list[str] = []

    async def body(task_id: str, spec: dict[str, str]) -> None:
        seen.append(task_id)

    async def main() -> Any:
        cfg = WaveConfig(specialist_budgets={"a": 1})
        tasks = {"x": {"group": "a"}, "y": {"group": "a"}, "z": {}}
        return await DAGExecutor(cfg).execute(
            tasks, {}, body, groups=lambda task_id, spec: spec.get("group")
        )

    result, _ = run_virtual(main())
    assert result.total_successful == 3

    async def bad() -> Any:
        return await DAGExecutor().execute({"x": 1}, {}, body, groups={"nope": "a"})

    with pytest.raises(ValueError, match="not defined in tasks"):
        run_virtual(bad())

    async def zero_budget() -> Any:
        cfg = WaveConfig(specialist_budgets={"a": 0})
        return await DAGExecutor(cfg).execute({"x": 1}, {}, body, groups={"x": "a"})

    with pytest.raises(ValueError, match="budget of group 'a'"):
        run_virtual(zero_budget())
