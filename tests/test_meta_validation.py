"""MetaDAG refuses bad node specs early, in the words of nodes.

Spec fields are checked by ``add_node`` (before anything runs, naming the
node and the task); node dependencies and MetaDAGs nested inside themselves
by ``execute()`` before it first awaits. What 0.3.0 accepted and what works
is still accepted.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Sequence
from typing import Any
from unittest.mock import AsyncMock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import Recorder
from wave_executor import WaveCircularDependencyError
from wave_executor._core.graph import build_graph
from wave_executor._core.meta_validation import check_nesting
from wave_executor._runtime.node_runners import DagNodeRunner
from wave_executor.errors import GraphError, UnknownDependencyError
from wave_executor.meta import MetaDAG, MetaDAGNodeSpec, MetaDAGResult, NodeOutcome
from wave_executor.reconciler import RestartPolicy
from wave_executor.testing import run_virtual


async def echo(task_id: Any, spec: Any) -> Any:
    return task_id


def node(node_id: str, tasks: Any = None, body: Any = echo, **kw: Any) -> MetaDAGNodeSpec:
    return MetaDAGNodeSpec(node_id, {"t": {}} if tasks is None else tasks, body, **kw)


def rec(node_id: str = "r", tasks: Any = None, **kw: Any) -> MetaDAGNodeSpec:
    return node(node_id, tasks, node_type="reconciler", **kw)


def first_step(run: Coroutine[Any, Any, MetaDAGResult]) -> None:
    """Run ``execute()`` up to its first await, outside any event loop.

    The graph checks raise there, before anything is scheduled. (Code that
    went on would need a running loop and fail with a RuntimeError instead
    of the error the test expects; a MetaDAG nested in itself would
    otherwise run forever.)
    """
    try:
        run.send(None)
    finally:
        run.close()


# -- A: spec fields, at add_node ------------------------------------------------------


@pytest.mark.parametrize("kind", ["dag", "reconciler"])
def test_tasks_must_be_a_mapping(kind: str) -> None:
    with pytest.raises(TypeError, match=r"node 'n': tasks must be a mapping.*got list"):
        MetaDAG().add_node(node("n", ["a", "b"], node_type=kind))


@pytest.mark.parametrize("kind", ["dag", "reconciler"])
def test_task_dependencies_must_be_a_mapping(kind: str) -> None:
    spec = node("n", {"a": {}, "b": {}}, node_type=kind, task_dependencies=[("b", "a")])
    with pytest.raises(TypeError, match=r"node 'n': task_dependencies must be a mapping"):
        MetaDAG().add_node(spec)


@pytest.mark.parametrize("kind", ["dag", "reconciler"])
def test_task_dependencies_naming_an_unknown_task(kind: str) -> None:
    tasks: dict[str, Any] = {"a": {}, "b": {}}
    spec = node("n", tasks, node_type=kind, task_dependencies={"b": ["a", "x"]})
    with pytest.raises(UnknownDependencyError) as info:
        MetaDAG().add_node(spec)
    assert str(info.value) == "node 'n': task 'b' depends on 'x', which is not defined in tasks"
    assert (info.value.task_id, info.value.missing) == ("b", "x")

    keyed = node("n", tasks, node_type=kind, task_dependencies={"ghost": ["a"]})
    with pytest.raises(ValueError, match=r"node 'n': dependencies are given for task 'ghost'"):
        MetaDAG().add_node(keyed)


@pytest.mark.parametrize("kind", ["dag", "reconciler"])
def test_a_bare_string_dependency_is_rejected_as_dag_executor_rejects_it(kind: str) -> None:
    """{"b": "a"} would be the ids "a" (or "f", "o", "o" for "foo"): rejected, as
    DAGExecutor.execute and WaveReconciler.update reject it."""
    spec = node("n", {"a": {}, "b": {}}, node_type=kind, task_dependencies={"b": "a"})
    with pytest.raises(TypeError, match=r"node 'n': dependencies of task 'b' .* not a str"):
        MetaDAG().add_node(spec)


@pytest.mark.parametrize("kind", ["dag", "reconciler"])
def test_cyclic_task_dependencies(kind: str) -> None:
    deps = {"a": ["c"], "b": ["a"], "c": ["b"], "d": ["c"]}
    spec = node("n", {key: {} for key in "abcd"}, node_type=kind, task_dependencies=deps)
    with pytest.raises(WaveCircularDependencyError, match=r"^node 'n': Circular") as info:
        MetaDAG().add_node(spec)
    assert info.value.cycle_members == {"a", "b", "c"}
    self_loop = node("n", {"a": {}}, node_type=kind, task_dependencies={"a": ["a"]})
    with pytest.raises(WaveCircularDependencyError, match="node 'n'"):
        MetaDAG().add_node(self_loop)


async def test_bad_specs_are_refused_before_other_nodes_run() -> None:
    """0.3.0 and our earlier code ran "first" and only then failed "bad" at run time."""
    ran: list[Any] = []

    async def body(task_id: Any, spec: Any) -> Any:
        ran.append(task_id)

    meta = MetaDAG().add_node(node("first", {"x": {}}, body))
    bad = node("bad", {"a": {}, "b": {}}, body, task_dependencies={"b": "a"})
    with pytest.raises(TypeError, match="node 'bad'"):
        meta.add_node(bad, depends_on=["first"])
    assert "bad" not in meta.nodes
    await meta.execute()
    assert ran == ["x"]


def test_reconciler_policies_are_checked() -> None:
    tasks: dict[str, Any] = {"x": {}, "y": {}}
    with pytest.raises(ValueError, match=r"node 'r': unknown restart policy 'sometimes'"):
        MetaDAG().add_node(rec(tasks=tasks, policies="sometimes"))
    with pytest.raises(ValueError, match=r"node 'r': unknown restart policy 'nope' for task 'y'"):
        MetaDAG().add_node(rec(tasks=tasks, policies={"x": "no", "y": "nope"}))
    with pytest.raises(ValueError, match=r"node 'r': policies given for task 'ghost'"):
        MetaDAG().add_node(rec(tasks=tasks, policies={"ghost": "no"}))
    with pytest.raises(ValueError, match=r"unknown restart policy 3"):
        MetaDAG().add_node(rec(tasks=tasks, policies=3))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("completion_timeout", 0),
        ("completion_timeout", -1.0),
        ("completion_timeout", math.nan),
        ("completion_timeout", None),
        ("completion_timeout", "300"),
        ("completion_poll_interval", 0.0),
        ("completion_poll_interval", -0.1),
        ("completion_poll_interval", True),
    ],
)
def test_reconciler_timeouts_must_be_positive(field: str, value: Any) -> None:
    """A poll interval of 0 made the node poll in a busy loop; a completion
    timeout of 0 timed the node out before its tasks could run."""
    with pytest.raises(ValueError, match=rf"node 'r': {field} must be a number of seconds > 0"):
        MetaDAG().add_node(rec(**{field: value}))


def test_meta_node_needs_an_executable_meta_and_takes_no_tasks() -> None:
    with pytest.raises(TypeError, match=r"node 'm': meta must be a MetaDAG"):
        MetaDAG().add_node(MetaDAGNodeSpec("m", node_type="meta", meta=object()))  # type: ignore[arg-type]
    inner = MetaDAG().add_node(node("leaf"))
    with pytest.raises(ValueError, match=r"node 'm': a 'meta' node .* has no tasks"):
        MetaDAG().add_node(MetaDAGNodeSpec("m", {"t": {}}, node_type="meta", meta=inner))
    spec = MetaDAGNodeSpec("m", node_type="meta", meta=inner, task_dependencies={"a": ["b"]})
    with pytest.raises(ValueError, match=r"has no task_dependencies"):
        MetaDAG().add_node(spec)


async def _work(prefix: str, task_id: Any, spec: Any) -> Any:
    return f"{prefix}{task_id}"


class AsyncCall:
    async def __call__(self, task_id: Any, spec: Any) -> Any:
        return f"call-{task_id}"


class AsyncMethods:
    async def run(self, task_id: Any, spec: Any) -> Any:
        return f"method-{task_id}"


def returns_awaitable(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    def wrapper(task_id: Any, spec: Any) -> Awaitable[Any]:  # a sync decorator
        return fn(task_id, spec)

    return wrapper


@returns_awaitable
async def decorated(task_id: Any, spec: Any) -> Any:
    return f"decorated-{task_id}"


def lambda_free_sync(task_id: Any, spec: Any) -> Awaitable[Any]:
    return _work("s-", task_id, spec)


ASYNC_EXECUTORS: dict[str, tuple[Any, Any]] = {
    "partial of async def": (functools.partial(_work, "p-"), "p-t"),
    "partial of partial": (functools.partial(functools.partial(_work), "pp-"), "pp-t"),
    "instance with async __call__": (AsyncCall(), "call-t"),
    "bound async method": (AsyncMethods().run, "method-t"),
    "lambda returning a coroutine": (lambda task_id, spec: _work("l-", task_id, spec), "l-t"),
    "sync wrapper of an async def": (decorated, "decorated-t"),
    "AsyncMock": (AsyncMock(return_value="mocked"), "mocked"),
    # 0.3.0 awaited whatever the executor returned: a plain def that returns a
    # coroutine worked there, so it is accepted here.
    "plain def returning a coroutine": (lambda_free_sync, "s-t"),
}


@pytest.mark.parametrize("name", list(ASYNC_EXECUTORS))
async def test_callables_returning_awaitables_are_still_accepted_and_run(name: str) -> None:
    executor, expected = ASYNC_EXECUTORS[name]
    meta = MetaDAG().add_node(node("d", body=executor))
    meta.add_node(node("r", body=executor, node_type="reconciler"))
    two = node("two", {"t": {}, "u": {}}, body=executor, task_dependencies={"u": ["t"]})
    meta.add_node(two)
    result = await meta.execute()
    assert result.succeeded, {n: r.error for n, r in result.node_results.items()}
    assert result.node_results["d"].task_outputs == {"t": expected}
    assert result.node_results["r"].task_outputs == {"t": expected}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_restart_attempts": -1}, r"max_restart_attempts must be an int >= 0, got -1"),
        ({"max_restart_attempts": {"y": 2.5}}, r"max_restart_attempts for task 'y' must be"),
        ({"max_restart_attempts": {"ghost": 1}}, r"max_restart_attempts given for task 'ghost'"),
        ({"restart_backoff_base": "fast"}, r"restart_backoff_base must be a number >= 0"),
        ({"timeouts": 0}, r"timeout must be > 0 seconds or None, got 0"),
        ({"timeouts": {"x": -5.0}}, r"timeout for task 'x' must be > 0 seconds"),
    ],
)
def test_reconciler_restart_settings_are_checked_as_the_reconciler_checks_them(
    settings: dict[str, Any], message: str
) -> None:
    """They used to fail only when the node ran, after the nodes before it."""
    with pytest.raises(ValueError, match=rf"^node 'r': {message}"):
        MetaDAG().add_node(rec(tasks={"x": {}, "y": {}}, **settings))


def test_what_0_3_0_accepted_still_runs() -> None:
    """Dependency values of every usual shape, policies in every accepted form,
    an infinite completion timeout and no fallback poll at all."""
    order: list[Any] = []

    async def body(task_id: Any, spec: Any) -> Any:
        await asyncio.sleep(1)
        order.append(task_id)
        return task_id

    tasks: dict[str, Any] = {key: {} for key in "abcdefx"}
    deps: dict[Any, Any] = {
        "f": (t for t in ["e"]),  # a generator: must not be used up by the checks
        "a": None,
        "b": ("a",),
        "c": {"a", "b"},
        "d": {"c": None}.keys(),
        "e": ["d", "d"],
        "x": "",
    }
    meta = MetaDAG().add_node(node("dag", tasks, body, task_dependencies=deps))
    rec_tasks: dict[str, Any] = {"x": {}, "y": {}}
    for i, policies in enumerate(["no", RestartPolicy.NO, {"x": "on-failure"}, None]):
        meta.add_node(
            rec(f"r{i}", rec_tasks, policies=policies, completion_timeout=math.inf),
            depends_on="dag",
        )
    meta.add_node(rec("r_int", rec_tasks, completion_timeout=5, completion_poll_interval=None))
    meta.add_node(node("empty", {}))
    result, _ = run_virtual(meta.execute())
    assert result.succeeded, {n: r.error for n, r in result.node_results.items()}
    chain = [t for t in order if t in "abcdef"]
    assert chain == ["a", "b", "c", "d", "e", "f"]


async def test_kinds_of_your_own_get_node_level_checks_only() -> None:
    class Raw:
        async def run(self, spec: MetaDAGNodeSpec, upstream_outputs: dict[Any, Any]) -> NodeOutcome:
            return NodeOutcome("success", {"seen": (spec.tasks, spec.completion_timeout)})

    meta = MetaDAG(inject_dep_outputs=False).register_node_type("raw", Raw())
    weird = MetaDAGNodeSpec(
        "w",
        ["a", "b"],  # type: ignore[arg-type]
        lambda_free_sync,
        node_type="raw",
        task_dependencies={"b": "a"},
    )
    meta.add_node(weird)
    meta.add_node(MetaDAGNodeSpec("z", node_type="raw", completion_timeout=0))
    with pytest.raises(ValueError, match="already defined"):
        meta.add_node(MetaDAGNodeSpec("z", node_type="raw"))
    result = await meta.execute()
    assert result.node_results["w"].task_outputs == {"seen": (["a", "b"], 300.0)}
    # A MetaDAG that injects upstream outputs copies every node's task specs.
    injecting = MetaDAG().register_node_type("raw", Raw())
    with pytest.raises(TypeError, match=r"node 'w': tasks must be a mapping"):
        injecting.add_node(weird)


class OwnRun(DagNodeRunner):
    """The built-in runner under another type."""


def test_a_built_in_kind_replaced_by_your_own_runner_is_yours() -> None:
    class Lenient:
        async def run(self, spec: MetaDAGNodeSpec, upstream_outputs: dict[Any, Any]) -> NodeOutcome:
            return NodeOutcome("success")

    meta = MetaDAG(inject_dep_outputs=False).register_node_type("dag", Lenient())
    meta.add_node(MetaDAGNodeSpec("n", ["not", "a", "mapping"], None))  # type: ignore[arg-type]
    meta.add_node(MetaDAGNodeSpec("s", {"t": {}}, lambda_free_sync, task_dependencies={"t": "t"}))
    # A subclass of the built-in runner still runs on the built-in fields.
    own = MetaDAG().register_node_type("dag", OwnRun())
    with pytest.raises(TypeError, match="tasks must be a mapping"):
        own.add_node(MetaDAGNodeSpec("n", ["x"], echo))  # type: ignore[arg-type]


# -- B: node dependencies, worded about nodes, at execute -------------------------------


def test_an_unknown_upstream_node_is_named_as_a_node() -> None:
    events = Recorder()
    meta = MetaDAG().add_node(node("a")).add_node(node("x"), depends_on=["a", "ghost"])
    meta.on_event(events)
    with pytest.raises(UnknownDependencyError) as info:
        first_step(meta.execute())
    assert str(info.value) == (
        "node 'x' depends on 'ghost', which is not defined as a node of this MetaDAG"
    )
    assert (info.value.task_id, info.value.missing) == ("x", "ghost")
    assert isinstance(info.value, ValueError)
    assert events.events == []  # not even META_EXECUTION_STARTED


def test_a_cycle_among_nodes_is_named_as_nodes() -> None:
    meta = (
        MetaDAG()
        .add_node(node("a"), depends_on=["c"])
        .add_node(node("b"), depends_on=["a"])
        .add_node(node("c"), depends_on=["b"])
        .add_node(node("after"), depends_on=["c"])
    )
    with pytest.raises(WaveCircularDependencyError) as info:
        first_step(meta.execute())
    assert info.value.cycle_members == {"a", "b", "c"}
    message = str(info.value)
    assert message.startswith("MetaDAG nodes depend on each other in a cycle: ")
    assert "'a' -> 'b' -> 'c' -> 'a'" in message or "'c' -> 'a' -> 'b' -> 'c'" in message
    assert "task" not in message

    alone = MetaDAG().add_node(node("me"), depends_on="me")
    with pytest.raises(WaveCircularDependencyError, match="nodes: 'me'"):
        first_step(alone.execute())


class Nop:
    async def run(self, spec: MetaDAGNodeSpec, upstream_outputs: dict[Any, Any]) -> NodeOutcome:
        return NodeOutcome("success")


@settings(max_examples=150, deadline=None)
@given(
    edges=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), max_size=14),
    order=st.permutations(range(8)),
)
def test_node_cycles_are_found_whatever_the_order_nodes_were_added_in(
    edges: list[tuple[int, int]], order: list[int]
) -> None:
    """The early check (cycles need an edge to a node added later) agrees with the
    graph compiler on random graphs added in random orders."""
    deps: dict[int, list[int]] = {n: [] for n in range(8)}
    for downstream, upstream in edges:
        deps[downstream].append(upstream)
    meta = MetaDAG().register_node_type("nop", Nop())
    for n in order:
        meta.add_node(MetaDAGNodeSpec(n, node_type="nop"), depends_on=deps[n])
    members: set[Hashable] | None = None
    try:
        build_graph(range(8), deps)
    except WaveCircularDependencyError as expected:
        members = expected.cycle_members
    if members is None:
        result, _ = run_virtual(meta.execute())
        assert result.succeeded
    else:
        with pytest.raises(WaveCircularDependencyError, match="MetaDAG nodes") as info:
            first_step(meta.execute())
        assert info.value.cycle_members == members


@settings(max_examples=150, deadline=None)
@given(
    edges=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), max_size=14),
    order=st.permutations(range(8)),
)
def test_task_cycles_are_found_whatever_the_order_of_tasks(
    edges: list[tuple[int, int]], order: list[int]
) -> None:
    deps: dict[int, list[int]] = {}
    for downstream, upstream in edges:
        deps.setdefault(downstream, []).append(upstream)
    tasks: dict[int, Any] = {t: {} for t in order}
    members: set[Hashable] | None = None
    try:
        build_graph(tasks, deps)
    except WaveCircularDependencyError as expected:
        members = expected.cycle_members
    spec = node("n", tasks, task_dependencies=deps)
    if members is None:
        MetaDAG().add_node(spec)
    else:
        with pytest.raises(WaveCircularDependencyError, match=r"^node 'n': ") as info:
            MetaDAG().add_node(spec)
        assert info.value.cycle_members == members


async def test_nodes_may_name_upstreams_added_later() -> None:
    meta = MetaDAG().add_node(node("late"), depends_on=["early"]).add_node(node("early"))
    result = await meta.execute()
    assert result.succeeded


# -- C: a MetaDAG nested inside itself --------------------------------------------------


def meta_node(node_id: str, inner: Any) -> MetaDAGNodeSpec:
    return MetaDAGNodeSpec(node_id, node_type="meta", meta=inner)


def test_a_metadag_nested_directly_inside_itself() -> None:
    meta = MetaDAG().add_node(node("work"))
    meta.add_node(meta_node("self", meta))
    with pytest.raises(GraphError, match=r"nested inside itself: node path 'self'; "):
        first_step(meta.execute())


def test_a_metadag_nested_inside_itself_through_others() -> None:
    a, b, c = MetaDAG(), MetaDAG(), MetaDAG()
    a.add_node(node("work")).add_node(meta_node("to_b", b))
    b.add_node(meta_node("to_c", c))
    c.add_node(meta_node("back_to_b", b))
    with pytest.raises(GraphError) as info:
        first_step(a.execute())
    assert isinstance(info.value, ValueError)
    assert str(info.value) == (
        "MetaDAG nested inside itself: node path 'to_b' -> 'to_c' -> 'back_to_b'; "
        "node 'back_to_b' runs the MetaDAG that holds node 'to_c', which would recurse forever"
    )
    with pytest.raises(GraphError, match=r"node path 'to_c' -> 'back_to_b'; "):
        first_step(b.execute())


async def test_the_same_metadag_in_several_branches_is_fine() -> None:
    shared = MetaDAG().add_node(node("leaf"))
    wrapper = MetaDAG().add_node(meta_node("deeper", shared))
    top = (
        MetaDAG()
        .add_node(meta_node("one", shared))
        .add_node(meta_node("two", shared), depends_on=["one"])
        .add_node(meta_node("three", wrapper), depends_on=["two"])
    )
    result = await top.execute()
    assert result.succeeded
    assert result.node_results["three"].task_outputs == {"deeper": {"leaf": {"t": "t"}}}


async def test_nested_objects_that_are_not_metadags_are_not_walked() -> None:
    class Stub:
        """Any object with an async execute() is a nested graph to the "meta" runner."""

        def __init__(self, result: MetaDAGResult) -> None:
            self.result = result

        async def execute(self, **_: Any) -> MetaDAGResult:
            return self.result

    empty = await MetaDAG().execute()
    result = await MetaDAG().add_node(meta_node("stub", Stub(empty))).execute()
    assert result.succeeded


def test_check_nesting_walks_each_graph_once() -> None:
    """Pure: a diamond of depth 20 has 2**20 paths but only 40 graphs to walk."""
    children: dict[int, list[tuple[Hashable, object]]] = {20: []}
    for level in range(19, -1, -1):
        children[level] = [("left", level + 1), ("right", level + 1)]
    calls: list[int] = []

    def nested_of(graph: object) -> Sequence[tuple[Hashable, object]]:
        assert isinstance(graph, int)
        calls.append(graph)
        return children[graph]

    check_nesting(0, nested_of)
    assert sorted(calls) == list(range(21))

    children[20] = [("loop", 18)]
    with pytest.raises(GraphError, match=r"'left' -> 'left' -> 'loop'; node 'loop' runs"):
        check_nesting(0, nested_of)
