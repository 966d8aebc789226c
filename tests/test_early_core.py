"""Early submission's pure parts: ``EarlyBook`` and the plan's early release and withdrawal."""

from __future__ import annotations

import pytest

from wave_executor import TaskStatus
from wave_executor._core.early import NO_ROUTE, EarlyBook
from wave_executor._core.graph import build_graph
from wave_executor._core.plan import Plan
from wave_executor._core.triggers import TriggerRule
from wave_executor.errors import IllegalTransitionError


def book_of(
    deps: dict[str, list[str]], tasks: str, routes: dict[str, int], excluded: str = ""
) -> tuple[EarlyBook, Plan, list[object]]:
    graph = build_graph(list(tasks), deps)
    ids = graph.ids
    index = graph.index
    ups = [[index[d] for d in deps.get(t, ())] for t in ids]
    route = [routes.get(t, NO_ROUTE) for t in ids]
    book = EarlyBook(graph, route, ups, {index[t] for t in excluded})
    return book, Plan(graph), ids


def test_only_tasks_whose_upstreams_share_their_route_are_eligible() -> None:
    deps = {"b": ["a"], "c": ["a", "x"], "d": ["b"], "e": ["y"], "f": ["b"]}
    routes = {"a": 0, "b": 0, "c": 0, "d": 0, "e": 0, "y": 1, "f": 0}
    book, _, ids = book_of(deps, "abcdefxy", routes, excluded="f")
    eligible = {ids[i] for i, e in enumerate(book.eligible) if e}
    assert eligible == {"b", "d"}  # c: x is local; e: y is on another route; f: its rule
    routed = {ids[i] for i, r in enumerate(book.routes) if r != NO_ROUTE}
    assert routed == {"a", "b", "d", "f", "y"}  # c and e take the ordinary path


def test_a_task_is_a_candidate_once_every_upstream_is_submitted() -> None:
    book, _, ids = book_of({"c": ["a", "b"]}, "abc", dict.fromkeys("abc", 0))
    a, b, c = (ids.index(t) for t in "abc")
    assert book.submitted(a) == []
    assert book.submitted(a) == []  # counted once
    assert book.submitted(b) == [c]
    book.lost(a)  # a's attempt failed: c waits for its next submission
    book.lost(a)
    assert book.submitted(a) == [c]


def test_release_early_and_withdraw_keep_the_plan_consistent() -> None:
    book, plan, ids = book_of({"b": ["a"], "c": ["b"]}, "abc", dict.fromkeys("abc", 0))
    a, b, _c = (ids.index(t) for t in "abc")
    assert plan.take() == a
    assert book.submitted(a) == [b]
    assert plan.release_early(b) and not plan.release_early(b)
    assert plan.status(b) is TaskStatus.READY
    plan.withdraw(b)  # a failed before b was taken: its heap entry goes stale
    assert plan.status(b) is TaskStatus.PENDING
    assert plan.take() is None  # the stale entry is passed over
    plan.back_off(a)
    plan.retry(a)
    assert plan.take() == a
    assert plan.release_early(b)
    assert plan.take() == b  # running before a has ended
    plan.withdraw(b)  # a failed again, for good this time
    assert [(ids[s], ids[v]) for s, v in plan.fail(a, TaskStatus.FAILED)] == [
        ("b", "a"),
        ("c", "b"),
    ]
    assert plan.done


def test_a_task_released_early_succeeds_after_its_upstream() -> None:
    _, plan, ids = book_of({"b": ["a"], "c": ["b"]}, "abc", dict.fromkeys("abc", 0))
    a, b, c = (ids.index(t) for t in "abc")
    assert plan.take() == a
    assert plan.release_early(b) and plan.take() == b
    assert plan.succeed(a) == 0  # b is running already: nothing to release
    assert plan.succeed(b) == 1 and plan.take() == c
    assert plan.succeed(c) == 0 and plan.done


def test_a_withdrawn_task_that_is_ready_again_is_taken_once() -> None:
    _, plan, ids = book_of({"b": ["a"]}, "ab", {"a": 0, "b": 0})
    a, b = (ids.index(t) for t in "ab")
    assert plan.take() == a
    plan.release_early(b)
    plan.withdraw(b)
    plan.release_early(b)  # two heap entries, one task
    assert plan.take() == b
    assert plan.take() is None


def test_only_early_released_tasks_can_be_withdrawn() -> None:
    _, plan, ids = book_of({"b": ["a"]}, "ab", {"a": 0, "b": 0})
    b = ids.index("b")
    with pytest.raises(IllegalTransitionError):
        plan.withdraw(b)  # pending


def test_a_ruled_plan_counts_an_upstream_that_ended_while_its_dependent_ran_early() -> None:
    graph = build_graph(list("abcd"), {"c": ["a", "b"], "d": ["c"]})
    ids = graph.ids
    a, b, c, d = (ids.index(t) for t in "abcd")
    plan = Plan(graph, rules={d: TriggerRule.ALL_DONE})  # a ruled plan; c is all_success
    assert {plan.take(), plan.take()} == {a, b}
    assert plan.release_early(c) and plan.take() == c
    plan.succeed(a)  # c is running: counted all the same
    plan.withdraw(c)  # b's attempt failed
    plan.back_off(b)
    plan.retry(b)
    assert plan.take() == b
    plan.succeed(b)  # with a's success counted, c may run
    assert plan.take() == c
