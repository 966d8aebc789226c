"""MetaDAG's composition: one DAGExecutor run over the nodes.

A MetaDAG run is *one* ``DAGExecutor.execute()`` over the nodes: each node
is a task whose body runs the node with its kind's ``NodeRunner``. So node
scheduling, concurrency caps (global and per group), skipping downstream of
a failure and cancellation are the DAG executor's, not a second scheduler.
Single-task "dag" nodes that need no run of their own are run by that same
run as plain tasks (``direct_nodes``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import uuid
from collections.abc import Hashable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from wave_executor._core.config import WaveConfig
from wave_executor._core.meta_records import (
    MetaDAGNodeResult,
    MetaDAGNodeSpec,
    MetaDAGResult,
    NodeOutcome,
    NodeResults,
    TaskSummaries,
    copy_outputs,
    nested_outputs,
)
from wave_executor._core.names import EventType
from wave_executor._core.records import TaskResult
from wave_executor._core.retry import RetryPolicy
from wave_executor._core.status import TaskStatus
from wave_executor._core.store_protocol import RunStore
from wave_executor._runtime.attempt import UNSET, NotAwaitableError, not_awaitable
from wave_executor._runtime.direct_nodes import (
    DirectNode,
    attempt_spec,
    direct_nodes,
    direct_outcome,
    direct_spec,
    run_defaults,
)
from wave_executor._runtime.events import EventHub, RunEvents
from wave_executor._runtime.executor import DAGExecutor
from wave_executor._runtime.node_events import NodeEvents
from wave_executor._runtime.node_runners import DagNodeRunner, NodeRunner, inject_upstream

__all__ = ["compose"]


class _NodeFailed(Exception):
    """Raised by a node body so that the outer DAG run marks the node failed."""


def _outer_config(cfg: WaveConfig, retry: RetryPolicy, timeout: float) -> WaveConfig:
    """The node-level run: caps from ``cfg``; no breakers, an exact (non-adaptive)
    global cap; by default the retry policy and attempt timeout of the direct
    nodes (``run_defaults``), overridden per node for the others."""
    return dataclasses.replace(
        cfg,
        default_task_timeout=timeout,
        max_retries=retry.max_retries,
        retry_policy=retry,
        circuit_breaker_enabled=False,
        adaptive_batch_window=False,
        adaptive_group_windows=False,
        allow_partial_success=False,
        stop_on_first_error=False,
        emit_events=True,
    )


def _binding_groups(
    nodes: Mapping[Hashable, MetaDAGNodeSpec], config: WaveConfig
) -> dict[Hashable, Hashable] | None:
    """``groups=`` for the node run: group = specialist, else the node's own id.

    Only groups whose budget can bind (smaller than both the group's size and
    the global cap) are passed on: the others never limit anything, and the
    executor's grouped ready queue costs time per group.
    """
    members: dict[Hashable, list[Hashable]] = {}
    for node_id, spec in nodes.items():
        members.setdefault(spec.specialist or node_id, []).append(node_id)
    budgets: Mapping[Any, int] = config.specialist_budgets
    groups: dict[Hashable, Hashable] = {}
    for name, ids in members.items():
        budget = budgets.get(name, config.default_specialist_budget)
        if budget < 1:
            raise ValueError(f"the budget of group {name!r} must be >= 1, got {budget}")
        if budget < min(len(ids), config.max_parallel_per_wave):
            groups.update(dict.fromkeys(ids, name))
    return groups or None


async def compose(
    nodes: Mapping[Hashable, MetaDAGNodeSpec],
    dependencies: Mapping[Hashable, Iterable[Hashable]],
    runners: Mapping[str, NodeRunner],
    config: WaveConfig,
    hub: EventHub,
    inject: bool,
    external_upstream: Mapping[Any, Any] | None = None,
    store: RunStore | None = None,
    run_id: str | None = None,
    task_events: bool = False,
) -> MetaDAGResult:
    """Run the nodes as one DAGExecutor run; see the module docstring."""
    for node_id, spec in nodes.items():
        if spec.node_type not in runners:
            raise ValueError(
                f"node {node_id!r} has unknown node_type {spec.node_type!r}; "
                f"known: {sorted(runners)}"
            )
    external = dict(external_upstream or {})
    if external and inject:
        _check_no_shadowing(dependencies, external)
    execution_id = str(uuid.uuid4())
    events: RunEvents = hub.stream(execution_id, enabled=config.emit_events)
    outcomes: dict[Hashable, MetaDAGNodeResult] = {}
    starts: dict[Hashable, float] = {}  # node -> loop time of its (first) start
    clock = asyncio.get_running_loop().time  # durations follow the loop's clock
    direct: dict[Hashable, DirectNode] = {}
    if store is None and type(runners.get("dag")) is DagNodeRunner:
        direct = direct_nodes(nodes, config)

    translate = None
    if events.active:
        translate = NodeEvents(events, direct, outcomes, starts, clock, task_events)

    retry_specs: dict[Hashable, Any] = {}  # node -> the spec its next attempt reuses

    def upstream_of(wrapped: Any) -> dict[Any, Any]:
        """What the node gets as ``_upstream_outputs``: its own copy of the
        structure, so a node that edits it cannot change an upstream's result."""
        fresh = {k: copy_outputs(v) for k, v in external.items()} if external else {}
        for up, output in wrapped["_dep_outputs"].items():
            done = outcomes.get(up)
            if done is not None and done.nested is not None:
                fresh[up] = nested_outputs(done.nested)
            else:
                fresh[up] = copy_outputs(output)
        return fresh

    async def body(node_id: Hashable, wrapped: Any) -> Any:
        node = direct.get(node_id)
        if node is not None:  # a plain task of this run: retried and timed by it
            if node_id not in starts:  # (NODE_STARTED came with the node run's TASK_STARTED)
                starts[node_id] = clock()
            # A run of its own gives every attempt the same spec (built once per run).
            spec = retry_specs.pop(node_id, None) if retry_specs else None
            if spec is None:
                spec = direct_spec(node, upstream_of(wrapped) if inject else None)
            task_id = node.task_id
            pending = UNSET
            try:
                pending = node.body(task_id, attempt_spec(node, spec))
                output = await pending
            except Exception as exc:
                retry_specs[node_id] = spec
                if not_awaitable(exc, pending):  # as run_attempt says it in a run of its own
                    raise NotAwaitableError(pending) from None
                raise
            except BaseException:
                retry_specs[node_id] = spec
                raise
            return {task_id: output}
        spec = nodes[node_id]
        started_at = datetime.now(UTC)
        start = starts[node_id] = clock()
        if events.active:
            events.emit(EventType.NODE_STARTED, node_id, node_type=spec.node_type)
        outcome: NodeOutcome | None = None
        error: str | None = None
        runner = runners[spec.node_type]
        try:
            upstream = upstream_of(wrapped) if inject else {}
            run_spec = spec
            if inject and spec.tasks:
                run_spec = spec.with_tasks(inject_upstream(spec.tasks, upstream))
            if store is not None and run_spec.store is None:
                node_run = f"{run_id}/{node_id}" if run_id else None
                run_spec = dataclasses.replace(run_spec, store=store, run_id=node_run)
            if translate is not None and translate.task_events and _takes_events(runner):
                run_with_events: Any = runner.run  # not part of the NodeRunner protocol
                reported = await run_with_events(
                    run_spec, upstream, events=translate.forwarder(node_id)
                )
            else:
                reported = await runner.run(run_spec, upstream)
            outcome = _checked(reported, runner, node_id)
        except Exception as exc:  # the runner itself broke: the node failed
            error = f"{type(exc).__name__}: {exc}"
        duration_ms = (clock() - start) * 1000.0
        if outcome is None:
            outcome = NodeOutcome("failed", error=error)
        outcomes[node_id] = MetaDAGNodeResult(
            node_id=node_id,
            status=outcome.status,
            task_outputs=outcome.task_outputs,
            dag_result=outcome.dag_result,
            error=outcome.error,
            started_at=started_at,
            completed_at=datetime.now(UTC),
            duration_ms=duration_ms,
            node_type=spec.node_type,
            task_results=outcome.task_results,
            nested=outcome.nested,
            task_dependencies=spec.task_dependencies,
        )
        if events.active:
            events.emit(
                EventType.NODE_COMPLETED, node_id, status=outcome.status, duration_ms=duration_ms
            )
        if outcome.status != "success":
            raise _NodeFailed(outcome.error or outcome.status)
        return outcome.task_outputs

    started_at = datetime.now(UTC)
    start = clock()
    events.emit(EventType.META_EXECUTION_STARTED, None, total_nodes=len(nodes))
    retry, timeout, retry_overrides, timeout_overrides = run_defaults(nodes, direct)
    executor = DAGExecutor(_outer_config(config, retry, timeout))
    if translate is not None:
        executor.on_event(translate)
    groups = _binding_groups(nodes, config)
    try:
        outer = await executor.execute(
            dict.fromkeys(nodes, None),
            dependencies,
            body,
            inject_dep_outputs=True,
            groups=groups,
            retry_policies=retry_overrides or None,
            timeouts=timeout_overrides or None,
        )
        rows = outer.task_results

        def from_row(node_id: Hashable) -> MetaDAGNodeResult:
            spec = nodes[node_id]
            return _from_node_run(node_id, spec, rows[node_id], outer.execution_id, direct, starts)

        node_results = NodeResults(nodes, outcomes, from_row)
        # A node succeeded exactly when its task in the node run did.
        successful, skipped = outer.total_successful, outer.total_skipped
        duration_ms = (clock() - start) * 1000.0
        meta_result = MetaDAGResult(
            execution_id=execution_id,
            node_results=node_results,
            total_nodes=len(nodes),
            successful_nodes=successful,
            failed_nodes=len(nodes) - successful - skipped,
            skipped_nodes=skipped,
            duration_ms=duration_ms,
            started_at=started_at,
            completed_at=datetime.now(UTC),
            dependencies=dependencies,
        )
        events.emit(
            EventType.META_EXECUTION_COMPLETED,
            None,
            total_nodes=meta_result.total_nodes,
            successful_nodes=meta_result.successful_nodes,
            failed_nodes=meta_result.failed_nodes,
            skipped_nodes=meta_result.skipped_nodes,
            duration_ms=duration_ms,
        )
        await events.drain()
    finally:
        await events.close()
    return meta_result


def _from_node_run(
    node_id: Hashable,
    spec: MetaDAGNodeSpec,
    task: TaskResult,
    execution_id: str,
    direct: Mapping[Hashable, DirectNode],
    starts: Mapping[Hashable, float],
) -> MetaDAGNodeResult:
    """A node result from its row in the node run: a direct node that ended
    there, or a node that was skipped or cut off by the total timeout."""
    node = direct.get(node_id)
    ended = task.status == TaskStatus.SUCCESS or (
        isinstance(task.output, dict) and "escalation" in task.output
    )
    if node is not None and ended:
        status, outputs, dag_result, error = direct_outcome(node, task, execution_id)
        return MetaDAGNodeResult(
            node_id=node_id,
            status=status,
            task_outputs=outputs,
            dag_result=dag_result,
            error=error,
            started_at=task.started_at,
            completed_at=task.completed_at,
            duration_ms=task.duration_ms,
            task_results=TaskSummaries(dag_result.task_results),
            task_dependencies=spec.task_dependencies,
        )
    began = node_id in starts
    return MetaDAGNodeResult(
        node_id=node_id,
        status=str(task.status),
        error=task.error,
        started_at=task.started_at if began else None,
        completed_at=task.completed_at if began else None,
        duration_ms=task.duration_ms if began else 0.0,
        node_type=spec.node_type,
        task_dependencies=spec.task_dependencies,
    )


def _check_no_shadowing(
    dependencies: Mapping[Hashable, Iterable[Hashable]], external: Mapping[Any, Any]
) -> None:
    """A nested node and an upstream node of the enclosing "meta" node share an id:
    a node downstream of the nested one would see only one of their outputs."""
    for node_id, upstream in dependencies.items():
        for up in upstream:
            if up in external:
                raise ValueError(
                    f"nested node {up!r} has the id of an upstream node of the enclosing "
                    f"'meta' node; node {node_id!r} would see only one of their outputs "
                    "under _upstream_outputs: rename one of them"
                )


_STATUSES = ("success", "failed", "timeout")


def _checked(reported: Any, runner: NodeRunner, node_id: Hashable) -> NodeOutcome:
    """A runner's report, if it is one a node can end with; else a TypeError/ValueError."""
    name = f"{type(runner).__name__}.run"
    if not isinstance(reported, NodeOutcome):
        raise TypeError(
            f"{name} returned {reported!r} for node {node_id!r}; "
            "a node runner returns a NodeOutcome"
        )
    if reported.status not in _STATUSES:
        raise ValueError(
            f"{name} returned status {reported.status!r} for node {node_id!r}; "
            f"a NodeOutcome's status is one of {', '.join(map(repr, _STATUSES))}"
        )
    return reported


def _takes_events(runner: NodeRunner) -> bool:
    """Built-in runners pass their tasks' events on when given ``events=``."""
    try:
        params = inspect.signature(runner.run).parameters
    except (TypeError, ValueError):
        return False
    return "events" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
