"""``build_graph`` against a plain definition of every array it builds.

``reference`` below says, as directly as Python allows, what each field of
a ``Graph`` means and which error each bad input gets; ``build_graph`` is
the optimised version and must agree with it on every input, field by
field (including the order of each task's successors, which decides the
dispatch order among equal priorities) and message by message.
"""

from __future__ import annotations

import itertools
import math
from array import array
from collections.abc import Hashable, Iterable, Mapping
from graphlib import TopologicalSorter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wave_executor._core.graph import Graph, build_graph
from wave_executor.errors import UnknownDependencyError, WaveCircularDependencyError

Fields = tuple[list[Any], list[tuple[Any, int]], list[int], list[int], list[int], list[int]]


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _check(
    tasks: Iterable[Any],
    dependencies: Mapping[Any, Any] | None,
    costs: Mapping[Any, Any] | None,
) -> tuple[list[Any], dict[Any, int], list[tuple[int, int]], list[float] | None]:
    """Ids, index, edges (upstream, downstream) in the order given, and costs; or raise."""
    ids = list(tasks)
    bad_ids = [t for t in ids if not _hashable(t)]
    if bad_ids:
        raise TypeError(f"task ids must be hashable, got {bad_ids[0]!r}")
    if len(set(ids)) != len(ids):
        raise ValueError("task ids must be unique")
    index = {t: i for i, t in enumerate(ids)}
    edges = []
    for task_id, deps in (dependencies or {}).items():
        if task_id not in index:
            raise UnknownDependencyError(task_id, task_id, role="key")
        if not deps:
            continue
        if isinstance(deps, str | bytes):
            raise TypeError(
                f"dependencies of {task_id!r} must be a collection of task ids, "
                f"not a {type(deps).__name__} ({deps!r}); write {{{deps!r}}}"
            )
        if not isinstance(deps, Iterable):
            raise TypeError(
                f"dependencies of {task_id!r} must be a collection of task ids, got {deps!r}"
            )
        for dep in deps:
            if not _hashable(dep):
                raise TypeError(
                    f"dependencies of {task_id!r} name {dep!r}, which cannot be a task id"
                )
            if dep not in index:
                raise UnknownDependencyError(task_id, dep)
            edges.append((index[dep], index[task_id]))
    if costs is None:
        return ids, index, edges, None
    for task_id, value in costs.items():
        if task_id not in index:
            raise UnknownDependencyError(task_id, task_id, role="cost")
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ValueError(f"cost of task {task_id!r} must be a number >= 0, got {value!r}")
    given = [float(value) for value in costs.values()]
    mean = sum(given) / len(given) if given else 1.0
    return ids, index, edges, [float(costs.get(t, mean)) for t in ids]


def reference(
    tasks: Iterable[Any],
    dependencies: Mapping[Any, Any] | None,
    costs: Mapping[Any, Any] | None = None,
) -> Fields:
    """What ``build_graph`` computes, by definition."""
    ids, index, edges, cost = _check(tasks, dependencies, costs)
    n = len(ids)
    # Successors of u: the tasks that name u, in the order the edges were given.
    successors = [[t for s, t in edges if s == u] for u in range(n)]
    on_cycle = [u for u in range(n) if u in _reachable(successors, successors[u])]
    if on_cycle:
        raise WaveCircularDependencyError({ids[u] for u in on_cycle})
    # Upward rank: cost of the task plus the largest rank among its successors.
    rank: list[float] = [0.0] * n
    order = TopologicalSorter({u: successors[u] for u in range(n)}).static_order()
    for u in order:  # successors come first
        above = max((rank[s] for s in successors[u]), default=0)
        rank[u] = above + (1 if cost is None else cost[u])
    if cost is None:
        priority = [int(max(rank) - r) for r in rank]
    else:
        places = sorted(set(rank), reverse=True)
        priority = [places.index(r) for r in rank]
    offsets = [0]
    for succ in successors:
        offsets.append(offsets[-1] + len(succ))
    return (
        ids,
        list(index.items()),
        offsets,
        [t for succ in successors for t in succ],
        [sum(1 for _, t in edges if t == u) for u in range(n)],
        priority,
    )


def _reachable(successors: list[list[int]], start: list[int]) -> set[int]:
    seen: set[int] = set()
    stack = list(start)
    while stack:
        u = stack.pop()
        if u not in seen:
            seen.add(u)
            stack.extend(successors[u])
    return seen


def fields(graph: Graph) -> Fields:
    arrays = (graph.offsets, graph.successors, graph.indegree, graph.priority)
    assert all(isinstance(a, array) and a.typecode == "q" for a in arrays)
    return (
        graph.ids,
        list(graph.index.items()),
        *(a.tolist() for a in arrays),
    )  # type: ignore[return-value]


def outcome(build: Any, *args: Any) -> tuple[Any, ...]:
    try:
        result = build(*args)
    except WaveCircularDependencyError as error:
        return (WaveCircularDependencyError, error.cycle_members)
    except (TypeError, ValueError) as error:
        return (type(error), str(error))
    return ("graph", fields(result) if isinstance(result, Graph) else result)


# -- generated inputs -----------------------------------------------------------------------

ID = st.one_of(st.integers(0, 40), st.text("abcxyz", min_size=1, max_size=3))


@st.composite
def graphs(draw: st.DrawFn, *, acyclic: bool | None = None) -> tuple[Any, ...]:
    """Small graphs: any container, duplicates, empty and self dependencies, any key order."""
    ids = draw(st.lists(ID, max_size=12, unique=True))
    backwards = draw(st.booleans()) if acyclic is None else not acyclic
    deps: dict[Any, Any] = {}
    for key in draw(st.permutations(ids)).copy()[: draw(st.integers(0, len(ids)))]:
        at = ids.index(key)
        pool = ids if backwards else ids[:at]
        chosen = draw(st.lists(st.sampled_from(pool), max_size=5)) if pool else []
        container = draw(st.sampled_from([list, list, tuple, set, frozenset]))
        deps[key] = container(chosen)
    costs = draw(
        st.one_of(
            st.none(),
            st.just({}),
            st.dictionaries(
                st.sampled_from(ids) if ids else st.nothing(),
                st.sampled_from([0, 0.0, 1, 1.0, 2.5, 3, 1e-9, math.inf]),
            ),
        )
    )
    keep_empty = draw(st.booleans())
    return ids, deps if deps or keep_empty else None, costs


SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(graphs(acyclic=True))
def test_acyclic_graphs_match_the_definition(case: tuple[Any, ...]) -> None:
    ids, deps, costs = case
    assert outcome(build_graph, ids, deps, costs) == ("graph", reference(ids, deps, costs))


@SETTINGS
@given(graphs())
def test_any_graph_matches_the_definition(case: tuple[Any, ...]) -> None:
    ids, deps, costs = case
    assert outcome(build_graph, ids, deps, costs) == outcome(reference, ids, deps, costs)
    try:
        build_graph(ids, deps, costs)
    except WaveCircularDependencyError as error:  # the path shown is a cycle
        assert_is_a_cycle(error, deps or {})


def assert_is_a_cycle(error: WaveCircularDependencyError, deps: Mapping[Any, Any]) -> None:
    cycle = error.cycle
    assert len(cycle) >= 2 and cycle[0] == cycle[-1]
    assert set(cycle) <= error.cycle_members
    for upstream, downstream in itertools.pairwise(cycle):
        assert upstream in deps[downstream]
    assert str(error).startswith(f"Circular dependency detected: {' -> '.join(map(str, cycle))} ")


@SETTINGS
@given(graphs(), st.data())
def test_a_bad_input_gets_the_same_error_as_the_definition(
    case: tuple[Any, ...], data: st.DataObject
) -> None:
    ids, deps, costs = case
    deps = dict(deps or {})
    costs = dict(costs) if costs is not None else None
    fault = data.draw(
        st.sampled_from(
            [
                "unknown key",
                "unknown dependency",
                "str",
                "bytes",
                "not iterable",
                "unhashable dependency",
                "unhashable id",
                "repeated id",
                "unknown cost",
                "negative cost",
                "nan cost",
                "bool cost",
                "str cost",
            ]
        )
    )
    target = data.draw(st.sampled_from(ids)) if ids else "lone"
    ids = ids or ["lone"]
    items = [(key, value) for key, value in deps.items() if key != target]
    anywhere = data.draw(st.integers(0, len(items)))
    if fault == "unknown key":
        items.insert(anywhere, ("ghost-key", []))
    elif fault == "unknown dependency":
        items.insert(anywhere, (target, [*ids[:1], "ghost"]))
    elif fault in ("str", "bytes"):
        items.insert(anywhere, (target, "abc" if fault == "str" else b"abc"))
    elif fault == "not iterable":
        items.insert(anywhere, (target, 42))
    elif fault == "unhashable dependency":
        items.insert(anywhere, (target, [ids[0], ["x"]]))
    elif fault == "unhashable id":
        ids = [*ids, ["x"]]
    elif fault == "repeated id":
        ids = [*ids, ids[0]]
    else:
        value = {"negative cost": -1.0, "nan cost": math.nan, "bool cost": True}.get(fault, "1")
        costs = dict(costs or {})
        costs["ghost" if fault == "unknown cost" else target] = value
    bad = dict(items)
    expected = outcome(reference, ids, bad, costs)
    assert expected[0] != "graph"
    assert outcome(build_graph, ids, bad, costs) == expected


# -- larger graphs in every order -----------------------------------------------------------


def layered(n: int, seed: int) -> dict[str, list[str]]:
    import random

    rng = random.Random(seed)
    deps: dict[str, list[str]] = {}
    for i in range(8, n):
        picked = rng.sample(range(max(0, i - 20), i), rng.randint(0, 4))
        deps[f"t{i}"] = [f"t{j}" for j in picked + picked[:1]]  # one duplicate
    return deps


@pytest.mark.parametrize("order", ["given", "reversed", "shuffled"])
@pytest.mark.parametrize("with_costs", [False, True])
def test_larger_graphs_match_the_definition_in_any_order(order: str, with_costs: bool) -> None:
    import random

    n = 400
    ids = [f"t{i}" for i in range(n)]
    items = list(layered(n, 1).items())
    if order == "reversed":
        items.reverse()
    elif order == "shuffled":
        random.Random(2).shuffle(items)
    deps = dict(items)
    costs = {t: float(i % 5) for i, t in enumerate(ids) if i % 3} if with_costs else None
    assert fields(build_graph(ids, deps, costs)) == reference(ids, deps, costs)


# -- exact messages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tasks", "deps", "message"),
    [
        (["a", "b"], {"a": ["b"], "b": ["a"]}, "b -> a -> b (tasks on cycles: a, b)"),
        (["a", "b", "c", "d"], {"b": ["a", "c"], "c": ["b"], "d": ["c"]}, "c -> b -> c"),
        (
            ["a", "b", "c"],
            {"c": ["a"], "a": ["c", "b"], "b": ["b"]},
            "c -> a -> c (tasks on cycles: a, b, c)",
        ),
        (["x", "y", "z", "w"], {"w": ["z"], "z": ["y"], "y": ["x", "w"]}, "w -> y -> z -> w"),
        (["a"], {"a": ["a"]}, "a -> a (tasks on cycles: a)"),
    ],
)
def test_a_cycle_is_named_as_one_path_from_upstream_to_downstream(
    tasks: list[str], deps: dict[Any, list[str]], message: str
) -> None:
    with pytest.raises(WaveCircularDependencyError) as info:
        build_graph(tasks, deps)
    assert str(info.value) == f"Circular dependency detected: {message}" or str(
        info.value
    ).startswith(f"Circular dependency detected: {message} ")
    assert_is_a_cycle(info.value, deps)


def test_the_first_bad_input_in_dependency_order_is_reported_and_costs_come_after() -> None:
    with pytest.raises(UnknownDependencyError, match="'b' depends on 'q'"):
        build_graph(["a", "b"], {"b": ["q"], "zz": ["a"]}, {"nope": 1.0})
    with pytest.raises(UnknownDependencyError, match="given for task 'zz'"):
        build_graph(["a", "b"], {"zz": ["a"], "b": ["q"]})
    with pytest.raises(ValueError, match="cost of task 'a' must be"):  # before the cycle
        build_graph(["a", "b"], {"b": ["a"], "a": ["b"]}, {"a": -1.0})
    with pytest.raises(TypeError, match=r"name \['x'\], which cannot be a task id"):
        build_graph(["a", "b"], {"b": ["a", ["x"]]})
    with pytest.raises(UnknownDependencyError, match="depends on 'zz'"):
        build_graph(["a", "b"], {"b": ["zz", ["x"]]})


def test_dependencies_given_as_other_iterables_are_accepted() -> None:
    def named(*deps: str) -> Iterable[str]:
        return (d for d in deps)

    deps: dict[str, Any] = {"b": named("a"), "c": dict.fromkeys(["a", "b"]).keys(), "d": None}
    graph = build_graph(["a", "b", "c", "d"], deps)
    assert fields(graph) == reference(
        ["a", "b", "c", "d"], {"b": ["a"], "c": ["a", "b"], "d": None}
    )


def test_hashable_helper_agrees_with_the_abc_for_plain_values() -> None:
    assert _hashable("a") and not _hashable(["a"]) and isinstance("a", Hashable)
