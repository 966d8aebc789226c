"""Fan-out on random graphs (hypothesis, virtual time): random tasks fan out into
random numbers of children, random bodies and children fail.

The oracle follows the contract, not the engine: a parent succeeds iff its
body and all its children did, its output is ``{key: child output}`` of
the children that succeeded, every child of a parent whose body succeeded
runs exactly once, and every other task runs iff its trigger rule holds
on how its upstreams ended (and then sees the outputs of the succeeded
ones, and of fan-out parents, the outputs of their succeeded children).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wave_executor import ChildId, DAGExecutor, WaveConfig
from wave_executor.testing import run_virtual

#: Rules whose skips never depend on the order in which upstreams ended: a task
#: skipped by ``all_success``/``none_failed`` has a failed upstream, one skipped by
#: ``one_failed`` has none; ``one_failed`` is only given to tasks without dependents.
RULES = ["all_success", "all_done", "none_failed"]


@dataclass
class Case:
    n: int
    deps: dict[int, list[int]]
    rules: dict[int, str]
    fan: dict[int, int]  # parent -> number of children
    failing: set[int]  # bodies that fail
    failing_children: set[tuple[int, int]]
    durations: dict[Any, float]
    cap: int


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n = draw(st.integers(1, 9))
    deps: dict[int, list[int]] = {}
    for j in range(1, n):
        ups = draw(st.lists(st.integers(0, j - 1), max_size=min(j, 3), unique=True))
        if ups:
            deps[j] = ups
    has_dependents = {u for ups in deps.values() for u in ups}
    rules = {
        j: draw(st.sampled_from(RULES if j in has_dependents else [*RULES, "one_failed"]))
        for j in range(n)
    }
    fan = draw(st.dictionaries(st.integers(0, n - 1), st.integers(0, 6), max_size=n))
    failing = draw(st.sets(st.integers(0, n - 1), max_size=max(1, n // 3)))
    children = [(p, k) for p, count in fan.items() for k in range(count)]
    failing_children = draw(st.sets(st.sampled_from(children), max_size=3)) if children else set()
    ids: list[Any] = [*range(n), *children]
    durations = {t: draw(st.sampled_from([0.0, 0.001, 0.01, 0.1])) for t in ids}
    cap = draw(st.integers(1, 8))
    return Case(n, deps, rules, fan, failing, failing_children, durations, cap)


def expected(case: Case) -> tuple[dict[int, str], dict[int, Any]]:
    """Each declared task's final status and output, by the contract."""
    status: dict[int, str] = {}
    output: dict[int, Any] = {}
    for t in range(case.n):
        ups = case.deps.get(t, [])
        kinds = ["S" if status[u] == "success" else "F" for u in ups]
        runs = {
            "all_success": all(k == "S" for k in kinds),
            "all_done": True,
            "none_failed": all(k == "S" for k in kinds),
            "one_failed": not ups or any(k == "F" for k in kinds),
        }[case.rules[t]]
        if not runs:
            status[t] = "skipped"
            continue
        if t in case.failing:
            status[t] = "failed"
            continue
        if t in case.fan:
            gathered = {
                k: ("child", t, k)
                for k in range(case.fan[t])
                if (t, k) not in case.failing_children
            }
            output[t] = gathered
            status[t] = "success" if len(gathered) == case.fan[t] else "failed"
        else:
            seen = {u: output[u] for u in ups if u in output}
            output[t] = ("task", t, sorted(seen.items()))
            status[t] = "success"
    return status, output


@settings(max_examples=150, deadline=None)
@given(cases())
def test_random_fan_outs_follow_the_contract(case: Case) -> None:
    calls: list[Any] = []

    async def body(task_id: int, spec: Any) -> Any:
        calls.append(task_id)
        await asyncio.sleep(case.durations[task_id])
        if task_id in case.failing:
            raise RuntimeError("scripted")
        if task_id in case.fan:
            return range(case.fan[task_id])
        seen = spec.get("_dep_outputs", {})
        return ("task", task_id, sorted(seen.items()))

    async def child(c: ChildId, item: int) -> Any:
        assert c.key == item
        calls.append(c)
        await asyncio.sleep(case.durations[(c.parent, c.key)])
        if (c.parent, c.key) in case.failing_children:
            raise RuntimeError("scripted child")
        return ("child", c.parent, c.key)

    config = WaveConfig(
        max_retries=0, circuit_breaker_enabled=False, max_parallel_per_wave=case.cap,
        adaptive_batch_window=False,
    )  # fmt: skip

    async def main() -> Any:
        return await DAGExecutor(config).execute(
            {t: {} for t in range(case.n)}, case.deps, body, inject_dep_outputs=True,
            trigger_rules=case.rules, fan_out=dict.fromkeys(case.fan, child),
        )  # fmt: skip

    result, _ = run_virtual(main())
    status, output = expected(case)
    statuses = result.statuses()
    for t in range(case.n):
        assert statuses[t] == status[t], t
        gathered = t in case.fan and status[t] != "skipped" and t not in case.failing
        waited = status[t] == "success" and case.rules[t] != "one_failed"  # that fires early
        if gathered or waited:
            assert result.task_results[t].output == output[t]
    # Every child of a parent whose body succeeded ran exactly once; no other child exists.
    ran_children = [c for c in calls if isinstance(c, ChildId)]
    assert len(ran_children) == len(set(ran_children))
    want = {
        ChildId(p, k)
        for p, count in case.fan.items()
        if status[p] != "skipped" and p not in case.failing
        for k in range(count)
    }
    assert set(ran_children) == want
    assert {t for t in statuses if isinstance(t, ChildId)} == want
    for c in want:
        failed = (c.parent, c.key) in case.failing_children
        assert statuses[c] == ("failed" if failed else "success")
    declared_runs = [t for t in calls if not isinstance(t, ChildId)]
    assert len(declared_runs) == len(set(declared_runs))
    assert result.total_tasks == case.n + len(want)
