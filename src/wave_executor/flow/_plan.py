"""A flow compiled to the dict API: ``tasks``, ``dependencies``, one task executor, options.

Each task call becomes one task whose spec is a ``Call``: the task (which
finds the function, also in a worker process) and a source per argument.
The flow runs with ``inject_dep_outputs=True``, so the engine hands every
call the outputs of its upstreams and ``run_call`` builds the arguments
from them. Nothing here schedules: ``DAGExecutor.execute`` does, exactly as
for a graph written by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wave_executor._core.retry import RetryPolicy
from wave_executor._core.upstream import DEP_OUTPUTS
from wave_executor.backends.protocol import Backend
from wave_executor.flow._handle import Source

if TYPE_CHECKING:
    from wave_executor.flow._tasks import TaskBase

__all__ = ["Call", "FlowPlan", "run_call"]


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


def run_call(task_id: Any, spec: Any) -> Any:
    """The task executor of every flow: calls the task's function with its arguments.

    For an ``async def`` it returns the coroutine (the engine awaits it);
    for a plain function on a thread or process backend it runs there and
    returns the value. Module level, so that a process backend can pickle it.
    """
    if isinstance(spec, dict):  # the engine wrapped the Call with its upstreams' outputs
        call: Call = spec["spec"]
        outputs: Mapping[Any, Any] = spec[DEP_OUTPUTS]
    else:
        call, outputs = spec, {}
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

    tasks: dict[str, Call]
    dependencies: dict[str, list[str]]
    task_executor: Callable[[Any, Any], Any] = run_call
    retry_policies: dict[str, RetryPolicy] = field(default_factory=dict)
    timeouts: dict[str, float | None] = field(default_factory=dict)
    groups: dict[str, Hashable] = field(default_factory=dict)
    trigger_rules: dict[str, str] = field(default_factory=dict)
    priority_costs: dict[str, float] = field(default_factory=dict)
    backends: dict[str, Backend] = field(default_factory=dict)
    thread_backend: Backend | None = None

    def execute_options(self) -> dict[str, Any]:
        """The keyword arguments of ``execute()`` beyond the graph (empty mappings left out)."""
        options: dict[str, Any] = {"inject_dep_outputs": True}
        for name in (
            "retry_policies", "timeouts", "groups", "trigger_rules", "priority_costs", "backends",
        ):  # fmt: skip
            value = getattr(self, name)
            if value:
                options[name] = value
        return options
