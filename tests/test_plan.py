from __future__ import annotations

import pytest

from wave_executor import TaskStatus
from wave_executor._core.graph import build_graph
from wave_executor._core.plan import Plan
from wave_executor._core.status import TERMINAL, check_transition, code_of
from wave_executor.errors import IllegalTransitionError


def make(deps: dict[str, set[str]], tasks: str = "abcde") -> tuple[Plan, list[object]]:
    graph = build_graph(list(tasks), deps)
    return Plan(graph), graph.ids


def test_failure_skips_transitive_dependents_only() -> None:
    plan, ids = make({"b": {"a"}, "c": {"b"}, "e": {"d"}})
    a = plan.take()
    assert a is not None and ids[a] == "a"
    skipped = plan.fail(a, TaskStatus.FAILED)
    assert [(ids[s], ids[via]) for s, via in skipped] == [("b", "a"), ("c", "b")]
    assert plan.status(ids.index("d")) is TaskStatus.READY
    assert plan.unfinished == 2


def test_a_task_ready_in_the_heap_is_never_skipped() -> None:
    plan, ids = make({"c": {"a", "b"}}, "abc")
    a, b = plan.take(), plan.take()
    assert a is not None and b is not None
    plan.succeed(a)
    plan.fail(b, TaskStatus.TIMEOUT)
    assert plan.status(ids.index("c")) is TaskStatus.SKIPPED
    assert plan.done


def test_backoff_and_retry_return_the_task_to_the_ready_set() -> None:
    plan, _ = make({}, "a")
    a = plan.take()
    assert a is not None
    plan.back_off(a)
    assert plan.take() is None
    plan.retry(a)
    assert plan.take() == a


def test_abort_ends_every_unfinished_task() -> None:
    plan, _ = make({"b": {"a"}}, "abc")
    a = plan.take()
    assert a is not None
    plan.succeed(a)
    ended = plan.abort(TaskStatus.CANCELLED)
    assert sorted(ended) == [1, 2]
    assert plan.done


def test_illegal_transitions_raise() -> None:
    plan, _ = make({}, "a")
    a = plan.take()
    assert a is not None
    plan.succeed(a)
    with pytest.raises(IllegalTransitionError):
        plan.succeed(a)
    with pytest.raises(IllegalTransitionError):
        check_transition(code_of(TaskStatus.SKIPPED), code_of(TaskStatus.RUNNING))


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_terminal_statuses_have_no_way_out(status: TaskStatus) -> None:
    for dst in TaskStatus:
        with pytest.raises(IllegalTransitionError):
            check_transition(code_of(status), code_of(dst))


def test_statuses_compare_equal_to_0_3_0_strings() -> None:
    success: str = TaskStatus.SUCCESS
    assert success == "success"
    assert str(TaskStatus.TIMEOUT) == "timeout"
    assert f"{TaskStatus.SKIPPED}" == "skipped"
