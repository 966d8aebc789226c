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
from dataclasses import dataclass
from typing import Any

from wave_executor._core.backend import Backend
from wave_executor._core.breaker import CircuitBreakerRegistry
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
from wave_executor._runtime.progress_feed import feed_for
from wave_executor._runtime.recording import RunRecorder
from wave_executor._runtime.settings import GroupSpec, KeyFunction, resolve_groups, run_settings
from wave_executor.progress import Progress

__all__ = ["DagOptions", "check_graph_arguments", "run_dag"]


@dataclass(frozen=True, slots=True)
class DagOptions:
    """The keyword options of ``execute()`` beyond the graph and the body."""

    inject_dep_outputs: bool = False
    semaphore: AdaptiveSemaphore | None = None
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
        semaphore=options.semaphore,
        recorder=recorder,
        restored=restored,
        rules=rules,
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
        result = await run.run()
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
