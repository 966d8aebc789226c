"""``Flow``: a typed way to build a DAG by calling decorated functions.

Calling a task of a flow runs nothing: it records a call and returns a
``Handle`` of its output. Passing handles to other calls draws the edges.
``run()`` compiles the calls to the dict API (``FlowPlan``) and hands them
to ``DAGExecutor.execute``; the scheduler is the same one.

Plain (``def``) functions run on a thread backend by default, not in the
event loop: the scheduler cannot know whether one returns at once or blocks
for seconds, and one that blocks in the loop stalls every other task and
every timeout (a timeout cannot even fire until it returns). A thread costs
a few tens of microseconds per call; a function known to be quick can opt
into the loop with ``backend=InlineBackend()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextvars import Token
from dataclasses import replace
from typing import Any, Self, TypeVar

from wave_executor._core.config import WaveConfig
from wave_executor._core.retry import RetryPolicy
from wave_executor._runtime.executor import DAGExecutor
from wave_executor.backends.inline import InlineBackend
from wave_executor.backends.protocol import Backend
from wave_executor.backends.thread import ThreadBackend
from wave_executor.flow._handle import Const, DictOf, Handle, ListOf, Ref, Source
from wave_executor.flow._plan import Call, FlowPlan, MapCall, MapChild
from wave_executor.flow._run import FlowRun
from wave_executor.flow._tasks import After, TaskBase, TaskDecorator, enter_flow, exit_flow

__all__ = ["Flow"]

T = TypeVar("T")
K = TypeVar("K")

_INLINE = InlineBackend()


class _Node:
    """One recorded call: its task and where each argument comes from."""

    __slots__ = ("after", "args", "kwargs", "map_as_dict", "task", "task_id")

    def __init__(
        self,
        task_id: str,
        task: TaskBase[Any],
        args: tuple[Source, ...],
        kwargs: tuple[tuple[str, Source], ...],
        after: tuple[str, ...],
        map_as_dict: bool | None,
    ) -> None:
        self.task_id = task_id
        self.task = task
        self.args = args
        self.kwargs = kwargs
        self.after = after
        #: None for a call; for ``map``/``map_values``, whether the items are a mapping.
        self.map_as_dict = map_as_dict

    def deps(self) -> list[str]:
        found: dict[Any, None] = {}
        for source in (*self.args, *(s for _, s in self.kwargs)):
            found.update(dict.fromkeys(source.deps()))
        found.update(dict.fromkeys(self.after))
        return list(found)


class Flow:
    """A graph of typed task calls, run by ``DAGExecutor``.

    ``@flow.task`` (or ``@flow.task(retries=..., timeout=..., group=...,
    trigger_rule=..., cost=..., backend=...)``) turns a function into a task
    of this flow; calling the task records a call and returns a
    ``Handle`` of its output, which other calls take in place of a value.
    ``await flow.run()`` runs every recorded call once. Inside ``with flow:``,
    calls of tasks made with ``wave_executor.flow.task`` (tasks of no flow in
    particular) are recorded here too.

    ``thread_backend`` runs the plain (``def``) functions that name no
    backend of their own; by default each run makes a ``ThreadBackend`` and
    closes it at the end.
    """

    def __init__(self, name: str = "flow", *, thread_backend: Backend | None = None) -> None:
        self.name = name
        self.thread_backend = thread_backend
        #: The decorator that makes a task of this flow.
        self.task = TaskDecorator(self)
        self._nodes: dict[str, _Node] = {}
        self._calls: dict[str, int] = {}
        self._tokens: list[Token[Flow | None]] = []

    # -- building --------------------------------------------------------------

    @property
    def task_ids(self) -> list[str]:
        """The ids of the recorded calls, in the order they were made."""
        return list(self._nodes)

    def gather(self, handles: Iterable[Handle[T]]) -> Handle[list[T]]:
        """One handle of the list of several handles' outputs (no task of its own)."""
        return Handle(self, ListOf(tuple(self._source_of(h) for h in handles)))

    def gather_dict(self, handles: Mapping[K, Handle[T]]) -> Handle[dict[K, T]]:
        """One handle of a dict of several handles' outputs, under the same keys."""
        keys = tuple(handles)
        return Handle(self, DictOf(keys, tuple(self._source_of(handles[k]) for k in keys)))

    def _add(
        self,
        task: TaskBase[Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        after: After,
        map_as_dict: bool | None = None,
    ) -> Handle[Any]:
        if task.flow is not None and task.flow is not self:
            raise ValueError(f"{task!r} belongs to flow {task.flow.name!r}, not {self.name!r}")
        sources = tuple(self._argument(a, task) for a in args)
        named = tuple((k, self._argument(v, task)) for k, v in kwargs.items())
        waits: list[str] = []
        for handle in after:
            if not isinstance(handle, Handle):
                raise TypeError(f"after= takes handles, got {handle!r}")
            waits.extend(str(d) for d in self._source_of(handle).deps())
        task_id = self._new_id(task.name)
        self._nodes[task_id] = _Node(task_id, task, sources, named, tuple(waits), map_as_dict)
        return Handle(self, Ref(task_id, as_list=map_as_dict is False))

    def _argument(self, value: Any, task: TaskBase[Any]) -> Source:
        if isinstance(value, Handle):
            return self._source_of(value)
        inner = _nested_handle(value)
        if inner is not None:
            raise TypeError(
                f"task {task.name!r}: a handle inside a {type(value).__name__} is not resolved; "
                "pass flow.gather([...]) or flow.gather_dict({...}) instead"
            )
        return Const(value)

    def _source_of(self, handle: Handle[Any]) -> Source:
        if not isinstance(handle, Handle):
            raise TypeError(f"expected a Handle, got {handle!r}")
        if handle.flow is not self:
            raise ValueError(
                f"{handle!r} belongs to flow {handle.flow.name!r}; "
                f"a call of flow {self.name!r} cannot take it"
            )
        return handle._source

    def _new_id(self, base: str) -> str:
        n = self._calls.get(base, 0)
        while True:
            n += 1
            task_id = base if n == 1 else f"{base}-{n}"
            if task_id not in self._nodes:
                self._calls[base] = n
                return task_id

    # -- compiling and running -------------------------------------------------

    def plan(
        self, config: WaveConfig | None = None, *, thread_backend: Backend | None = None
    ) -> FlowPlan:
        """The recorded calls as ``DAGExecutor.execute``'s arguments.

        ``config`` gives the backoff of tasks whose ``retries`` is a number.
        Plain functions without a backend of their own go to
        ``thread_backend``, else the flow's, else a new ``ThreadBackend``
        (``plan.thread_backend``; the caller closes it).
        """
        default_retry = (config if config is not None else WaveConfig()).effective_retry_policy()
        thread = thread_backend if thread_backend is not None else self.thread_backend
        plan = FlowPlan(tasks={}, dependencies={})
        for task_id, node in self._nodes.items():
            task, options = node.task, node.task.options
            backend = options.backend
            if backend is None:
                if task.is_async:
                    backend = _INLINE
                else:
                    if thread is None:
                        thread = ThreadBackend()
                    backend = thread
            in_loop = type(backend) is InlineBackend
            inline_sync = not task.is_async and in_loop
            if node.map_as_dict is None:
                plan.tasks[task_id] = Call(task, node.args, node.kwargs, inline_sync)
            else:
                items, *rest = node.args
                plan.tasks[task_id] = MapCall(task, items, tuple(rest), node.map_as_dict, in_loop)
                plan.fan_out[task_id] = MapChild(task, inline_sync)
            plan.backends[task_id] = backend
            deps = node.deps()
            if deps:
                plan.dependencies[task_id] = deps
            retries = options.retries
            if isinstance(retries, RetryPolicy):
                plan.retry_policies[task_id] = retries
            elif retries is not None:
                plan.retry_policies[task_id] = replace(default_retry, max_retries=retries)
            if options.timeout is not None:
                plan.timeouts[task_id] = options.timeout
            if options.group is not None:
                plan.groups[task_id] = options.group
            if options.trigger_rule != "all_success":
                plan.trigger_rules[task_id] = options.trigger_rule
            if options.cost is not None:
                plan.priority_costs[task_id] = float(options.cost)
        uses_thread = thread is not None and any(b is thread for b in plan.backends.values())
        return replace(plan, thread_backend=thread if uses_thread else None)

    async def run(
        self, executor: DAGExecutor | None = None, *, config: WaveConfig | None = None
    ) -> FlowRun:
        """Run every recorded call once, each as soon as its upstreams allow.

        ``executor`` (default: a new ``DAGExecutor``) brings its config, event
        callbacks and circuit breakers; ``config`` overrides its config for
        this run. Validation errors (a cycle cannot happen; an unknown group
        budget or backend can) are raised before anything runs.
        """
        if executor is None:
            executor = DAGExecutor(config)
        cfg = config if config is not None else executor.config
        own = None
        thread = self.thread_backend
        if thread is None:
            thread = own = ThreadBackend()
        try:
            plan = self.plan(cfg, thread_backend=thread)
            result = await executor.execute(
                plan.tasks,
                plan.dependencies,
                plan.task_executor,
                config=cfg,
                **plan.execute_options(),
            )
        finally:
            if own is not None:
                own.close(wait=False)  # a timed-out body still running must not hold the loop
        return FlowRun(self, result)

    def __enter__(self) -> Self:
        """Calls of tasks made with ``wave_executor.flow.task`` go to this flow until the exit."""
        self._tokens.append(enter_flow(self))
        return self

    def __exit__(self, *exc: object) -> None:
        exit_flow(self._tokens.pop())

    def __len__(self) -> int:
        return len(self._nodes)

    def __repr__(self) -> str:
        return f"<Flow {self.name!r}: {len(self._nodes)} calls>"


def _nested_handle(value: Any) -> Handle[Any] | None:
    """A handle one level inside a list, tuple, set or dict (a likely mistake), if any."""
    if isinstance(value, list | tuple | set | frozenset):
        items: Iterable[Any] = value
    elif isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    else:
        return None
    for item in items:
        if isinstance(item, Handle):
            return item
    return None
