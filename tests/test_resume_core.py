from __future__ import annotations

import dataclasses
import enum

import pytest

from wave_executor._core.graph import build_graph
from wave_executor._core.plan import Plan
from wave_executor._core.resume import fingerprint, reusable_tasks, task_key


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Job:
    url: str
    tags: frozenset[str]


def test_fingerprints_ignore_dict_and_set_order() -> None:
    a = {"x": 1, "y": {"b", "a"}, "z": (1, 2), "c": Color.RED, "j": Job("u", frozenset("pq"))}
    b = {"j": Job("u", frozenset("qp")), "c": Color.RED, "z": [1, 2], "y": {"a", "b"}, "x": 1}
    assert fingerprint(a) == fingerprint(b) is not None
    assert fingerprint({"x": 2}) != fingerprint({"x": 1})


def test_specs_without_a_canonical_form_have_no_fingerprint() -> None:
    assert fingerprint({"callback": object()}) is None
    assert fingerprint(None) is not None


def test_task_keys() -> None:
    assert task_key("a") == "a" and task_key(7) == "#7" and task_key("7") == "7"
    assert task_key("#7") == "##7" and task_key(0.5) == "#0.5"
    with pytest.raises(TypeError, match="strings or numbers"):
        task_key(("a", 1))
    with pytest.raises(TypeError, match="strings or numbers"):
        task_key(True)


def test_a_changed_task_invalidates_its_dependents_only() -> None:
    deps = {"b": {"a"}, "c": {"b"}, "e": {"d"}}
    graph = build_graph(list("abcde"), deps)
    fps = [fingerprint(t) for t in "abcde"]
    stored = {t: (fingerprint(t) or "", f"out-{t}") for t in "abcde"}
    stored["b"] = ("changed", "out-b")
    assert [graph.ids[i] for i in reusable_tasks(graph, fps, stored)] == ["a", "d", "e"]


def test_unfingerprintable_or_missing_tasks_run_again() -> None:
    graph = build_graph(["a", "b"], {"b": {"a"}})
    assert reusable_tasks(graph, [None, "fp"], {"a": ("x", 1), "b": ("fp", 2)}) == []
    assert reusable_tasks(graph, ["fp", "fp"], {"b": ("fp", 2)}) == []


def test_plan_starts_from_completed_tasks() -> None:
    graph = build_graph(list("abc"), {"b": {"a"}, "c": {"b"}})
    plan = Plan(graph, completed=[0])
    assert plan.unfinished == 2
    first = plan.take()
    assert first is not None and graph.ids[first] == "b"
