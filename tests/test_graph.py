from __future__ import annotations

import pytest

from wave_executor._core.graph import build_graph
from wave_executor._core.plan import Plan
from wave_executor.errors import GraphError, UnknownDependencyError, WaveCircularDependencyError


def drain(tasks: list[str], deps: dict[str, set[str]]) -> list[object]:
    """Order in which a cap-1 scheduler would run the graph."""
    graph = build_graph(tasks, deps)
    plan = Plan(graph)
    order: list[object] = []
    while (i := plan.take()) is not None:
        order.append(graph.ids[i])
        plan.succeed(i)
    return order


def test_unknown_dependency_is_a_value_error_naming_both_tasks() -> None:
    with pytest.raises(ValueError, match="not defined in tasks") as info:
        build_graph(["a"], {"a": {"ghost"}})
    assert isinstance(info.value, UnknownDependencyError)
    assert "'a'" in str(info.value) and "'ghost'" in str(info.value)


def test_dependencies_for_an_unknown_task_are_rejected() -> None:
    with pytest.raises(UnknownDependencyError, match="not defined in tasks"):
        build_graph(["a"], {"typo": {"a"}})


def test_graphs_without_edges_take_the_short_path_and_still_check_keys() -> None:
    with pytest.raises(UnknownDependencyError, match="not defined in tasks"):
        build_graph(["a"], {"typo": set()})
    short = build_graph(["a", "b", "c"], {"a": set(), "b": []})
    general = build_graph(["a", "b", "c"], {"c": {"a"}})
    assert list(short.offsets) == [0, 0, 0, 0] and list(short.successors) == []
    assert list(short.indegree) == [0, 0, 0] and list(short.priority) == [0, 0, 0]
    assert list(general.indegree) == [0, 0, 1]
    assert drain(["a", "b", "c"], {}) == ["a", "b", "c"]  # insertion order among equals


def test_a_string_of_dependencies_is_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match="collection of task ids"):
        build_graph(["a", "b"], {"b": "a"})


def test_cycle_members_exclude_tasks_downstream_of_the_cycle() -> None:
    deps = {"a": {"c"}, "b": {"a"}, "c": {"b"}, "d": {"c"}, "e": {"d"}}
    with pytest.raises(WaveCircularDependencyError) as info:
        build_graph(["a", "b", "c", "d", "e", "f"], deps)
    assert info.value.cycle_members == {"a", "b", "c"}
    cycle = info.value.cycle
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    assert " -> " in str(info.value)
    assert isinstance(info.value, GraphError) and isinstance(info.value, ValueError)


def test_self_loop_is_a_cycle() -> None:
    with pytest.raises(WaveCircularDependencyError) as info:
        build_graph(["a", "b"], {"a": {"a"}, "b": {"a"}})
    assert info.value.cycle_members == {"a"}
    assert info.value.cycle == ["a", "a"]


def test_two_separate_cycles_are_both_reported() -> None:
    deps = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}
    with pytest.raises(WaveCircularDependencyError) as info:
        build_graph(["a", "b", "c", "d"], deps)
    assert info.value.cycle_members == {"a", "b", "c", "d"}


def test_duplicate_dependencies_are_harmless() -> None:
    assert drain(["a", "b"], {"b": ["a", "a"]}) == ["a", "b"]  # type: ignore[dict-item]


def test_longest_remaining_chain_goes_first() -> None:
    # x1 -> x2 -> x3 is the long chain; y is alone. Both are ready at the start.
    order = drain(["y", "x1", "x2", "x3"], {"x2": {"x1"}, "x3": {"x2"}})
    assert order[0] == "x1"


def test_ties_keep_insertion_order() -> None:
    assert drain(["c", "a", "b"], {}) == ["c", "a", "b"]


def test_costs_change_the_priority() -> None:
    graph = build_graph(["short", "long"], {}, costs={"short": 1.0, "long": 50.0})
    plan = Plan(graph)
    first = plan.take()
    assert first is not None and graph.ids[first] == "long"


def test_costs_must_name_tasks_and_be_non_negative() -> None:
    with pytest.raises(UnknownDependencyError, match="priority cost"):
        build_graph(["a"], {}, costs={"zz": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        build_graph(["a"], {}, costs={"a": -1.0})
    with pytest.raises(ValueError, match=">= 0"):
        build_graph(["a"], {}, costs={"a": float("nan")})


def test_deep_chain_needs_no_recursion() -> None:
    n = 50_000
    ids = [f"t{i}" for i in range(n)]
    deps = {ids[i]: {ids[i - 1]} for i in range(1, n)}
    graph = build_graph(ids, deps)
    plan = Plan(graph)
    first = plan.take()
    assert first == 0
    skipped = plan.fail(first, __import__("wave_executor").TaskStatus.FAILED)
    assert len(skipped) == n - 1
    assert plan.done


def test_deep_cycle_is_found_without_recursion() -> None:
    n = 20_000
    ids = [f"t{i}" for i in range(n)]
    deps = {ids[i]: {ids[i - 1]} for i in range(n)}  # t0 depends on t{n-1}
    with pytest.raises(WaveCircularDependencyError) as info:
        build_graph(ids, deps)
    assert len(info.value.cycle_members) == n
