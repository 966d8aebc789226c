"""The reconciler's pure core: status table, restart rules, the per-task reconcile, the diff."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wave_executor._core.reconcile import (
    DEAD,
    TERMINAL,
    ActionKind,
    ReconcileTaskSpec,
    ReconcileTaskState,
    SupervisedRecord,
    SupervisedStatus,
    diff_desired,
    reconcile_task,
    record_from_checkpoint,
    satisfied,
)
from wave_executor._core.restart import (
    RestartHistory,
    RestartPolicy,
    RestartSettings,
    backoff,
    decide,
)
from wave_executor.errors import IllegalTransitionError

S = SupervisedStatus
ALL = list(S)


# -- statuses ------------------------------------------------------------------


def test_statuses_compare_equal_to_0_3_0_strings() -> None:
    assert [s.value for s in S][:7] == [
        "pending", "running", "success", "failed", "timeout", "stopped", "blocked",
    ]  # fmt: skip
    assert str(S.SKIPPED) == "skipped"
    assert ReconcileTaskState("t", status="failed").is_terminal  # plain strings work too
    assert ReconcileTaskState("t", status=S.RUNNING).is_running
    assert not ReconcileTaskState("t").is_terminal


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(ALL, ALL)))
def test_transition_table(src: SupervisedStatus, dst: SupervisedStatus) -> None:
    legal = {
        (S.PENDING, S.RUNNING), (S.PENDING, S.SKIPPED), (S.PENDING, S.STOPPED),
        (S.RUNNING, S.SUCCESS), (S.RUNNING, S.FAILED), (S.RUNNING, S.TIMEOUT),
        (S.RUNNING, S.STOPPED), (S.RUNNING, S.PENDING),
        (S.SUCCESS, S.RUNNING), (S.SUCCESS, S.PENDING), (S.SUCCESS, S.SKIPPED),
        (S.SUCCESS, S.STOPPED),
        (S.FAILED, S.PENDING), (S.FAILED, S.BLOCKED), (S.FAILED, S.STOPPED),
        (S.TIMEOUT, S.PENDING), (S.TIMEOUT, S.BLOCKED), (S.TIMEOUT, S.STOPPED),
        (S.BLOCKED, S.PENDING), (S.BLOCKED, S.STOPPED),
        (S.SKIPPED, S.PENDING), (S.SKIPPED, S.STOPPED),
        (S.STOPPED, S.PENDING),
    }  # fmt: skip
    record = SupervisedRecord("t", status=src)
    if (src, dst) in legal:
        record.move(dst)
        assert record.status is dst
    else:
        with pytest.raises(IllegalTransitionError, match=f"{src.value} -> {dst.value}"):
            record.move(dst)
        assert record.status is src


def test_a_task_cannot_go_from_pending_straight_to_an_outcome() -> None:
    with pytest.raises(IllegalTransitionError):
        SupervisedRecord("t").move(S.SUCCESS)


# -- restart rules ---------------------------------------------------------------


def _exit(
    policy: RestartPolicy,
    history: RestartHistory,
    *,
    failed: bool = True,
    ran_for: float = 0.1,
    now: float = 0.0,
    attempts: int = 5,
    base: float = 3.0,
    settings: RestartSettings | None = None,
    u: float = 0.0,
) -> tuple[bool, float, str | None]:
    d = decide(
        policy,
        failed=failed,
        ran_for=ran_for,
        now=now,
        max_restart_attempts=attempts,
        backoff_base=base,
        settings=settings or RestartSettings(),
        history=history,
        u=u,
    )
    return d.restart, d.delay, d.blocked


def test_backoff_doubles_from_base_and_is_capped() -> None:
    s = RestartSettings(backoff_cap_s=20.0)
    assert [backoff(3.0, n, s) for n in range(1, 6)] == [3.0, 6.0, 12.0, 20.0, 20.0]
    assert backoff(0.0, 7, s) == 0.0
    assert backoff(3.0, 10_000, s) == 20.0  # no overflow


@pytest.mark.parametrize("u", [0.0, 0.5, 0.999])
def test_jitter_only_adds_time_and_respects_the_cap(u: float) -> None:
    s = RestartSettings(jitter=0.5, backoff_cap_s=100.0)
    assert 6.0 <= backoff(3.0, 2, s, u) <= 9.0
    assert backoff(3.0, 9, RestartSettings(jitter=1.0, backoff_cap_s=10.0), u) <= 10.0


def test_policies_decide_whether_to_restart() -> None:
    assert _exit(RestartPolicy.NO, RestartHistory())[0] is False
    assert _exit(RestartPolicy.NO, RestartHistory(), failed=False)[0] is False
    assert _exit(RestartPolicy.ON_FAILURE, RestartHistory(), failed=False) == (False, 0.0, None)
    assert _exit(RestartPolicy.ON_FAILURE, RestartHistory()) == (True, 3.0, None)
    assert _exit(RestartPolicy.ALWAYS, RestartHistory(), failed=False) == (True, 3.0, None)


def test_crashes_in_a_row_back_off_then_block_past_max_restart_attempts() -> None:
    history = RestartHistory()
    delays = [_exit(RestartPolicy.ON_FAILURE, history, attempts=3)[1] for _ in range(3)]
    assert delays == [3.0, 6.0, 12.0]
    restart, _, blocked = _exit(RestartPolicy.ON_FAILURE, history, attempts=3)
    assert not restart
    assert blocked is not None and "4 times in a row" in blocked and "=3" in blocked


def test_clean_exits_never_count_towards_blocking() -> None:
    history = RestartHistory()
    for _ in range(100):
        assert _exit(RestartPolicy.ALWAYS, history, failed=False, attempts=5) == (True, 3.0, None)


def test_a_healthy_run_resets_the_backoff() -> None:
    s = RestartSettings(healthy_after_s=10.0)
    history = RestartHistory()
    assert [_exit(RestartPolicy.ALWAYS, history, settings=s)[1] for _ in range(3)] == [3, 6, 12]
    # The fourth run lasted 10 s before crashing: the streak starts over.
    assert _exit(RestartPolicy.ALWAYS, history, ran_for=10.0, settings=s)[1] == 3.0
    # With healthy_after_s=None only a clean exit resets it.
    never = RestartSettings(healthy_after_s=None)
    history = RestartHistory()
    for _ in range(3):
        _exit(RestartPolicy.ALWAYS, history, ran_for=1e6, settings=never)
    assert _exit(RestartPolicy.ALWAYS, history, ran_for=1e6, settings=never)[1] == 24.0


def test_crash_loop_window_blocks_a_burst_of_failures() -> None:
    s = RestartSettings(crash_loop_burst=3, crash_loop_window_s=10.0, healthy_after_s=0.0)
    history = RestartHistory()
    for now in (0.0, 1.0, 2.0):  # every run "healthy": only the window can block
        assert _exit(RestartPolicy.ALWAYS, history, now=now, settings=s, attempts=99)[0]
    restart, _, blocked = _exit(RestartPolicy.ALWAYS, history, now=3.0, settings=s, attempts=99)
    assert not restart and blocked is not None and "4 failures within 10s" in blocked
    # Spread out over more than the window, the same failures are fine.
    history = RestartHistory()
    for now in (0.0, 6.0, 12.0, 18.0, 24.0, 30.0):
        assert _exit(RestartPolicy.ALWAYS, history, now=now, settings=s, attempts=99)[0]
    assert len(history.failures) <= 4  # bounded memory


@pytest.mark.parametrize(
    "kwargs",
    [{"backoff_cap_s": -1.0}, {"jitter": float("nan")}, {"crash_loop_burst": -1},
     {"healthy_after_s": -2.0}, {"crash_loop_window_s": -1.0}],
)  # fmt: skip
def test_restart_settings_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RestartSettings(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    policy=st.sampled_from(list(RestartPolicy)),
    outcomes=st.lists(st.tuples(st.booleans(), st.floats(0, 100)), max_size=30),
    attempts=st.integers(0, 6),
    base=st.floats(0, 10),
    jitter=st.floats(0, 1),
    u=st.floats(0, 0.999),
)
def test_restart_decisions_hold_their_promises(
    policy: RestartPolicy,
    outcomes: list[tuple[bool, float]],
    attempts: int,
    base: float,
    jitter: float,
    u: float,
) -> None:
    s = RestartSettings(jitter=jitter, backoff_cap_s=60.0, healthy_after_s=50.0)
    history = RestartHistory()
    streak = 0
    for now, (failed, ran_for) in enumerate(outcomes):
        restart, delay, blocked = _exit(
            policy, history, failed=failed, ran_for=ran_for, now=float(now),
            attempts=attempts, base=base, settings=s, u=u,
        )  # fmt: skip
        streak = 0 if (not failed or ran_for >= 50.0) else streak
        streak += failed
        if blocked is not None:
            assert failed and not restart and streak > attempts  # only crash loops block
            break
        if policy is RestartPolicy.NO or (policy is RestartPolicy.ON_FAILURE and not failed):
            assert not restart
            continue
        assert restart
        n = max(streak, 1)
        floor = min(60.0, base * 2 ** (n - 1)) if base else 0.0
        assert floor - 1e-9 <= delay <= 60.0 + 1e-9  # never sooner than the formula


# -- reconcile_task ----------------------------------------------------------------


def rec(status: SupervisedStatus = S.PENDING, **kw: object) -> SupervisedRecord:
    r = SupervisedRecord("t", status=status)
    for k, v in kw.items():
        setattr(r, k, v)
    return r


def test_a_pending_task_starts_when_its_dependencies_are_satisfied() -> None:
    assert reconcile_task(rec(), {}, 0.0).kind is ActionKind.START
    deps = {"a": rec(S.SUCCESS), "b": rec(S.RUNNING, ready=True)}
    assert reconcile_task(rec(), deps, 0.0).kind is ActionKind.START
    deps["b"] = rec(S.RUNNING)  # running but not ready
    assert reconcile_task(rec(), deps, 0.0).kind is ActionKind.NOTHING


def test_a_restart_waits_for_its_time() -> None:
    action = reconcile_task(rec(next_start_after=5.0), {}, 1.0)
    assert (action.kind, action.at) == (ActionKind.WAIT, 5.0)
    assert reconcile_task(rec(next_start_after=5.0), {}, 5.0).kind is ActionKind.START
    always_after_success = rec(S.SUCCESS, next_start_after=2.0)
    assert reconcile_task(always_after_success, {}, 2.0).kind is ActionKind.START
    assert reconcile_task(rec(S.SUCCESS), {}, 2.0).kind is ActionKind.NOTHING  # final


def test_dead_dependencies_skip_and_recovered_ones_unskip() -> None:
    deps = {"a": rec(S.SUCCESS), "b": rec(S.BLOCKED), "c": rec(S.FAILED)}
    action = reconcile_task(rec(), deps, 0.0)
    assert action.kind is ActionKind.SKIP and action.deps == ("b", "c")
    assert reconcile_task(rec(S.SKIPPED), deps, 0.0).kind is ActionKind.NOTHING
    deps = {"a": rec(S.PENDING)}
    assert reconcile_task(rec(S.SKIPPED), deps, 0.0).kind is ActionKind.UNSKIP


def test_running_tasks_are_left_alone_unless_rest_for_one() -> None:
    running = rec(S.RUNNING, dep_runs={"a": 1})
    crashed = {"a": rec(S.PENDING, run_id=1)}
    assert reconcile_task(running, crashed, 0.0).kind is ActionKind.NOTHING
    action = reconcile_task(running, crashed, 0.0, rest_for_one=True)
    assert action.kind is ActionKind.STOP and action.deps == ("a",)
    restarted = {"a": rec(S.RUNNING, run_id=2, ready=True)}
    assert reconcile_task(running, restarted, 0.0, rest_for_one=True).kind is ActionKind.STOP
    same = {"a": rec(S.SUCCESS, run_id=1)}
    assert reconcile_task(running, same, 0.0, rest_for_one=True).kind is ActionKind.NOTHING


record_st = st.builds(
    lambda status, ready, run_id, nxt: SupervisedRecord(
        "x", status=status, ready=ready, run_id=run_id, next_start_after=nxt
    ),
    st.sampled_from(ALL),
    st.booleans(),
    st.integers(0, 3),
    st.none() | st.floats(0, 10),
)


@settings(max_examples=500, deadline=None)
@given(
    me=record_st,
    deps=st.dictionaries(st.sampled_from("abcde"), record_st, max_size=5),
    now=st.floats(0, 10),
    rest_for_one=st.booleans(),
    dep_runs=st.dictionaries(st.sampled_from("abcde"), st.integers(0, 3), max_size=5),
)
def test_reconcile_task_properties(
    me: SupervisedRecord,
    deps: dict[str, SupervisedRecord],
    now: float,
    rest_for_one: bool,
    dep_runs: dict[str, int],
) -> None:
    me.dep_runs = dep_runs
    action = reconcile_task(me, deps, now, rest_for_one=rest_for_one)
    dead = [d for d, r in deps.items() if r.status in DEAD]
    if action.kind is ActionKind.START:
        assert not dead and all(satisfied(r) for r in deps.values())
        assert me.next_start_after is None or me.next_start_after <= now + 1e-6
        assert me.status is S.PENDING or me.status is S.SUCCESS
    if action.kind is ActionKind.WAIT:
        assert action.at > now
    if action.kind is ActionKind.SKIP:
        assert list(action.deps) == dead and dead
    if action.kind is ActionKind.STOP:
        assert rest_for_one and me.status is S.RUNNING
    if me.status is S.RUNNING:
        assert action.kind in (ActionKind.NOTHING, ActionKind.STOP)
    if me.status in TERMINAL - {S.SUCCESS, S.SKIPPED}:
        assert action.kind is ActionKind.NOTHING  # only an update revives these
    if me.status is S.PENDING and dead:
        assert action.kind is ActionKind.SKIP  # never pending forever behind a dead task


# -- desired-state diff and checkpoints --------------------------------------------


def spec(task_id: str, value: object, **kw: object) -> ReconcileTaskSpec:
    return ReconcileTaskSpec(task_id, value, **kw)  # type: ignore[arg-type]


def test_diff_desired_sorts_tasks_by_what_changed() -> None:
    old = {"a": spec("a", 1), "b": spec("b", {"x": 1}), "c": spec("c", 3), "d": spec("d", 4)}
    new = {
        "b": spec("b", {"x": 1}),
        "c": spec("c", 30),
        "d": spec("d", 4, restart_policy=RestartPolicy.ALWAYS),
        "e": spec("e", 5),
    }
    diff = diff_desired(old, new)
    assert diff.added == ("e",)
    assert diff.removed == ("a",)
    assert diff.changed == ("c",)
    assert diff.retuned == ("d",)
    assert diff.unchanged == ("b",)


def test_record_from_checkpoint_keeps_final_outcomes_and_reruns_the_rest() -> None:
    def restored(status: str, policy: RestartPolicy = RestartPolicy.ON_FAILURE) -> S:
        return record_from_checkpoint("t", ReconcileTaskState("t", status), policy).status

    assert restored("success") is S.SUCCESS
    assert restored("success", RestartPolicy.ALWAYS) is S.PENDING
    assert restored("failed", RestartPolicy.NO) is S.FAILED
    assert restored("failed") is S.PENDING  # on-failure: a restart was due
    assert restored("blocked") is S.BLOCKED
    assert restored("running") is S.PENDING
    assert restored("stopped") is S.PENDING
    assert restored("no-such-status") is S.PENDING
    assert record_from_checkpoint("t", None, RestartPolicy.NO).status is S.PENDING


def test_checkpoint_records_may_be_mappings_as_a_json_store_returns_them() -> None:
    from wave_executor._core.reconcile import spec_from_checkpoint

    raw = {"task_id": "t", "spec": {"port": 1}, "restart_policy": "always",
           "max_restart_attempts": 7, "restart_backoff_base": 0.5}  # fmt: skip
    spec = spec_from_checkpoint("t", raw)
    assert (spec.spec, spec.restart_policy, spec.max_restart_attempts) == ({"port": 1}, "always", 7)
    state = {"status": "blocked", "restart_count": 3, "last_started": "2026-01-01T00:00:00"}
    record = record_from_checkpoint("t", state, RestartPolicy.ALWAYS)
    assert (record.status, record.restart_count, record.runs) == (S.BLOCKED, 3, 4)
