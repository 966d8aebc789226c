"""Every trigger rule against the table of docs/trigger-rules.md, on random graphs and
random outcomes (hypothesis, virtual time).

The oracle here is written from the table, not from the engine: a rule's
verdict on the final upstream outcomes, and "the task runs at the first
moment its verdict no longer depends on the upstreams still running"
(tried over every way they could still end), which is what early firing
means.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from wave_executor import DAGExecutor, WaveConfig
from wave_executor.testing import run_virtual

RULES = [
    "all_success", "all_failed", "all_done", "all_skipped", "one_success", "one_failed",
    "one_done", "none_failed", "none_failed_min_one_success", "none_skipped", "always",
]  # fmt: skip
# S: succeeded, F: failed (or skipped because something above failed), K: skipped by rule.
#: One slot per task, no retries, no breakers: every task starts when its rule fires.
WIDE = WaveConfig(
    max_retries=0, circuit_breaker_enabled=False, max_parallel_per_wave=64,
    adaptive_batch_window=False,
)  # fmt: skip
EARLY = {"one_success", "one_failed", "one_done", "always"}
FAILURE_SENSITIVE = {"all_success", "one_success", "none_failed", "none_failed_min_one_success"}


def verdict(rule: str, ups: list[str]) -> bool:
    """The table: does a task with this rule run, given how all its upstreams ended?"""
    n, s, f, k = len(ups), ups.count("S"), ups.count("F"), ups.count("K")
    if n == 0:
        return True
    return {
        "all_success": s == n, "all_failed": f == n, "all_done": True, "all_skipped": k == n,
        "one_success": s >= 1, "one_failed": f >= 1, "one_done": s + f >= 1,
        "none_failed": f == 0, "none_failed_min_one_success": f == 0 and s >= 1,
        "none_skipped": k == 0, "always": True,
    }[rule]  # fmt: skip


def settled(rule: str, ended: list[str], pending: int) -> bool | None:
    """Run (True) or skip (False) now, or None to wait. A task skips as soon as no way
    the pending upstreams could end would let it run; it runs once all its upstreams
    are done, except ``one_*`` (as soon as every way gives a run) and ``always``."""
    verdicts = {
        verdict(rule, ended + list(rest)) for rest in itertools.product("SFK", repeat=pending)
    }
    if verdicts == {False}:
        return False
    if verdicts == {True} and (pending == 0 or rule in EARLY):
        return True
    return None


@dataclass
class Case:
    n: int
    deps: dict[int, list[int]]
    rules: dict[int, str]
    durations: list[float]
    failing: set[int]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n = draw(st.integers(1, 12))
    deps: dict[int, list[int]] = {}
    for j in range(1, n):
        ups = draw(st.lists(st.integers(0, j - 1), max_size=min(j, 4), unique=True))
        if ups:
            deps[j] = ups
    rules = {j: draw(st.sampled_from(RULES)) for j in range(n)}
    # Distinct powers of two: no two chains of tasks end at the same instant, so
    # the order in which simultaneous outcomes are seen never decides a skip's reason.
    # (Exact in binary floating point; the longest, 32 s, is within the attempt timeout.)
    durations = draw(st.permutations([2.0 ** (k - 6) for k in range(n)]))
    failing = draw(st.sets(st.integers(0, n - 1), max_size=n))
    return Case(n, deps, rules, durations, failing)


def execute(case: Case, config: WaveConfig) -> tuple[Any, dict[int, float]]:
    starts: dict[int, float] = {}

    async def body(task_id: int, spec: Any) -> int:
        starts[task_id] = asyncio.get_running_loop().time()
        await asyncio.sleep(case.durations[task_id])
        if task_id in case.failing:
            raise RuntimeError("scripted failure")
        return task_id

    async def main() -> Any:
        return await DAGExecutor(config).execute(
            dict.fromkeys(range(case.n)), case.deps, body,
            trigger_rules=dict(case.rules),
        )  # fmt: skip

    result, _ = run_virtual(main())
    return result, starts


@dataclass
class Expected:
    outcome: str  # S, F or K, as its dependents see it
    at: float  # when it ended (ran) or was skipped
    start: float | None  # when it started; None if it was skipped
    skip_reason: str | None


def expect(case: Case) -> tuple[dict[int, Expected], bool]:
    """What every task should do, with a slot for every task; and whether a skip's
    reason depends on the order of outcomes that happened at the same instant
    (one failure skipping two tasks by different rules, both upstreams of a
    third): the engine records them one after the other, so either reason holds."""
    out: dict[int, Expected] = {}
    ambiguous = False
    for t in range(case.n):
        ups = case.deps.get(t, [])
        rule = case.rules[t]
        decided: bool | None = None
        now = 0.0
        for now in sorted({0.0, *(out[u].at for u in ups)}):
            ended = [out[u].outcome for u in ups if out[u].at <= now]
            decided = settled(rule, ended, len(ups) - len(ended))
            if decided is not None:
                break
        assert decided is not None  # every upstream has ended by the last time
        if decided:
            outcome = "F" if t in case.failing else "S"
            out[t] = Expected(outcome, now + case.durations[t], now, None)
        else:
            f = ended.count("F")  # what had ended when the rule could no longer be met
            at_now = {out[u].outcome for u in ups if out[u].at == now}
            ambiguous = ambiguous or {"F", "K"} <= at_now
            why = "upstream_failed" if f and rule in FAILURE_SENSITIVE else "rule_not_met"
            out[t] = Expected("F" if why == "upstream_failed" else "K", now, None, why)
    return out, ambiguous


@settings(max_examples=150, deadline=None)
@given(cases())
def test_every_rule_matches_the_table_and_fires_as_soon_as_it_is_settled(case: Case) -> None:
    result, starts = execute(case, WIDE)
    want, ambiguous = expect(case)
    assume(not ambiguous)
    for t in range(case.n):
        r, w = result.task_results[t], want[t]
        if w.start is not None:
            assert starts.get(t) == w.start, (t, case)
            assert r.status == ("failed" if w.outcome == "F" else "success"), (t, case)
        else:
            assert t not in starts, (t, case)
            assert r.status == "skipped" and r.skip_reason == w.skip_reason, (t, r, case)
    rule_skips = sum(1 for w in want.values() if w.skip_reason == "rule_not_met")
    assert result.total_skipped_by_rule == rule_skips
    counted = case.n - rule_skips
    ok = result.total_successful
    assert result.succeeded == (counted == 0 or ok == counted or ok / counted >= 0.7)


@settings(max_examples=150, deadline=None)
@given(cases())
def test_stop_on_first_error_still_runs_the_cleanup_tasks_and_nothing_else(case: Case) -> None:
    config = dataclasses.replace(WIDE, stop_on_first_error=True)
    result, starts = execute(case, config)
    statuses = result.statuses()
    failed_at = [
        (r.completed_at - result.started_at).total_seconds()
        for r in result.task_results.values()
        if r.status == "failed"
    ]
    if not failed_at:
        assert result.stopped_reason is None
        return
    assert result.stopped_reason == "stop_on_first_error"
    stop = min(failed_at)
    cleanup = {t for t, rule in case.rules.items() if rule in ("all_done", "always")}
    for t in range(case.n):
        if t in starts and starts[t] > stop + 1e-3:
            assert t in cleanup, (t, case)  # after the stop only cleanup tasks start
            ups = case.deps.get(t, [])
            if case.rules[t] == "all_done":
                assert all(statuses[u] not in ("pending", "running") for u in ups)
        if t in cleanup:
            # Every cleanup task runs: those not started by the stop start after it.
            assert t in starts, (t, statuses, case)
            if statuses[t] == "cancelled":
                assert starts[t] <= stop + 1e-3, (t, case)  # cut off while it was running
