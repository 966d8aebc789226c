"""A flow compiled to the dict API: ``tasks``, ``dependencies``, one task executor, options.

Each task call becomes one task whose spec is a ``Call``: the task (which
finds the function, also in a worker process) and a source per argument.
The flow runs with ``inject_dep_outputs=True``, so the engine hands every
call the outputs of its upstreams and ``run_call`` builds the arguments
from them. ``task.map(items)`` becomes a parent task (``MapCall``) listed in
``fan_out=``, whose children the engine makes at run time, one per item.
Nothing here schedules: ``DAGExecutor.execute`` does, exactly as for a
graph written by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wave_executor._core.retry import RetryPolicy
from wave_executor._core.upstream import DEP_OUTPUTS
from wave_executor.backends.protocol import Backend
from wave_executor.flow._handle import Source

if TYPE_CHECKING:
    from wave_executor.flow._tasks import TaskBase

__all__ = ["Call", "FlowPlan", "MapCall", "MapChild", "run_call"]


@dataclass(frozen=True, slots=True)
class Call:
    """One task call, as the spec of its task in the compiled graph.

    ``inline_sync``: a plain function run in the event loop (``backend=
    InlineBackend()``), whose value is handed to the engine as an awaitable.
    """

    task: TaskBase[Any]
    args: tuple[Source, ...]
    kwargs: tuple[tuple[str, Source], ...] = ()
    inline_sync: bool = False


@dataclass(frozen=True, slots=True)
class MapCall:
    """The parent task of ``task.map(items, *rest)``: its output is one argument tuple per item.

    The engine makes each item a child ``ChildId(parent, key)`` run by
    ``MapChild``; the parent's output, as its dependents see it, becomes
    ``{key: child output}``. ``as_dict``: the items must be a mapping
    (``map_values``), else a sequence (``map``). ``in_loop``: the parent runs
    in the event loop, so its value is handed over as an awaitable.
    """

    task: TaskBase[Any]
    items: Source
    rest: tuple[Source, ...]
    as_dict: bool
    in_loop: bool

    def arguments(self, outputs: Mapping[Any, Any]) -> Any:
        items = self.items.resolve(outputs)
        rest = tuple(source.resolve(outputs) for source in self.rest)
        if self.as_dict:
            if not isinstance(items, Mapping):
                raise TypeError(
                    f"{self.task.name}.map_values() needs a mapping of items, "
                    f"got {type(items).__name__}"
                )
            return {key: (item, *rest) for key, item in items.items()}
        if isinstance(items, Mapping | str | bytes) or not isinstance(items, Sequence):
            raise TypeError(
                f"{self.task.name}.map() needs a sequence of items (map_values() takes a "
                f"mapping), got {type(items).__name__}"
            )
        return [(item, *rest) for item in items]


@dataclass(frozen=True, slots=True)
class MapChild:
    """``fan_out[parent]``: one child of a ``MapCall``, the task's function on one item."""

    task: TaskBase[Any]
    inline_sync: bool

    def __call__(self, child_id: Any, arguments: tuple[Any, ...]) -> Any:
        value = self.task.fn(*arguments)
        return _ready(value) if self.inline_sync else value


def run_call(task_id: Any, spec: Any) -> Any:
    """The task executor of every flow: calls the task's function with its arguments.

    For an ``async def`` it returns the coroutine (the engine awaits it);
    for a plain function on a thread or process backend it runs there and
    returns the value. Module level, so that a process backend can pickle it.
    """
    if isinstance(spec, dict):  # the engine wrapped the Call with its upstreams' outputs
        call: Call | MapCall = spec["spec"]
        outputs: Mapping[Any, Any] = spec[DEP_OUTPUTS]
    else:
        call, outputs = spec, {}
    if isinstance(call, MapCall):
        arguments = call.arguments(outputs)
        return _ready(arguments) if call.in_loop else arguments
    args = [source.resolve(outputs) for source in call.args]
    kwargs = {name: source.resolve(outputs) for name, source in call.kwargs}
    value = call.task.fn(*args, **kwargs)
    if call.inline_sync:
        return _ready(value)
    return value


async def _ready(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class FlowPlan:
    """A flow as ``DAGExecutor.execute`` takes it.

    ``DAGExecutor().execute(plan.tasks, plan.dependencies,
    plan.task_executor, **plan.execute_options())`` is what ``Flow.run``
    does. ``thread_backend`` runs the plain functions that name no backend
    of their own (None when there are none); whoever made the plan closes it.
    """

    tasks: dict[str, Call | MapCall]
    dependencies: dict[str, list[str]]
    task_executor: Callable[[Any, Any], Any] = run_call
    retry_policies: dict[str, RetryPolicy] = field(default_factory=dict)
    timeouts: dict[str, float | None] = field(default_factory=dict)
    groups: dict[str, Hashable] = field(default_factory=dict)
    trigger_rules: dict[str, str] = field(default_factory=dict)
    priority_costs: dict[str, float] = field(default_factory=dict)
    backends: dict[str, Backend] = field(default_factory=dict)
    fan_out: dict[str, MapChild] = field(default_factory=dict)
    thread_backend: Backend | None = None

    def execute_options(self) -> dict[str, Any]:
        """The keyword arguments of ``execute()`` beyond the graph (empty mappings left out)."""
        options: dict[str, Any] = {"inject_dep_outputs": True}
        for name in (
            "retry_policies", "timeouts", "groups", "trigger_rules", "priority_costs", "backends",
            "fan_out",
        ):  # fmt: skip
            value = getattr(self, name)
            if value:
                options[name] = value
        return options
