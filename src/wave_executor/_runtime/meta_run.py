"""MetaDAG's run: one engine run over the nodes.

A MetaDAG run is *one* ``DagRun`` over the nodes: each node is a task whose
body runs the node with its kind's ``NodeRunner``. So node scheduling,
concurrency caps (global and per group), skipping downstream of a failure
and cancellation are the engine's, not a second scheduler's. Single-task
"dag" nodes that need no run of their own are run by that same run as
plain tasks (``direct_nodes``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import time
import uuid
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from wave_executor._core.config import WaveConfig
from wave_executor._core.graph import build_graph
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
from wave_executor._core.run_clock import RunClock
from wave_executor._core.status import TaskStatus
from wave_executor._core.store_protocol import RunStore
from wave_executor._core.triggers import TriggerRule, parse_rules
from wave_executor._core.upstream import DEP_OUTPUTS
from wave_executor._runtime.attempt import UNSET, NotAwaitableError, not_awaitable
from wave_executor._runtime.dag_run import DagRun
from wave_executor._runtime.direct_nodes import (
    DirectNode,
    direct_nodes,
    direct_outcome,
    direct_spec,
    run_defaults,
)
from wave_executor._runtime.events import EventHub, EventSink, RunEvents
from wave_executor._runtime.node_events import NodeEvents
from wave_executor._runtime.node_runners import DagNodeRunner, NodeRunner, inject_upstream
from wave_executor._runtime.observe import ExecutionProbe
from wave_executor._runtime.observe import execution as observed_execution
from wave_executor._runtime.progress_feed import feed_for
from wave_executor._runtime.settings import RunSettings, group_budget, resolve_groups, run_settings
from wave_executor.progress import Progress

__all__ = ["MetaRun"]


class _NodeFailed(Exception):
    """Raised by a node body so that the node run marks the node failed."""


def _node_run_settings(
    cfg: WaveConfig,
    graph: Any,
    retry: RetryPolicy,
    timeout: float,
    retry_overrides: Mapping[Hashable, RetryPolicy],
    timeout_overrides: Mapping[Hashable, float | None],
) -> RunSettings:
    """The node run: the MetaDAG's caps, deadline and overload classes; an exact
    (non-adaptive) cap, no breakers, never stopping early; by default the retry
    policy and attempt timeout of the direct nodes, overridden per node for the
    others (``run_defaults``)."""
    settings = run_settings(cfg, graph, True, retry_overrides, timeout_overrides)
    return dataclasses.replace(
        settings, adaptive=False, attempt_timeout=timeout, retry=retry, breakers=None,
        stop_on_first_error=False, allow_partial_success=False,
    )  # fmt: skip


def _binding_groups(
    nodes: Mapping[Hashable, MetaDAGNodeSpec], config: WaveConfig
) -> dict[Hashable, Hashable] | None:
    """``groups=`` for the node run: group = specialist, else the node's own id.

    Only groups whose budget can bind (smaller than both the group's size and
    the global cap) are passed on: the others never limit anything, and the
    engine's grouped ready queue costs time per group.
    """
    members: dict[Hashable, list[Hashable]] = {}
    for node_id, spec in nodes.items():
        members.setdefault(spec.specialist or node_id, []).append(node_id)
    groups: dict[Hashable, Hashable] = {}
    for name, ids in members.items():
        if group_budget(config, name) < min(len(ids), config.max_parallel_per_wave):
            groups.update(dict.fromkeys(ids, name))
    return groups or None


class MetaRun:
    """One execution of a MetaDAG; use once."""

    def __init__(
        self,
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
        *,
        rules: Mapping[Hashable, TriggerRule] | None = None,
        progress: Progress | None = None,
    ) -> None:
        self._rules = rules or {}
        for node_id, spec in nodes.items():
            if spec.node_type not in runners:
                raise ValueError(
                    f"node {node_id!r} has unknown node_type {spec.node_type!r}; "
                    f"known: {sorted(runners)}"
                )
        self._external = dict(external_upstream or {})
        if self._external and inject:
            _check_no_shadowing(dependencies, self._external)
        self._nodes, self._deps, self._runners = nodes, dependencies, runners
        self._cfg, self._inject = config, inject
        self._store, self._run_id = store, run_id  # a durable run records every node under it
        self._loop = asyncio.get_running_loop()
        self._clock = RunClock(self._loop.time(), time.time())
        self.execution_id = str(uuid.uuid4())
        self._progress = feed_for(progress, self.execution_id)
        self._events: RunEvents = hub.stream(self.execution_id, config.emit_events, self._clock)
        self._outcomes: dict[Hashable, MetaDAGNodeResult] = {}
        self._starts: dict[Hashable, float] = {}  # node -> loop time of its (first) start
        self._direct: dict[Hashable, DirectNode] = {}
        if store is None and type(runners.get("dag")) is DagNodeRunner:
            self._direct = direct_nodes(nodes, config)
        self._node_events: NodeEvents | None = None
        if self._events.active:
            self._node_events = NodeEvents(
                self._events, self._direct, self._outcomes, self._starts, self._now, task_events
            )
        self._retry_specs: dict[Hashable, Any] = {}  # node -> the spec its next attempt reuses

    def _now(self) -> float:
        return self._loop.time()

    # -- the run ---------------------------------------------------------------

    async def run(self) -> MetaDAGResult:
        node_types = {node_id: spec.node_type for node_id, spec in self._nodes.items()}
        probe = observed_execution(
            "meta", self.execution_id, self._run_id, len(self._nodes), node_types
        )
        if probe is None:
            return await self._run(None)
        try:
            result = await self._run(probe)
        except BaseException as exc:
            probe.end("cancelled", exc)
            raise
        probe.end(
            "success" if result.succeeded else "failed",
            None,
            total_nodes=result.total_nodes,
            successful_nodes=result.successful_nodes,
            failed_nodes=result.failed_nodes,
            skipped_nodes=result.skipped_nodes,
        )
        return result

    async def _run(self, probe: ExecutionProbe | None) -> MetaDAGResult:
        events, nodes = self._events, self._nodes
        start = self._now()
        progress = self._progress
        try:
            if progress is not None:
                progress.start(len(nodes))
            events.emit(EventType.META_EXECUTION_STARTED, None, total_nodes=len(nodes))
            outer = await self._node_run(probe).run()
            rows = outer.task_results

            def from_row(node_id: Hashable) -> MetaDAGNodeResult:
                return _from_node_run(
                    node_id, nodes[node_id], rows[node_id], outer.execution_id, self._direct,
                    self._starts,
                )  # fmt: skip

            # A node succeeded exactly when its task in the node run did.
            successful, skipped = outer.total_successful, outer.total_skipped
            by_rule = outer.total_skipped_by_rule
            end = self._now()
            duration_ms = (end - start) * 1000.0
            result = MetaDAGResult(
                execution_id=self.execution_id,
                node_results=NodeResults(nodes, self._outcomes, from_row),
                total_nodes=len(nodes),
                successful_nodes=successful,
                failed_nodes=len(nodes) - successful - skipped,
                skipped_nodes=skipped,
                skipped_by_rule_nodes=by_rule,
                duration_ms=duration_ms,
                started_at=self._clock.wall(start),
                completed_at=self._clock.wall(end),
                dependencies=self._deps,
            )
            events.emit(
                EventType.META_EXECUTION_COMPLETED,
                None,
                total_nodes=result.total_nodes,
                successful_nodes=result.successful_nodes,
                failed_nodes=result.failed_nodes,
                skipped_nodes=result.skipped_nodes,
                duration_ms=duration_ms,
            )
            await events.drain()
        finally:
            if progress is not None:
                progress.close()
            await events.close()
        return result

    def _node_run(self, probe: ExecutionProbe | None) -> DagRun:
        """The engine run whose tasks are the nodes."""
        nodes, cfg = self._nodes, self._cfg
        specs = dict.fromkeys(nodes)
        graph = build_graph(specs, self._deps)
        retry, timeout, retry_overrides, timeout_overrides = run_defaults(nodes, self._direct)
        settings = _node_run_settings(
            cfg, graph, retry, timeout, retry_overrides, timeout_overrides
        )
        groups = resolve_groups(cfg, graph, specs, _binding_groups(nodes, cfg), adaptive=False)
        sink: EventSink = self._node_events if self._node_events is not None else self._events
        return DagRun(
            graph=graph,
            specs=specs,
            body=self._node_body,
            settings=settings,
            events=sink,
            execution_id=str(uuid.uuid4()),
            dependencies=self._deps,
            groups=groups,
            clock=self._clock,
            rules=parse_rules(self._rules, graph.index),
            probe=probe,
            progress=self._progress,
        )

    # -- one node ----------------------------------------------------------------

    def _upstream_of(self, wrapped: Any) -> dict[Any, Any]:
        """What the node gets as ``_upstream_outputs``: its own copy of the
        structure, so a node that edits it cannot change an upstream's result."""
        external = self._external
        fresh = {k: copy_outputs(v) for k, v in external.items()} if external else {}
        # The node run's specs are None: a node with upstream nodes gets
        # {"spec": None, "_dep_outputs": ...}, a node without them None.
        upstream = wrapped[DEP_OUTPUTS] if wrapped is not None else {}
        for up, output in upstream.items():
            done = self._outcomes.get(up)
            if done is not None and done.nested is not None:
                fresh[up] = nested_outputs(done.nested)
            else:
                fresh[up] = copy_outputs(output)
        return fresh

    async def _node_body(self, node_id: Hashable, wrapped: Any) -> Any:
        node = self._direct.get(node_id)
        if node is not None:
            return await self._run_direct(node_id, node, wrapped)
        return await self._run_node(node_id, wrapped)

    async def _run_direct(self, node_id: Hashable, node: DirectNode, wrapped: Any) -> Any:
        """A plain task of the node run: retried and timed by it."""
        if node_id not in self._starts:  # (NODE_STARTED came with the node run's TASK_STARTED)
            self._starts[node_id] = self._now()
        # A run of its own gives every attempt the same spec (built once per run).
        retry_specs = self._retry_specs
        spec = retry_specs.pop(node_id, None) if retry_specs else None
        if spec is None:
            upstream = self._upstream_of(wrapped) if self._inject else None
            spec = direct_spec(node, upstream or None)  # no upstream: the spec as it is
        task_id = node.task_id
        pending = UNSET
        try:
            pending = node.body(task_id, spec)  # one task: no dependencies, nothing injected
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

    async def _run_node(self, node_id: Hashable, wrapped: Any) -> Any:
        """A node with a run of its own, by its kind's runner."""
        spec = self._nodes[node_id]
        events = self._events
        start = self._starts[node_id] = self._now()
        if events.active:
            events.emit(EventType.NODE_STARTED, node_id, node_id=node_id, node_type=spec.node_type)
        outcome: NodeOutcome | None = None
        error: str | None = None
        runner = self._runners[spec.node_type]
        try:
            upstream = self._upstream_of(wrapped) if self._inject else {}
            reported = await self._call_runner(
                node_id, runner, self._run_spec(node_id, upstream), upstream
            )
            outcome = _checked(reported, runner, node_id)
        except Exception as exc:  # the runner itself broke: the node failed
            error = f"{type(exc).__name__}: {exc}"
        end = self._now()
        duration_ms = (end - start) * 1000.0
        if outcome is None:
            outcome = NodeOutcome("failed", error=error)
        self._outcomes[node_id] = MetaDAGNodeResult(
            node_id=node_id,
            status=outcome.status,
            task_outputs=outcome.task_outputs,
            dag_result=outcome.dag_result,
            error=outcome.error,
            started_at=self._clock.wall(start),
            completed_at=self._clock.wall(end),
            duration_ms=duration_ms,
            node_type=spec.node_type,
            task_results=outcome.task_results,
            nested=outcome.nested,
            task_dependencies=spec.task_dependencies,
        )
        if events.active:
            events.emit(
                EventType.NODE_COMPLETED,
                node_id,
                node_id=node_id,
                status=outcome.status,
                duration_ms=duration_ms,
            )
        if outcome.status != "success":
            raise _NodeFailed(outcome.error or outcome.status)
        return outcome.task_outputs

    def _run_spec(self, node_id: Hashable, upstream: dict[Any, Any]) -> MetaDAGNodeSpec:
        """The spec the runner gets: tasks carrying upstream outputs, the run's store."""
        spec = self._nodes[node_id]
        if self._inject and spec.tasks and upstream:  # no upstream: the specs as they are
            spec = spec.with_tasks(inject_upstream(spec.tasks, upstream))
        if self._store is not None and spec.store is None:
            node_run = f"{self._run_id}/{node_id}" if self._run_id else None
            spec = dataclasses.replace(spec, store=self._store, run_id=node_run)
        return spec

    async def _call_runner(
        self,
        node_id: Hashable,
        runner: NodeRunner,
        spec: MetaDAGNodeSpec,
        upstream: dict[Any, Any],
    ) -> Any:
        translate = self._node_events
        if translate is not None and translate.task_events and _takes_events(runner):
            run_with_events: Any = runner.run  # not part of the NodeRunner protocol
            return await run_with_events(spec, upstream, events=translate.forwarder(node_id))
        return await runner.run(spec, upstream)


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
