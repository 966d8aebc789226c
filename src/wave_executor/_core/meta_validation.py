"""Early checks of MetaDAG node specs and of the graph of nodes (pure, no asyncio).

Without them a bad spec surfaces deep inside a node's run, after other nodes
have already run (or not at all: a poll interval of 0 spins, a MetaDAG
nested inside itself recurses forever). ``MetaDAG.add_node`` checks what the
spec alone decides (``check_spec``); ``MetaDAG.execute`` checks what needs
the whole graph (``check_node_graph``, ``check_nesting``). Every error names
the node, and the task where one is at fault.

The rules are those of the layers that run the node (``DAGExecutor``,
``WaveReconciler``): what works there is not rejected here, and the
exception classes are theirs (``UnknownDependencyError``,
``WaveCircularDependencyError``, both ``ValueError``). Cost: one pass over
the nodes and their tasks.
"""

from __future__ import annotations

import numbers
from collections.abc import (
    Callable,
    Collection,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any

from wave_executor._core.checks import check_bool
from wave_executor._core.config import WaveConfig
from wave_executor._core.graph import build_graph
from wave_executor._core.meta_records import MetaDAGNodeSpec
from wave_executor._core.restart import RestartSettings
from wave_executor._core.restart_args import restart_args
from wave_executor.errors import GraphError, UnknownDependencyError, WaveCircularDependencyError

__all__ = [
    "check_nesting",
    "check_node_graph",
    "check_spec",
]


def _for_node(node_id: Hashable, exc: Exception) -> Exception:
    """``exc`` (same class, same attributes) with its message prefixed by the node."""
    exc.args = (f"node {node_id!r}: {exc.args[0] if exc.args else exc}",)
    return exc


# -- one spec (add_node) -----------------------------------------------------------


def check_spec(spec: MetaDAGNodeSpec, kind: str | None, *, inject: bool) -> None:
    """Check the fields a built-in kind runs on; raise TypeError/ValueError naming the node.

    ``kind`` is the built-in kind whose runner will run the node ("dag",
    "reconciler", "meta") or None for a kind of the user's own, whose fields
    mean whatever its runner makes of them: it is only held to what the
    MetaDAG itself does with every node (with ``inject``, it copies each
    task spec to add ``_upstream_outputs``, so ``tasks`` must be a mapping).
    """
    node_id = spec.node_id
    if kind in ("meta", "reconciler") and (spec.backend is not None or spec.backends is not None):
        raise ValueError(
            f'node {node_id!r}: backend and backends apply to "dag" nodes only '
            f"(a {kind!r} node's tasks run in the event loop)"
        )
    if spec.specialist is not None and not isinstance(spec.specialist, Hashable):
        raise TypeError(
            f"node {node_id!r}: specialist must be a group name (hashable), got {spec.specialist!r}"
        )
    if kind == "meta":
        _check_meta_node(spec)
        return
    tasks = spec.tasks
    mapping = type(tasks) is dict or isinstance(tasks, Mapping)  # (the ABC check is slow)
    if not mapping and (kind is not None or (inject and tasks)):
        raise TypeError(
            f"node {node_id!r}: tasks must be a mapping task id -> spec, got {type(tasks).__name__}"
        )
    if kind is None:
        return
    executor = spec.task_executor
    if not callable(executor):
        raise TypeError(
            f"node {node_id!r}: task_executor must be an async callable "
            f"(or one returning an awaitable), got {executor!r}"
        )
    config = spec.config
    if config is not None and not isinstance(config, WaveConfig):
        raise TypeError(f"node {node_id!r}: config must be a WaveConfig or None, got {config!r}")
    for name in ("inject_dep_outputs", "accept_partial"):
        try:
            check_bool(name, getattr(spec, name))
        except ValueError as exc:
            raise _for_node(node_id, exc) from None
    _check_task_graph(node_id, tasks, spec.task_dependencies, kind == "reconciler")
    if kind == "reconciler":
        _check_restart_settings(spec, tasks)
        _check_positive(node_id, "poll_interval_s", spec.poll_interval_s, none_ok=False)
        settings = spec.restart_settings
        if settings is not None and not isinstance(settings, RestartSettings):
            raise TypeError(
                f"node {node_id!r}: restart_settings must be a RestartSettings or None, "
                f"got {settings!r}"
            )
        _check_positive(node_id, "completion_timeout", spec.completion_timeout, none_ok=False)
        _check_positive(
            node_id, "completion_poll_interval", spec.completion_poll_interval, none_ok=True
        )


def _check_meta_node(spec: MetaDAGNodeSpec) -> None:
    """A "meta" node runs ``spec.meta``; tasks given to it would be ignored without a word."""
    node_id = spec.node_id
    if spec.meta is None:
        raise ValueError(f"node {node_id!r}: node_type 'meta' needs meta=MetaDAG(...)")
    if not callable(getattr(spec.meta, "execute", None)):
        raise TypeError(
            f"node {node_id!r}: meta must be a MetaDAG (an object with an async "
            f"execute() method), got {type(spec.meta).__name__}"
        )
    for name in ("tasks", "task_dependencies"):
        if getattr(spec, name):
            raise ValueError(
                f"node {node_id!r}: a 'meta' node runs its nested MetaDAG and has no {name} "
                f"of its own; put them in nodes of the nested MetaDAG"
            )


def _check_task_graph(
    node_id: Hashable, tasks: Mapping[Any, Any], dependencies: Any, reconciler: bool
) -> None:
    """Dependencies among the node's tasks, judged as the node's executor will judge them.

    A value given as a string is rejected as ``DAGExecutor`` rejects it (a
    string is a collection of characters, not one id). One-shot iterables
    (generators) are left to the run, since reading them here would use
    them up. A cycle is only possible when some task depends on a task that
    comes later in ``tasks``; only then are the tasks sorted (``_acyclic``),
    and only for a cycle is the graph compiled, to name it.
    """
    if not dependencies:
        return
    if not isinstance(dependencies, Mapping):
        raise TypeError(
            f"node {node_id!r}: task_dependencies must be a mapping task id -> upstream "
            f"task ids, got {type(dependencies).__name__}"
        )
    index = {task_id: i for i, task_id in enumerate(tasks)}
    checked: dict[Any, Collection[Any]] = {}
    forward = False
    for task_id, upstream in dependencies.items():
        position = index.get(task_id)
        if position is None:
            raise _for_node(node_id, UnknownDependencyError(task_id, task_id, role="key"))
        if isinstance(upstream, str | bytes) and upstream:
            raise TypeError(
                f"node {node_id!r}: dependencies of task {task_id!r} must be a collection "
                f"of task ids, not a {type(upstream).__name__} ({upstream!r}); "
                f"write [{upstream!r}]"
            )
        if not isinstance(upstream, Collection):
            if not upstream and not reconciler:
                continue  # DAGExecutor reads None (any falsy value) as no dependencies
            try:
                iter(upstream)
            except TypeError:
                raise TypeError(
                    f"node {node_id!r}: dependencies of task {task_id!r} must be a "
                    f"collection of task ids, got {upstream!r}"
                ) from None
            continue  # a one-shot iterable: the run checks it
        for up in upstream:
            up_position = index.get(up)
            if up_position is None:
                raise _for_node(node_id, UnknownDependencyError(task_id, up))
            if up_position >= position:
                forward = True
        checked[task_id] = upstream
    if forward and not _acyclic(tasks, checked):
        try:
            build_graph(tasks, checked)  # names the cycle and the tasks on cycles
        except WaveCircularDependencyError as exc:
            raise _for_node(node_id, exc) from None


def _check_restart_settings(spec: MetaDAGNodeSpec, tasks: Mapping[Any, Any]) -> None:
    """Policies, attempt limits, backoff bases and timeouts, as ``WaveReconciler.update``
    takes them (the same rules: ``restart_args``)."""
    try:
        restart_args(
            tasks, spec.policies, spec.max_restart_attempts, spec.restart_backoff_base,
            spec.timeouts,
        )  # fmt: skip
    except ValueError as exc:
        raise _for_node(spec.node_id, exc) from None


def _check_positive(node_id: Hashable, name: str, value: Any, *, none_ok: bool) -> None:
    """Seconds > 0 (inf allowed): 0 would time out at once or poll in a busy loop."""
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value) > 0:
        raise ValueError(f"node {node_id!r}: {name} must be a number of seconds > 0, got {value!r}")


# -- the whole graph (execute) -------------------------------------------------------


def check_node_graph(
    nodes: Collection[Hashable],
    dependencies: Mapping[Hashable, Iterable[Hashable]],
    forward: Iterable[tuple[Hashable, Hashable]],
) -> None:
    """Node dependencies, in the words of nodes (not of the tasks they run as).

    ``forward`` lists the ``(node, upstream)`` pairs whose upstream was not
    yet a node when ``node`` was added: every other edge points back to an
    earlier node, so only these can name an unknown node or close a cycle,
    and without them there is nothing to check.
    """
    any_forward = False
    for node_id, upstream in forward:
        any_forward = True
        if upstream not in nodes:
            exc = UnknownDependencyError(node_id, upstream)
            exc.args = (
                f"node {node_id!r} depends on {upstream!r}, which is not defined "
                "as a node of this MetaDAG",
            )
            raise exc
    if not any_forward or _acyclic(nodes, dependencies):
        return
    try:
        build_graph(nodes, dependencies)  # names the cycle and the nodes on cycles
    except WaveCircularDependencyError as exc:
        path = " -> ".join(map(repr, exc.cycle))
        members = ", ".join(sorted(map(repr, exc.cycle_members)))
        exc.args = (f"MetaDAG nodes depend on each other in a cycle: {path} (nodes: {members})",)
        raise


def _acyclic(ids: Collection[Hashable], dependencies: Mapping[Any, Iterable[Any]]) -> bool:
    """Kahn's algorithm, nothing else: a quarter of what compiling the graph
    costs. Every id in ``dependencies`` is known to be one of ``ids``."""
    waiting: dict[Any, int] = {}
    dependents: dict[Any, list[Any]] = {}
    for item, upstream in dependencies.items():
        count = 0
        for up in upstream:  # repeated ids count (and are released) twice, consistently
            count += 1
            below = dependents.get(up)
            if below is None:
                dependents[up] = [item]
            else:
                below.append(item)
        if count:
            waiting[item] = count
    ready = [item for item in ids if item not in waiting]
    for item in ready:  # grows while we walk it
        for below in dependents.get(item, ()):
            left = waiting[below] - 1
            waiting[below] = left
            if not left:
                ready.append(below)
    return len(ready) == len(ids)


def check_nesting(
    root: object, nested_of: Callable[[object], Sequence[tuple[Hashable, object]]]
) -> None:
    """Refuse a MetaDAG nested inside its own ancestry (it would recurse forever).

    ``nested_of(meta)`` lists ``(node_id, nested MetaDAG)`` for the "meta"
    nodes of ``meta``. A depth-first walk over MetaDAG objects: one seen
    again on the current path is a cycle, reported as the path of node ids
    from ``root``; one met again in another branch is fine and is walked
    only once.
    """
    depth_of: dict[int, int] = {id(root): 0}  # the MetaDAGs on the current path
    done: set[int] = set()
    path: list[Hashable] = []
    stack: list[tuple[object, Iterator[tuple[Hashable, object]]]] = [(root, iter(nested_of(root)))]
    while stack:
        meta, children = stack[-1]
        for node_id, inner in children:
            key = id(inner)
            depth = depth_of.get(key)
            if depth is not None:
                full = [*path, node_id]
                nodes = " -> ".join(map(repr, full))
                raise GraphError(
                    f"MetaDAG nested inside itself: node path {nodes}; node {node_id!r} "
                    f"runs the MetaDAG that holds node {full[depth]!r}, which would "
                    "recurse forever"
                )
            if key not in done:
                path.append(node_id)
                depth_of[key] = len(path)
                stack.append((inner, iter(nested_of(inner))))
                break
        else:
            stack.pop()
            del depth_of[id(meta)]
            done.add(id(meta))
            if stack:
                path.pop()
