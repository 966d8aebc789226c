"""Run-time fan-out, the asyncio side: the body children run, and their settings.

``execute(fan_out={parent: fn})`` makes every item of ``parent``'s output a
child task ``ChildId(parent, key)`` whose body is ``fn(child_id, item)``.
The engine calls one body for every task; with fan-out that body is a
dispatcher that sends children to their parent's function, so a run
without fan-out calls the task executor exactly as before.

A child inherits its parent's group, retry policy, attempt timeout,
circuit key and backend. The function forms of ``groups=``,
``circuit_key=`` and ``backends=`` are asked about each child too, with
``(child_id, item)``; when they return None the parent's choice stands.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any

from wave_executor._core.config import WaveConfig
from wave_executor._core.fan_out import ChildId
from wave_executor._core.graph import Graph
from wave_executor._core.window import Window
from wave_executor._runtime.attempt import BackendSpec, TaskBody, call_remote_aware
from wave_executor._runtime.settings import Groups, GroupSpec, group_budget
from wave_executor.backends.inline import InlineBackend
from wave_executor.backends.protocol import Backend, RemoteOutput

__all__ = ["ChildFunction", "ChildGroups", "check_fan_out", "with_children"]

#: ``fan_out[parent]``: ``(child_id, item) -> awaitable output``, like a task executor.
ChildFunction = Callable[[ChildId, Any], Any]


def check_fan_out(
    fan_out: Mapping[Any, ChildFunction], graph: Graph, tasks: Mapping[Any, Any]
) -> frozenset[int]:
    """The indices of the fan-out parents; raise before anything runs on a bad argument."""
    if not isinstance(fan_out, Mapping):
        raise TypeError(
            f"fan_out must be a mapping of task id to a function (child_id, item) -> "
            f"awaitable, got {type(fan_out).__name__}"
        )
    parents = []
    for task_id, fn in fan_out.items():
        i = graph.index.get(task_id)
        if i is None:
            raise ValueError(
                f"fan_out is given for task {task_id!r}, which is not defined in tasks"
            )
        if not callable(fn):
            raise TypeError(f"fan_out[{task_id!r}] must be callable, got {fn!r}")
        parents.append(i)
    if fan_out:
        declared = next((t for t in tasks if type(t) is ChildId), None)
        if declared is not None:
            raise ValueError(
                f"task id {declared!r} is a ChildId: with fan_out, ChildId is kept for "
                "the children the run makes"
            )
    return frozenset(parents)


def with_children(
    body: TaskBody,
    fan_out: Mapping[Any, ChildFunction],
    default: Backend | None,
    chosen: Mapping[Any, Backend],
    backends: BackendSpec | None,
) -> TaskBody:
    """``body`` for declared tasks, ``fan_out[parent](child_id, item)`` for children.

    A child runs on what ``backends(child_id, item)`` picks (a function
    ``backends=``), else on its parent's backend. Outputs a backend keeps
    remote are fetched, so that the parent's output holds the values.
    """
    functions = dict(fan_out)
    pick = backends if callable(backends) and not isinstance(backends, Mapping) else None
    where: dict[Any, Backend | None] = {}
    plain = default is None and not chosen and pick is None  # every child runs inline

    def backend_of(child: ChildId, item: Any) -> Backend | None:
        backend = pick(child, item) if pick is not None else None
        if backend is None:
            backend = chosen.get(child.parent, default)
        return None if type(backend) is InlineBackend else backend

    # A parent whose backend keeps outputs where they were made (Dask) must hand its
    # output over: the run splits it into items here.
    remote_parents = {
        p for p in functions if getattr(chosen.get(p, default), "keeps_outputs", False)
    }

    def dispatch(task_id: Any, spec: Any) -> Awaitable[Any]:
        if type(task_id) is not ChildId:
            if remote_parents and task_id in remote_parents:
                return _fetched(body(task_id, spec))
            return body(task_id, spec)
        fn = functions[task_id.parent]
        if plain:
            return fn(task_id, spec)  # type: ignore[no-any-return]
        backend = where.get(task_id, _UNSET)
        if backend is _UNSET:
            backend = where[task_id] = backend_of(task_id, spec)
        if backend is None:
            return fn(task_id, spec)  # type: ignore[no-any-return]
        if getattr(backend, "keeps_outputs", False):
            return call_remote_aware(fn, backend, task_id, spec, True)
        pending: Awaitable[Any] = backend.call(fn, task_id, spec)
        return pending

    return dispatch


_UNSET: Any = object()


async def _fetched(pending: Awaitable[Any]) -> Any:
    output = await pending
    if isinstance(output, RemoteOutput):
        output = await output.fetch()
    return output


class ChildGroups:
    """Each child's group: ``groups(child_id, item)`` when ``groups=`` is a function
    and it names one, else the parent's. A name first seen here gets its window."""

    def __init__(self, groups: Groups, spec: GroupSpec | None, config: WaveConfig) -> None:
        self._groups = groups
        self._fn = spec if callable(spec) and not isinstance(spec, Mapping) else None
        self._config = config
        self._number = {name: g for g, name in enumerate(groups.names) if g}

    @property
    def count(self) -> int:
        """How many groups there are now (names first seen at run time included)."""
        return len(self._groups.names)

    def of(self, parent: int, children: list[ChildId], items: list[Any]) -> list[int]:
        """The group of each child; raises what the ``groups`` function raises."""
        g_parent = self._groups.group_of[parent]
        fn = self._fn
        if fn is None:
            return [g_parent] * len(children)
        return [self._group(fn(c, item), g_parent) for c, item in zip(children, items, strict=True)]

    def assign(self, numbers: list[int]) -> None:
        """Give the children just added to the graph their groups (from ``of``)."""
        groups = self._groups
        groups.group_of.extend(numbers)
        zero = groups.windows[0]  # the no-group window has room for every task
        zero.limit = zero.ceiling = len(groups.group_of) + 1

    def _group(self, name: Hashable | None, parent: int) -> int:
        if name is None:
            return parent
        g = self._number.get(name)
        if g is None:
            groups = self._groups
            budget = group_budget(self._config, name)  # may raise: before anything changes
            g = self._number[name] = len(groups.names)
            groups.names.append(name)
            adaptive = self._config.adaptive_group_windows
            groups.windows.append(Window.adaptive(budget, 1) if adaptive else Window(budget))
        return g
