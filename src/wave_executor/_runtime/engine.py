"""The engine's entry: from ``execute()``'s arguments to a finished ``DagRun``.

``DAGExecutor.execute`` and the MetaDAG "dag" node both come through here,
so a graph is validated, its settings resolved, its store claimed and its
events closed the same way whoever runs it. Level mode and the MetaDAG
node run build their ``DagRun`` themselves (they resolve settings of their
own) but use the same pieces.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

from wave_executor._core.backend import Backend
from wave_executor._core.breaker import CircuitBreakerRegistry
from wave_executor._core.checks import check_mapping
from wave_executor._core.config import WaveConfig
from wave_executor._core.graph import build_graph
from wave_executor._core.names import RunOutcome
from wave_executor._core.records import DAGExecutionResult
from wave_executor._core.retry import RetryPolicy
from wave_executor._core.store_protocol import RunStore
from wave_executor._core.triggers import parse_rules
from wave_executor._runtime.attempt import BackendSpec, TaskBody, resolve_backends, with_backends
from wave_executor._runtime.dag_run import DagRun
from wave_executor._runtime.early import early_routes
from wave_executor._runtime.events import EventHub
from wave_executor._runtime.fan_out import ChildFunction, ChildGroups, check_fan_out, with_children
from wave_executor._runtime.learned import learned_costs
from wave_executor._runtime.limiter import AdaptiveSemaphore
from wave_executor._runtime.observe import ExecutionProbe
from wave_executor._runtime.observe import execution as observed_execution
from wave_executor._runtime.progress_feed import feed_for
from wave_executor._runtime.recording import RunRecorder
from wave_executor._runtime.settings import GroupSpec, KeyFunction, resolve_groups, run_settings
from wave_executor.progress import Progress

__all__ = [
    "DagOptions",
    "SpecialistSemaphore",
    "as_specialist_semaphore",
    "check_graph_arguments",
    "check_run_arguments",
    "end_probe",
    "run_dag",
]


@dataclass(frozen=True, slots=True)
class DagOptions:
    """The keyword options of ``execute()`` beyond the graph and the body."""

    inject_dep_outputs: bool = False
    semaphore: SpecialistSemaphore | None = None
    priority_costs: Mapping[Any, float] | None = None
    groups: GroupSpec | None = None
    retry_policies: Mapping[Any, RetryPolicy] | None = None
    timeouts: Mapping[Any, float | None] | None = None
    circuit_key: KeyFunction | None = None
    store: RunStore | None = None
    run_id: str | None = None
    trigger_rules: Mapping[Any, str] | None = None
    backend: Backend | None = None
    backends: BackendSpec | None = None
    progress: Progress | None = None
    #: Run-time fan-out: parent task id -> ``(child_id, item) -> awaitable``.
    fan_out: Mapping[Any, ChildFunction] | None = None


def check_graph_arguments(tasks: object, task_executor: object) -> None:
    """The type errors every mode raises before anything runs."""
    if not isinstance(tasks, Mapping):
        raise TypeError(f"tasks must be a mapping of task id to spec, got {type(tasks).__name__}")
    if not callable(task_executor):
        raise TypeError(f"task_executor must be an async callable, got {task_executor!r}")


def end_probe(probe: ExecutionProbe, result: DAGExecutionResult) -> None:
    """End an execution's probe with the run's outcome and totals."""
    probe.end(
        "success" if result.succeeded else "failed",
        None,
        total_tasks=result.total_tasks,
        successful_tasks=result.total_successful,
        failed_tasks=result.total_failed,
        skipped_tasks=result.total_skipped,
        stopped_reason=result.stopped_reason,
    )


def check_run_arguments(
    config: object,
    dependencies: object,
    *,
    semaphore: object = None,
    circuit_key: object = None,
    groups: object = None,
    mappings: Mapping[str, object] | None = None,
    store: object = None,
) -> None:
    """The argument types every mode checks before anything runs (values are
    checked where they are read: the graph, the settings, the rules)."""
    if not isinstance(config, WaveConfig):
        raise TypeError(f"config must be a WaveConfig or None, got {config!r}")
    config.check()  # a field may have been set since the config was made
    if dependencies is not None and not isinstance(dependencies, Mapping):
        raise TypeError(
            f"dependencies must be a mapping of task id to its dependencies, got {dependencies!r}"
        )
    for name, value in (mappings or {}).items():
        check_mapping(name, value)
    if groups is not None and not callable(groups) and not isinstance(groups, Mapping):
        raise TypeError(
            "groups must be a mapping of task id to group name or a function "
            f"(task_id, spec) -> name, got {groups!r}"
        )
    as_specialist_semaphore(semaphore)  # raises for what is not a semaphore
    if circuit_key is not None and not callable(circuit_key):
        raise TypeError(
            f"circuit_key must be a function (task_id, spec) -> key or None, got {circuit_key!r}"
        )
    if store is not None and not callable(getattr(store, "begin_run", None)):
        raise TypeError(f"store must be a run store (SQLiteStore, MemoryStore), got {store!r}")


#: ``specialist_semaphore=``: an ``AdaptiveSemaphore``, or any async context manager.
SpecialistSemaphore: TypeAlias = AdaptiveSemaphore | AbstractAsyncContextManager[Any]


class _PlainSemaphore:
    """Any async context manager given as ``specialist_semaphore`` (an
    ``asyncio.Semaphore``, as 0.3.0 allowed): it only holds slots, so the
    outcome reports an ``AdaptiveSemaphore`` learns from go nowhere."""

    __slots__ = ("_inner",)

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def __aenter__(self) -> _PlainSemaphore:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._inner.__aexit__(*exc_info)

    def record_success(self, admission: object = None) -> None:
        pass

    def record_error(self, exc: BaseException, admission: object = None) -> bool:
        return False


def as_specialist_semaphore(value: object) -> AdaptiveSemaphore | None:
    """``specialist_semaphore=`` as the runtime uses it; ``TypeError`` if it is no semaphore."""
    if value is None or isinstance(value, AdaptiveSemaphore):
        return value
    if callable(getattr(value, "__aenter__", None)) and callable(getattr(value, "__aexit__", None)):
        # The run calls only the four methods _PlainSemaphore has.
        return cast(AdaptiveSemaphore, _PlainSemaphore(value))
    raise TypeError(
        "specialist_semaphore must be an AdaptiveSemaphore (or another async context "
        f"manager, such as an asyncio.Semaphore) or None, got {value!r}"
    )


async def run_dag(
    tasks: Mapping[Any, Any],
    dependencies: Mapping[Any, Iterable[Any]] | None,
    body: TaskBody,
    config: WaveConfig,
    options: DagOptions,
    hub: EventHub,
    breakers: CircuitBreakerRegistry,
    on_breakers: Callable[[CircuitBreakerRegistry], None] | None = None,
) -> DAGExecutionResult:
    """Validate, resolve, run and close one DAG execution.

    ``breakers`` holds the keyed breakers shared beyond this run;
    ``on_breakers`` receives the run's per-task ones when it ends.
    """
    check_graph_arguments(tasks, body)
    check_run_arguments(
        config,
        dependencies,
        semaphore=options.semaphore,
        circuit_key=options.circuit_key,
        groups=options.groups,
        mappings={
            "priority_costs": options.priority_costs,
            "retry_policies": options.retry_policies,
            "timeouts": options.timeouts,
            "trigger_rules": options.trigger_rules,
        },
        store=options.store,
    )
    deps = dependencies if dependencies is not None else {}
    costs = options.priority_costs
    if costs is None and options.store is not None:
        costs = await learned_costs(options.store, tasks)  # earlier runs' durations
    graph = build_graph(tasks, deps, costs)
    settings = run_settings(
        config, graph, options.inject_dep_outputs, options.retry_policies, options.timeouts
    )
    groups = resolve_groups(config, graph, tasks, options.groups)
    rules = parse_rules(options.trigger_rules, graph.index)
    parents: frozenset[int] = frozenset()
    if options.fan_out is not None:
        parents = check_fan_out(options.fan_out, graph, tasks)
        if parents:
            # Children's specs join the run's own copy, never the caller's mapping.
            tasks = dict(tasks)
    chosen: dict[Any, Backend] = {}
    early = None
    if options.backend is not None or options.backends is not None:
        if isinstance(options.backends, Mapping):
            for task_id in options.backends:
                if task_id not in tasks:
                    raise ValueError(
                        f"a backend is given for task {task_id!r}, which is not defined in tasks"
                    )
        chosen = resolve_backends(tasks, options.backend, options.backends)
        if options.store is None and not parents and options.semaphore is None:
            early = early_routes(body, tasks, options.backend, chosen)
        body = with_backends(body, options.backend, chosen, fetch_outputs=options.store is not None)
    child_groups = None
    if parents:
        assert options.fan_out is not None
        body = with_children(body, options.fan_out, options.backend, chosen, options.backends)
        if groups is not None:
            child_groups = ChildGroups(groups, options.groups, config)
    execution_id = str(uuid.uuid4())
    progress = feed_for(options.progress, execution_id)
    recorder = None
    if options.store is not None:
        recorder = RunRecorder(
            options.store, options.run_id or execution_id, execution_id, graph, tasks
        )
    elif options.run_id is not None:
        raise ValueError("run_id is given without a store: pass store= to make the run durable")
    restored = await recorder.begin(parents) if recorder is not None else {}
    events = hub.stream(execution_id, enabled=config.emit_events)
    run_id = None if recorder is None else recorder.run_id
    probe = observed_execution("dag", execution_id, run_id, len(graph))
    run = DagRun(
        graph=graph,
        specs=tasks,
        body=body,
        settings=settings,
        events=events,
        execution_id=execution_id,
        dependencies=deps,
        breakers=breakers,
        circuit_key=options.circuit_key,
        groups=groups,
        semaphore=as_specialist_semaphore(options.semaphore),
        recorder=recorder,
        restored=restored,
        rules=rules,
        probe=probe,
        progress=progress,
        fan_out_parents=parents,
        child_groups=child_groups,
        early=early,
    )
    events.clock = run.clock
    outcome = RunOutcome.INTERRUPTED
    try:
        if progress is not None:
            progress.start(len(graph))
        try:
            result = await run.run()
        except BaseException as exc:
            if probe is not None:
                probe.end("cancelled", exc)
            raise
        if probe is not None:
            end_probe(probe, result)
        outcome = RunOutcome.COMPLETED if result.succeeded else RunOutcome.FAILED
        await events.drain()
    finally:
        if progress is not None:
            progress.close()
        await events.close()
        if on_breakers is not None:
            on_breakers(run.circuits.local)
        if recorder is not None:
            await recorder.end(outcome)
    return result
