"""Stateful property tests: random sequences of operations checked against a model.

Six machines, each driving one piece of the scheduler through hypothesis's
``RuleBasedStateMachine`` and comparing it with a few lines of obvious code
after every step:

* ``PlanMachine``: the run frontier (``_core/plan.py``): take, succeed,
  fail, back off, retry and abort on a random graph;
* ``RuledPlanMachine``: the same with a random trigger rule per task,
  against an oracle that reads each rule as a predicate
  (``_core/triggers.py``);
* ``ReconcileMachine``: the reconciler's desired-state diff and record
  lifecycle (``_core/reconcile.py``);
* ``BreakerMachine``: a circuit breaker on a fake clock (``_core/breaker.py``);
* ``WindowMachine``: an adaptive AIMD window (``_core/window.py``,
  ``_core/aimd.py``) under admissions, successes and overloads;
* ``RuntimeMachine``: a ``DAGExecutor`` run on the virtual clock whose
  bodies end in whatever order the machine picks.

They run ``WAVE_STATEFUL_EXAMPLES`` sequences each (default 60, a few
seconds in all); run them longer with, for example::

    WAVE_STATEFUL_EXAMPLES=2000 ./dev pytest tests/test_state_machines.py -q
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from wave_executor import CircuitBreaker, CircuitState, DAGExecutor, RetryPolicy, WaveConfig
from wave_executor._core.graph import build_graph
from wave_executor._core.plan import Plan
from wave_executor._core.reconcile import (
    DEAD,
    ActionKind,
    ReconcileTaskSpec,
    SupervisedRecord,
    SupervisedStatus,
    diff_desired,
    reconcile_task,
    satisfied,
)
from wave_executor._core.restart import RestartPolicy
from wave_executor._core.status import TaskStatus
from wave_executor._core.triggers import SkipReason, TriggerRule
from wave_executor._core.window import Window
from wave_executor.errors import WaveExecutorError
from wave_executor.testing import VirtualClockEventLoop

STATEFUL = settings(
    max_examples=int(os.environ.get("WAVE_STATEFUL_EXAMPLES", "60")),
    stateful_step_count=int(os.environ.get("WAVE_STATEFUL_STEPS", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# -- the plan ----------------------------------------------------------------------------

TERMINAL = {"success", "failed", "timeout", "skipped", "cancelled"}


class PlanMachine(RuleBasedStateMachine):
    """Model: each task's status, and which tasks are ready (all deps succeeded)."""

    @initialize(
        n=st.integers(1, 8),
        edges=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), max_size=14),
    )
    def build(self, n: int, edges: list[tuple[int, int]]) -> None:
        self.deps: dict[int, set[int]] = {i: set() for i in range(n)}
        for a, b in edges:
            if a < b < n:  # upstream a, downstream b: acyclic
                self.deps[b].add(a)
        self.graph = build_graph(range(n), {i: sorted(d) for i, d in self.deps.items()})
        self.plan = Plan(self.graph)
        self.status = {i: "ready" if not self.deps[i] else "pending" for i in range(n)}

    def _with(self, status: str) -> list[int]:
        return [i for i, s in self.status.items() if s == status]

    @rule()
    def take(self) -> None:
        ready = self._with("ready")
        taken = self.plan.take()
        if not ready:
            assert taken is None
            return
        assert taken in ready
        best = min(self.graph.priority[i] for i in ready)
        assert self.graph.priority[taken] == best  # highest priority first
        self.status[taken] = "running"

    @precondition(lambda self: self._with("running"))
    @rule(data=st.data())
    def succeed(self, data: st.DataObject) -> None:
        i = data.draw(st.sampled_from(self._with("running")))
        released = self.plan.succeed(i)
        self.status[i] = "success"
        now_ready = [
            j
            for j, s in self.status.items()
            if s == "pending" and all(self.status[d] == "success" for d in self.deps[j])
        ]
        for j in now_ready:
            self.status[j] = "ready"
        assert released == len(now_ready)

    @precondition(lambda self: self._with("running"))
    @rule(data=st.data(), timed_out=st.booleans())
    def fail(self, data: st.DataObject, timed_out: bool) -> None:
        i = data.draw(st.sampled_from(self._with("running")))
        skipped = self.plan.fail(i, TaskStatus.TIMEOUT if timed_out else TaskStatus.FAILED)
        self.status[i] = "timeout" if timed_out else "failed"
        expected: set[int] = set()
        frontier = [i]
        while frontier:  # every pending task downstream of i, through pending tasks
            u = frontier.pop()
            for j, ds in self.deps.items():
                if u in ds and self.status[j] == "pending" and j not in expected:
                    expected.add(j)
                    frontier.append(j)
        assert {s for s, _ in skipped} == expected
        for s, cause in skipped:
            assert cause in self.deps[s]
            self.status[s] = "skipped"

    @precondition(lambda self: self._with("running"))
    @rule(data=st.data())
    def back_off_and_retry(self, data: st.DataObject) -> None:
        i = data.draw(st.sampled_from(self._with("running")))
        self.plan.back_off(i)
        self.status[i] = "backoff"
        assert self.plan.status(i) is TaskStatus.BACKOFF
        if data.draw(st.booleans()):
            self.plan.retry(i)
            self.status[i] = "ready"

    @precondition(lambda self: self._with("backoff"))
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        i = data.draw(st.sampled_from(self._with("backoff")))
        self.plan.retry(i)
        self.status[i] = "ready"

    @rule(data=st.data())
    def an_illegal_success_is_refused(self, data: st.DataObject) -> None:
        others = [i for i, s in self.status.items() if s != "running"]
        if not others:
            return
        i = data.draw(st.sampled_from(others))
        with pytest.raises(WaveExecutorError, match="illegal task status transition"):
            self.plan.succeed(i)

    @precondition(lambda self: not self.plan.done)
    @rule()
    def abort(self) -> None:
        ended = self.plan.abort(TaskStatus.CANCELLED)
        assert set(ended) == {i for i, s in self.status.items() if s not in TERMINAL}
        for i in ended:
            self.status[i] = "cancelled"

    @invariant()
    def statuses_match_the_model(self) -> None:
        for i, s in self.status.items():
            assert self.plan.status(i).value == s, (i, self.plan.status(i), s)
        unfinished = sum(1 for s in self.status.values() if s not in TERMINAL)
        assert self.plan.unfinished == unfinished
        assert self.plan.done == (unfinished == 0)
        assert self.plan.ready_count == len(self._with("ready"))


class RuledPlanMachine(RuleBasedStateMachine):
    """The plan with trigger rules, against an oracle that reads each rule as a
    predicate over how the upstreams end: run once it holds whatever the
    unfinished upstreams do, skip once it fails whatever they do, else wait
    (``all_done`` waits for every upstream; ``always`` runs at once)."""

    @initialize(
        n=st.integers(1, 7),
        edges=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=12),
        rules=st.lists(st.sampled_from(list(TriggerRule)), min_size=7, max_size=7),
    )
    def build(self, n: int, edges: list[tuple[int, int]], rules: list[TriggerRule]) -> None:
        self.deps: dict[int, set[int]] = {i: set() for i in range(n)}
        for a, b in edges:
            if a < b < n:
                self.deps[b].add(a)
        self.rule_of = {i: rules[i] for i in range(n)}
        graph = build_graph(range(n), {i: sorted(d) for i, d in self.deps.items()})
        ruled = {i: r for i, r in self.rule_of.items() if r is not TriggerRule.ALL_SUCCESS}
        self.plan = Plan(graph, rules=ruled)
        self.status: dict[int, str] = dict.fromkeys(range(n), "pending")
        self.kind: dict[int, str] = {}  # ended tasks: "S" succeeded, "F" failed, "K" rule-skipped
        self._propagate()

    def _oracle(self, i: int) -> str:
        rule = self.rule_of[i]
        ups = self.deps[i]
        if rule is TriggerRule.ALWAYS or not ups:
            return "run"
        ended = [self.kind[u] for u in ups if u in self.kind]
        left = len(ups) - len(ended)
        if rule is TriggerRule.ALL_DONE:
            return "run" if not left else "wait"
        outcomes = set()
        for a in range(left + 1):
            for b in range(left + 1 - a):
                c = left - a - b
                s_, f_, k_ = ended.count("S") + a, ended.count("F") + b, ended.count("K") + c
                outcomes.add(_holds(rule, len(ups), s_, f_, k_))
        if outcomes == {True}:
            return "run"
        return "skip" if outcomes == {False} else "wait"

    def _propagate(self) -> None:
        changed = True
        while changed:
            changed = False
            for i, status in self.status.items():
                if status != "pending":
                    continue
                verdict = self._oracle(i)
                if verdict == "run":
                    self.status[i] = "ready"
                    changed = True
                elif verdict == "skip":
                    failed = any(self.kind[u] == "F" for u in self.deps[i] if u in self.kind)
                    upstream_failed = failed and self.rule_of[i] in _FAILURE_SENSITIVE
                    self.status[i] = "skipped"
                    self.kind[i] = "F" if upstream_failed else "K"
                    changed = True

    def _with(self, status: str) -> list[int]:
        return [i for i, s in self.status.items() if s == status]

    @rule()
    def take(self) -> None:
        taken = self.plan.take()
        if not self._with("ready"):
            assert taken is None
            return
        assert taken in self._with("ready")
        self.status[taken] = "running"

    @precondition(lambda self: self._with("running"))
    @rule(data=st.data(), succeed=st.booleans())
    def end(self, data: st.DataObject, succeed: bool) -> None:
        i = data.draw(st.sampled_from(self._with("running")))
        if succeed:
            self.plan.succeed(i)
            self.status[i], self.kind[i] = "success", "S"
        else:
            self.plan.fail(i, TaskStatus.FAILED)
            self.status[i], self.kind[i] = "failed", "F"
        self._propagate()

    @invariant()
    def matches_the_oracle(self) -> None:
        for i, s in self.status.items():
            assert self.plan.status(i).value == s, (i, self.rule_of[i], self.plan.status(i), s)
            if s == "skipped":
                reason = self.plan.skip_reasons.get(i, SkipReason.UPSTREAM_FAILED)
                expected = "upstream_failed" if self.kind[i] == "F" else "rule_not_met"
                assert reason.value == expected, (i, self.rule_of[i], reason)
        assert self.plan.ready_count == len(self._with("ready"))
        assert self.plan.unfinished == sum(1 for s in self.status.values() if s not in TERMINAL)


def _holds(rule: TriggerRule, total: int, s: int, f: int, k: int) -> bool:
    """Does ``rule`` hold once every upstream ended (``s`` succeeded, ``f`` failed, ``k``
    skipped by their rules)? Straight from docs/trigger-rules.md."""
    return {
        TriggerRule.ALL_SUCCESS: s == total,
        TriggerRule.ALL_FAILED: f == total,
        TriggerRule.ALL_SKIPPED: k == total,
        TriggerRule.ONE_SUCCESS: s >= 1,
        TriggerRule.ONE_FAILED: f >= 1,
        TriggerRule.ONE_DONE: s + f >= 1,
        TriggerRule.NONE_FAILED: f == 0,
        TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS: f == 0 and s >= 1,
        TriggerRule.NONE_SKIPPED: k == 0,
    }[rule]


#: Rules a failed upstream defeats: their skip says "upstream failed".
_FAILURE_SENSITIVE = {
    TriggerRule.ALL_SUCCESS,
    TriggerRule.ONE_SUCCESS,
    TriggerRule.NONE_FAILED,
    TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
}


# -- the reconciler's diff and records -------------------------------------------------------

IDS = st.sampled_from(["a", "b", "c", "d", 1, (2, "x")])
SPECS = st.one_of(st.integers(0, 2), st.sampled_from([{"v": 1}, {"v": 2}, [1], "s"]))


def _task_specs(draw_ids: list[Any], data: st.DataObject) -> dict[Any, ReconcileTaskSpec]:
    return {
        t: ReconcileTaskSpec(
            t,
            data.draw(SPECS),
            data.draw(st.sampled_from(list(RestartPolicy))),
            data.draw(st.integers(0, 2)),
            data.draw(st.sampled_from([1.0, 3.0])),
        )
        for t in draw_ids
    }


class ReconcileMachine(RuleBasedStateMachine):
    """The desired state replaced again and again; records moved through their table."""

    def __init__(self) -> None:
        super().__init__()
        self.desired: dict[Any, ReconcileTaskSpec] = {}
        self.records: dict[Any, SupervisedRecord] = {}
        self.quota_resets: dict[Any, int] = {}

    @rule(ids=st.lists(IDS, unique=True, max_size=5), data=st.data())
    def update(self, ids: list[Any], data: st.DataObject) -> None:
        new = _task_specs(ids, data)
        old = self.desired
        diff = diff_desired(old, new)
        parts = [diff.added, diff.changed, diff.retuned, diff.unchanged]
        together = [t for part in parts for t in part]
        assert sorted(map(repr, together)) == sorted(map(repr, new))  # a partition of new
        assert len(together) == len(set(together))
        for part in parts:  # each part keeps the new order
            assert list(part) == [t for t in new if t in part]
        assert list(diff.removed) == [t for t in old if t not in new]
        for t in diff.added:
            assert t not in old
        for t in diff.changed:
            assert old[t].spec != new[t].spec
        for t in diff.retuned:
            assert old[t].spec == new[t].spec and old[t] != new[t]
        for t in diff.unchanged:
            assert old[t] == new[t]
        # what the reconciler does with the diff: fresh records and quotas
        for t in diff.removed:
            del self.records[t]
        for t in diff.added:
            self.records[t] = SupervisedRecord(t)
            self.quota_resets[t] = self.quota_resets.get(t, 0) + 1
        for t in diff.changed:
            self.records[t].fresh_quota()
            self.quota_resets[t] += 1
            assert self.records[t].restart_count == 0 and self.records[t].runs == 0
        self.desired = new

    @precondition(lambda self: self.records)
    @rule(data=st.data(), to=st.sampled_from(list(SupervisedStatus)))
    def move(self, data: st.DataObject, to: SupervisedStatus) -> None:
        t = data.draw(st.sampled_from(list(self.records)))
        record = self.records[t]
        before = record.status
        if to in _allowed_from(before):
            record.move(to)
            assert record.status is to
        else:
            with pytest.raises(WaveExecutorError, match="illegal supervised task transition"):
                record.move(to)
            assert record.status is before  # a refused move changes nothing

    @precondition(lambda self: self.records)
    @rule(
        data=st.data(),
        now=st.floats(0, 100),
        due=st.none() | st.floats(0, 100),
        rest_for_one=st.booleans(),
    )
    def decide(
        self, data: st.DataObject, now: float, due: float | None, rest_for_one: bool
    ) -> None:
        t = data.draw(st.sampled_from(list(self.records)))
        record = self.records[t]
        record.next_start_after = due
        others = [u for u in self.records if u != t]
        upstream = data.draw(
            st.lists(st.sampled_from(others), unique=True) if others else st.just([])
        )
        deps = {u: self.records[u] for u in upstream}
        action = reconcile_task(record, deps, now, rest_for_one=rest_for_one)
        dead = tuple(u for u in upstream if self.records[u].status in DEAD)
        status = record.status
        waiting = status is SupervisedStatus.PENDING or (
            status is SupervisedStatus.SUCCESS and due is not None
        )
        if action.kind is ActionKind.START:
            assert waiting and not dead and all(satisfied(d) for d in deps.values())
            assert due is None or now + 1e-6 >= due
        elif action.kind is ActionKind.SKIP:
            assert waiting and action.deps == dead and dead
        elif action.kind is ActionKind.UNSKIP:
            assert status is SupervisedStatus.SKIPPED and not dead
        elif action.kind is ActionKind.WAIT:
            assert waiting and due is not None and action.at == due and now < due
        elif action.kind is ActionKind.STOP:
            assert status is SupervisedStatus.RUNNING and rest_for_one
        else:
            assert not (waiting and not dead and all(satisfied(d) for d in deps.values())) or (
                due is not None and now < due
            )

    @invariant()
    def records_follow_the_desired_state(self) -> None:
        assert list(self.records) == list(self.desired) or set(map(repr, self.records)) == set(
            map(repr, self.desired)
        )


def _allowed_from(status: SupervisedStatus) -> set[SupervisedStatus]:
    from wave_executor._core import reconcile

    return set(reconcile._ALLOWED[status])


# -- the circuit breaker --------------------------------------------------------------------


class BreakerMachine(RuleBasedStateMachine):
    """A breaker on a fake clock against a model of CLOSED -> OPEN -> HALF_OPEN -> CLOSED."""

    @initialize(
        failures=st.integers(1, 4), successes=st.integers(1, 3), recovery=st.sampled_from([0, 1, 5])
    )
    def build(self, failures: int, successes: int, recovery: float) -> None:
        self.now = 0.0
        self.breaker = CircuitBreaker("svc", failures, successes, recovery, clock=lambda: self.now)
        self.failures, self.successes, self.recovery = failures, successes, recovery
        self.state = "closed"
        self.failed = self.probed = 0
        self.opened_at = -math.inf
        self.probe = False

    @rule(dt=st.sampled_from([0.0, 0.5, 1.0, 5.0]))
    def tick(self, dt: float) -> None:
        self.now += dt

    @rule()
    def ask(self) -> None:
        allowed = self.breaker.allow_request()
        if self.state == "open" and self.now - self.opened_at >= self.recovery:
            self.state, self.probed, self.probe = "half_open", 0, False
        if self.state == "closed":
            expected = True
        elif self.state == "open":
            expected = False
        else:
            expected = not self.probe
            self.probe = True
        assert allowed == expected

    @rule()
    def success(self) -> None:
        self.breaker.record_success()
        if self.state == "half_open":
            self.probe = False
            self.probed += 1
            if self.probed >= self.successes:
                self.state, self.failed, self.probed = "closed", 0, 0
        elif self.state == "closed":
            self.failed = 0

    @rule()
    def failure(self) -> None:
        self.breaker.record_failure()
        if self.state == "half_open":
            self._open()
        elif self.state == "closed":
            self.failed += 1
            if self.failed >= self.failures:
                self._open()

    def _open(self) -> None:
        self.state, self.opened_at, self.probe, self.probed = "open", self.now, False, 0

    @rule()
    def release(self) -> None:
        self.breaker.release_probe()
        self.probe = False

    @rule()
    def reset(self) -> None:
        self.breaker.reset()
        self.state, self.failed, self.probed, self.probe = "closed", 0, 0, False

    @invariant()
    def matches_the_model(self) -> None:
        assert self.breaker.state is CircuitState(self.state)
        if self.state == "closed":
            assert self.breaker.failure_count == self.failed < self.failures
        if self.state == "open":
            wait = self.breaker.retry_after()
            assert wait == max(0.0, self.opened_at + self.recovery - self.now)
        else:
            assert self.breaker.retry_after() is None
        assert self.breaker.to_dict()["state"] == self.state


# -- the AIMD window ------------------------------------------------------------------------


class WindowMachine(RuleBasedStateMachine):
    """Calls admitted and answered in any order; the window stays in bounds and shrinks
    at most once per round trip."""

    @initialize(
        limit=st.integers(1, 40), floor=st.integers(1, 10), initial=st.none() | st.integers(1, 20)
    )
    def build(self, limit: int, floor: int, initial: int | None) -> None:
        self.window = Window.adaptive(limit, floor, initial)
        self.ceiling, self.floor = limit, min(floor, limit)
        self.now = 0.0
        self.in_flight: list[tuple[float, int]] = []  # (admitted at, in flight then)
        self.last_decrease = -math.inf
        self.decreases = 0

    @rule(dt=st.sampled_from([0.0, 0.1, 1.0]))
    def tick(self, dt: float) -> None:
        self.now += dt

    @precondition(lambda self: not self.window.full)
    @rule()
    def admit(self) -> None:
        count = self.window.admit()
        assert count == len(self.in_flight) + 1
        self.in_flight.append((self.now, count))

    @precondition(lambda self: self.in_flight)
    @rule(data=st.data())
    def succeed(self, data: st.DataObject) -> None:
        k = data.draw(st.integers(0, len(self.in_flight) - 1))
        _, count = self.in_flight.pop(k)
        before = self.window.limit
        self.window.leave()
        self.window.success(count)
        assert before <= self.window.limit <= before + 1  # grows by one at most

    @precondition(lambda self: self.in_flight)
    @rule(data=st.data())
    def overload(self, data: st.DataObject) -> None:
        k = data.draw(st.integers(0, len(self.in_flight) - 1))
        admitted, count = self.in_flight.pop(k)
        before = self.window.limit
        self.window.leave()
        self.window.overload(admitted, self.now, count)
        if admitted < self.last_decrease:  # answered already by an earlier decrease
            assert self.window.limit == before
            return
        self.last_decrease = self.now
        self.decreases += 1
        assert self.window.limit == max(self.floor, min(before - 1, self.window.limit))
        assert self.window.limit < before or before == self.floor

    @invariant()
    def stays_in_bounds(self) -> None:
        assert self.floor <= self.window.limit <= self.ceiling
        assert self.window.active == len(self.in_flight) >= 0
        assert self.window.policy is not None
        assert self.window.policy.decreases == self.decreases


# -- the runtime, on the virtual clock -------------------------------------------------------


class RuntimeMachine(RuleBasedStateMachine):
    """A real ``DAGExecutor`` run whose bodies end when the machine says, in any order.

    Each body waits on a future; a rule resolves one (success or failure) and
    lets the loop run until idle. Checked after every step: a body starts
    only once its dependencies succeeded, never more than the cap run at
    once, a free slot never stays idle while a task is ready, and the run
    ends exactly when nothing is left to start; at the end, every status
    is what the model says.
    """

    @initialize(
        n=st.integers(1, 7),
        edges=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=10),
        cap=st.integers(1, 3),
    )
    def build(self, n: int, edges: list[tuple[int, int]], cap: int) -> None:
        self.deps: dict[int, set[int]] = {i: set() for i in range(n)}
        for a, b in edges:
            if a < b < n:
                self.deps[b].add(a)
        self.cap = cap
        self.loop = VirtualClockEventLoop()
        self.futures: dict[int, asyncio.Future[Any]] = {}
        self.started: list[int] = []
        self.ok: set[int] = set()
        self.failed: set[int] = set()
        self.early: list[int] = []  # bodies that started before their dependencies succeeded

        async def body(task_id: int, spec: Any) -> Any:
            if not self.deps[task_id] <= self.ok:
                self.early.append(task_id)
            future = self.loop.create_future()
            self.futures[task_id] = future
            self.started.append(task_id)
            return await future

        config = WaveConfig(
            max_parallel_per_wave=cap,
            adaptive_batch_window=False,
            retry_policy=RetryPolicy(max_retries=0),
            circuit_breaker_enabled=False,
            default_task_timeout=math.inf,
            total_execution_timeout=math.inf,
        )
        graph: dict[int, Any] = {i: {} for i in range(n)}
        deps = {i: sorted(d) for i, d in self.deps.items()}
        self.run = self.loop.create_task(DAGExecutor(config).execute(graph, deps, body))
        self._settle()

    def _settle(self) -> None:
        self.loop.run_until_complete(asyncio.sleep(1))

    def _running(self) -> list[int]:
        return [i for i, f in self.futures.items() if not f.done()]

    def _doomed(self, i: int) -> bool:
        """Has an upstream of ``i`` (transitively) failed?"""
        stack, seen = list(self.deps[i]), set()
        while stack:
            u = stack.pop()
            if u in self.failed:
                return True
            if u not in seen:
                seen.add(u)
                stack.extend(self.deps[u])
        return False

    @rule()
    def wait(self) -> None:
        self._settle()  # time passes; nothing may change while every body waits

    @precondition(lambda self: self._running())
    @rule(data=st.data(), succeed=st.booleans())
    def finish(self, data: st.DataObject, succeed: bool) -> None:
        i = data.draw(st.sampled_from(self._running()))
        if succeed:
            self.ok.add(i)
            self.futures[i].set_result(i)
        else:
            self.failed.add(i)
            self.futures[i].set_exception(RuntimeError(f"task {i} failed"))
        self._settle()

    @invariant()
    def the_schedule_is_sound(self) -> None:
        assert not self.early
        running = self._running()
        assert len(running) <= self.cap
        ready = [i for i in self.deps if i not in self.futures and self.deps[i] <= self.ok]
        if len(running) < self.cap:
            assert not ready, (ready, running)  # a free slot, a ready task: it must start
        assert self.run.done() == (not running)

    def teardown(self) -> None:
        try:
            while self._running():
                for i in self._running():
                    self.ok.add(i)
                    self.futures[i].set_result(i)
                self._settle()
            # a run that never ends fails here (virtual seconds) instead of hanging
            waited = asyncio.wait_for(asyncio.shield(self.run), timeout=3600)
            result = self.loop.run_until_complete(waited)
            for i in self.deps:
                status = result.task_results[i].status
                if i in self.ok:
                    assert status == "success"
                elif i in self.failed:
                    assert status == "failed"
                else:
                    assert self._doomed(i) and status == "skipped", (i, status)
            assert len(self.started) == len(set(self.started))  # no body ran twice
        finally:
            if not self.run.done():
                self.run.cancel()
                with contextlib.suppress(BaseException):
                    self.loop.run_until_complete(self.run)
            self.loop.close()


TestPlanMachine = PlanMachine.TestCase
TestRuledPlanMachine = RuledPlanMachine.TestCase
TestReconcileMachine = ReconcileMachine.TestCase
TestBreakerMachine = BreakerMachine.TestCase
TestWindowMachine = WindowMachine.TestCase
TestRuntimeMachine = RuntimeMachine.TestCase
for _machine in (
    TestPlanMachine,
    TestRuledPlanMachine,
    TestReconcileMachine,
    TestBreakerMachine,
    TestWindowMachine,
    TestRuntimeMachine,
):
    _machine.settings = STATEFUL
del _machine
