"""MetaDAG's machinery: the node records, the node runners and the composition.

A MetaDAG run is *one* ``DAGExecutor.execute()`` over the nodes: each node
is a task whose body runs the node with its kind's ``NodeRunner``. So node
scheduling, concurrency caps (global and per group), skipping downstream of
a failure and cancellation are the DAG executor's, not a second scheduler.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import uuid
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from wave_executor._core.config import WaveConfig
from wave_executor._core.records import DAGExecutionResult, TaskResult
from wave_executor._core.restart import RestartSettings
from wave_executor._core.store_protocol import RunStore
from wave_executor._runtime.checkpoints import ReconcilerCheckpoints
from wave_executor._runtime.events import EventHub, RunEvents
from wave_executor._runtime.executor import DAGExecutor
from wave_executor.reconciler import WaveReconciler

__all__ = [
    "BAD_RECONCILER_STATUSES",
    "DagNodeRunner",
    "MetaDAGNodeResult",
    "MetaDAGNodeSpec",
    "MetaDAGResult",
    "MetaNodeRunner",
    "NestedMeta",
    "NodeOutcome",
    "NodeRunner",
    "ReconcilerNodeRunner",
    "compose",
    "default_runners",
    "inject_upstream",
]

#: Reconciler task statuses that make a reconciler node fail at once.
BAD_RECONCILER_STATUSES = frozenset({"failed", "timeout", "blocked", "skipped"})


# -- records -------------------------------------------------------------------


@dataclass
class MetaDAGNodeSpec:
    """One node of a MetaDAG (0.3.0's fields first, in 0.3.0's order).

    ``node_type`` names the runner: ``"dag"`` (a DAGExecutor run of
    ``tasks``), ``"reconciler"`` (a WaveReconciler until its tasks are
    complete), ``"meta"`` (the nested MetaDAG ``meta``) or any kind
    registered with ``MetaDAG.register_node_type``.
    """

    node_id: Hashable
    tasks: Mapping[Any, Any] = field(default_factory=dict)
    task_executor: Callable[[Any, Any], Awaitable[Any]] | None = None
    specialist: str | None = None
    node_type: str = "dag"
    task_dependencies: Mapping[Any, Iterable[Any]] = field(default_factory=dict)
    config: WaveConfig | None = None
    inject_dep_outputs: bool = False
    policies: Mapping[Any, str] | str | None = None
    completion_timeout: float = 300.0
    completion_poll_interval: float = 0.1
    # -- ours (keyword use recommended) --
    #: "dag" nodes: succeed when ``dag_result.succeeded`` (the config's
    #: ``allow_partial_success``/``min_success_rate``) instead of only when
    #: every task succeeded.
    accept_partial: bool = False
    #: "reconciler" nodes: passed to WaveReconciler / update().
    poll_interval_s: float = 2.0
    restart_settings: RestartSettings | None = None
    max_restart_attempts: Mapping[Any, int] | int | None = None
    restart_backoff_base: Mapping[Any, float] | float = 3.0
    timeouts: Mapping[Any, float | None] | float | None = None
    #: "meta" nodes: the nested MetaDAG.
    meta: NestedMeta | None = None
    #: Durability: "dag" nodes record and resume their run in ``store`` under
    #: ``run_id``; "reconciler" nodes checkpoint there (reconciler id ``run_id``).
    #: ``MetaDAG.execute(store=..., run_id=...)`` fills both in for every node.
    store: RunStore | None = None
    run_id: str | None = None


@dataclass
class NodeOutcome:
    """What a ``NodeRunner`` reports for one node."""

    status: str  # "success", "failed" or "timeout"
    task_outputs: dict[Any, Any] = field(default_factory=dict)
    task_results: dict[Any, dict[str, Any]] = field(default_factory=dict)
    dag_result: DAGExecutionResult | None = None
    error: str | None = None
    nested: MetaDAGResult | None = None


@dataclass
class MetaDAGNodeResult:
    """The outcome of one node. ``status``: success, failed, timeout or skipped."""

    node_id: Hashable
    status: str
    task_outputs: dict[Any, Any] = field(default_factory=dict)
    dag_result: DAGExecutionResult | None = None
    error: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: float = 0.0
    node_type: str = "dag"
    #: task id -> a JSON-ready summary of the task (TaskResult.to_dict() for "dag" nodes).
    task_results: dict[Any, dict[str, Any]] = field(default_factory=dict)
    #: "meta" nodes: the nested run's result.
    nested: MetaDAGResult | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "success"

    def to_dict(self) -> dict[str, Any]:
        return {
            "node_id": _key(self.node_id),
            "node_type": self.node_type,
            "status": self.status,
            "task_outputs": _jsonable(self.task_outputs),
            "task_results": _jsonable(self.task_results),
            "dag_result": None if self.dag_result is None else _jsonable(self.dag_result.to_dict()),
            "error": self.error,
            "started_at": None if self.started_at is None else self.started_at.isoformat(),
            "completed_at": None if self.completed_at is None else self.completed_at.isoformat(),
            "duration_ms": round(self.duration_ms, 2),
            "nested": None if self.nested is None else self.nested.to_dict(),
        }


@dataclass
class MetaDAGResult:
    """The outcome of one ``MetaDAG.execute()``."""

    execution_id: str
    node_results: dict[Hashable, MetaDAGNodeResult]
    total_nodes: int
    successful_nodes: int
    failed_nodes: int
    skipped_nodes: int
    duration_ms: float
    started_at: datetime | None = None
    completed_at: datetime | None = None

    @property
    def succeeded(self) -> bool:
        """Every node succeeded (True for an empty MetaDAG)."""
        return self.successful_nodes == self.total_nodes

    def to_dict(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "total_nodes": self.total_nodes,
            "successful_nodes": self.successful_nodes,
            "failed_nodes": self.failed_nodes,
            "skipped_nodes": self.skipped_nodes,
            "succeeded": self.succeeded,
            "duration_ms": round(self.duration_ms, 2),
            "started_at": None if self.started_at is None else self.started_at.isoformat(),
            "completed_at": None if self.completed_at is None else self.completed_at.isoformat(),
            "node_results": {_key(k): r.to_dict() for k, r in self.node_results.items()},
        }


def _key(key: Any) -> Any:
    return key if isinstance(key, str | int | float | bool) or key is None else str(key)


def _jsonable(value: Any) -> Any:
    """A JSON-ready copy: dict keys become strings where needed, unknown objects repr()."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {_key(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return _jsonable(to_dict())
    return repr(value)


# -- the node protocol ---------------------------------------------------------


@runtime_checkable
class NodeRunner(Protocol):
    """Runs one node of a kind. ``spec.tasks`` already carry ``_upstream_outputs``
    (when the MetaDAG injects them); ``upstream_outputs`` is
    ``{upstream_node_id: task_outputs}``. Return a ``NodeOutcome``; raising
    makes the node "failed" with the exception as its error. Cancellation
    must stop everything the runner started."""

    async def run(self, spec: MetaDAGNodeSpec, upstream_outputs: dict[Any, Any]) -> NodeOutcome: ...


class NestedMeta(Protocol):
    """What a "meta" node needs of its nested MetaDAG."""

    async def execute(
        self, *, upstream_outputs: Mapping[Any, Any] | None = None
    ) -> MetaDAGResult: ...


def inject_upstream(tasks: Mapping[Any, Any], upstream: Mapping[Any, Any]) -> dict[Any, Any]:
    """Copies of ``tasks`` with ``_upstream_outputs`` (dicts get the key, others are wrapped)."""
    out: dict[Any, Any] = {}
    for task_id, spec in tasks.items():
        if isinstance(spec, dict):
            out[task_id] = {**spec, "_upstream_outputs": dict(upstream)}
        else:
            out[task_id] = {"spec": spec, "_upstream_outputs": dict(upstream)}
    return out


class DagNodeRunner:
    """``node_type="dag"``: one DAGExecutor run of the node's tasks."""

    async def run(self, spec: MetaDAGNodeSpec, upstream_outputs: dict[Any, Any]) -> NodeOutcome:
        assert spec.task_executor is not None
        executor = DAGExecutor(spec.config)
        result = await executor.execute(
            spec.tasks,
            spec.task_dependencies,
            spec.task_executor,
            inject_dep_outputs=spec.inject_dep_outputs,
            store=spec.store,
            run_id=spec.run_id if spec.store is not None else None,
        )
        results = result.task_results
        outputs = {t: r.output for t, r in results.items() if r.status == "success"}
        summaries = {t: r.to_dict() for t, r in results.items()}
        bad = {t: r for t, r in results.items() if r.status != "success"}
        if not bad:
            return NodeOutcome("success", outputs, summaries, result)
        if spec.accept_partial and result.succeeded:
            error = f"partial success: {len(bad)} of {len(results)} tasks did not succeed"
            return NodeOutcome("success", outputs, summaries, result, error)
        status = "timeout" if result.stopped_reason == "total_timeout" else "failed"
        return NodeOutcome(status, outputs, summaries, result, _describe(bad))


def _describe(bad: Mapping[Any, TaskResult]) -> str:
    parts = [f"{t!r}: {r.status}" + (f" ({r.error})" if r.error else "") for t, r in bad.items()]
    shown = "; ".join(parts[:5]) + ("; ..." if len(parts) > 5 else "")
    return f"{len(bad)} task(s) did not succeed: {shown}"


class ReconcilerNodeRunner:
    """``node_type="reconciler"``: a WaveReconciler until every task is complete.

    Fails as soon as a task is failed, timeout, blocked or skipped (it does
    not wait out ``completion_timeout``); "timeout" when ``completion_timeout``
    passes first. The reconciler is always stopped before this returns.
    """

    async def run(self, spec: MetaDAGNodeSpec, upstream_outputs: dict[Any, Any]) -> NodeOutcome:
        assert spec.task_executor is not None
        reconciler = WaveReconciler(
            spec.task_executor,
            spec.config,
            poll_interval_s=spec.poll_interval_s,
            checkpoint_store=None if spec.store is None else ReconcilerCheckpoints(spec.store),
            reconciler_id=spec.run_id or f"meta-node-{spec.node_id}",
            inject_dep_outputs=spec.inject_dep_outputs,
            restart_settings=spec.restart_settings,
        )
        changed = asyncio.Event()
        reconciler.on_event(lambda _type, _event: changed.set())
        complete: asyncio.Task[bool] | None = None
        try:
            await reconciler.start()
            await reconciler.update(
                spec.tasks,
                spec.task_dependencies,
                spec.policies,
                spec.max_restart_attempts,
                spec.restart_backoff_base,
                timeouts=spec.timeouts,
            )
            complete = asyncio.ensure_future(
                reconciler.wait_until_complete(timeout=spec.completion_timeout)
            )
            while True:
                bad = _bad_states(reconciler)
                if bad:
                    return self._outcome(reconciler, "failed", _describe_states(reconciler, bad))
                if complete.done():
                    break
                changed.clear()
                waiter = asyncio.ensure_future(changed.wait())
                try:
                    await asyncio.wait(
                        {complete, waiter},
                        timeout=spec.completion_poll_interval,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    waiter.cancel()
            if not complete.result():
                error = f"tasks not complete after completion_timeout={spec.completion_timeout} s"
                return self._outcome(reconciler, "timeout", error)
            return self._outcome(reconciler, "success", None)
        finally:
            if complete is not None and not complete.done():
                complete.cancel()
                await asyncio.wait({complete})
            await reconciler.stop()

    @staticmethod
    def _outcome(reconciler: WaveReconciler, status: str, error: str | None) -> NodeOutcome:
        outputs: dict[Any, Any] = {}
        summaries: dict[Any, dict[str, Any]] = {}
        for task_id in reconciler.get_status().task_states:
            state = reconciler.get_task_state(task_id)
            if state.status == "success":
                outputs[task_id] = state.output
            summaries[task_id] = {
                "task_id": _key(task_id),
                "status": str(state.status),
                "restart_count": state.restart_count,
                "error": state.last_error,
            }
        return NodeOutcome(status, outputs, summaries, None, error)


def _bad_states(reconciler: WaveReconciler) -> dict[Any, str]:
    states = reconciler.get_status().task_states
    return {t: str(s) for t, s in states.items() if s in BAD_RECONCILER_STATUSES}


def _describe_states(reconciler: WaveReconciler, bad: Mapping[Any, str]) -> str:
    parts = []
    for task_id, status in list(bad.items())[:5]:
        error = reconciler.get_task_state(task_id).last_error
        parts.append(f"{task_id!r}: {status}" + (f" ({error})" if error else ""))
    return f"{len(bad)} task(s) did not succeed: " + "; ".join(parts)


class MetaNodeRunner:
    """``node_type="meta"``: the nested MetaDAG ``spec.meta``, any depth.

    The outer upstream outputs reach every task of the nested graph; the
    node's ``task_outputs`` are ``{inner_node_id: inner task_outputs}`` of
    the inner nodes that succeeded.
    """

    async def run(self, spec: MetaDAGNodeSpec, upstream_outputs: dict[Any, Any]) -> NodeOutcome:
        assert spec.meta is not None
        nested = await spec.meta.execute(upstream_outputs=upstream_outputs)
        outputs = {
            node_id: r.task_outputs for node_id, r in nested.node_results.items() if r.succeeded
        }
        if nested.succeeded:
            return NodeOutcome("success", outputs, nested=nested)
        bad = [f"{n!r}: {r.status}" for n, r in nested.node_results.items() if not r.succeeded]
        error = f"{len(bad)} nested node(s) did not succeed: " + "; ".join(bad[:5])
        return NodeOutcome("failed", outputs, nested=nested, error=error)


def default_runners() -> dict[str, NodeRunner]:
    return {"dag": DagNodeRunner(), "reconciler": ReconcilerNodeRunner(), "meta": MetaNodeRunner()}


# -- the composition -----------------------------------------------------------


class _NodeFailed(Exception):
    """Raised by a node body so that the outer DAG run marks the node failed."""


def _outer_config(cfg: WaveConfig) -> WaveConfig:
    """The node-level run: caps from ``cfg``; no retries, no per-attempt timeout,
    no breakers, an exact (non-adaptive) global cap."""
    return dataclasses.replace(
        cfg,
        default_task_timeout=math.inf,
        max_retries=0,
        retry_policy=None,
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
) -> MetaDAGResult:
    """Run the nodes as one DAGExecutor run; see the module docstring."""
    for node_id, spec in nodes.items():
        if spec.node_type not in runners:
            raise ValueError(
                f"node {node_id!r} has unknown node_type {spec.node_type!r}; "
                f"known: {sorted(runners)}"
            )
    execution_id = str(uuid.uuid4())
    events: RunEvents = hub.stream(execution_id, enabled=config.emit_events)
    outcomes: dict[Hashable, MetaDAGNodeResult] = {}
    external = dict(external_upstream or {})
    starts: dict[Hashable, tuple[datetime, float]] = {}
    clock = asyncio.get_running_loop().time  # durations follow the loop's clock

    async def body(node_id: Hashable, wrapped: Any) -> Any:
        spec = nodes[node_id]
        from_nodes: dict[Any, Any] = wrapped["_dep_outputs"] if isinstance(wrapped, dict) else {}
        upstream = {**external, **from_nodes} if inject else {}
        run_spec = spec
        if inject and spec.tasks:
            run_spec = dataclasses.replace(spec, tasks=inject_upstream(spec.tasks, upstream))
        if store is not None and run_spec.store is None:
            node_run = f"{run_id}/{node_id}" if run_id else None
            run_spec = dataclasses.replace(run_spec, store=store, run_id=node_run)
        started_at = datetime.now(UTC)
        start = clock()
        starts[node_id] = (started_at, start)
        events.emit("NODE_STARTED", node_id, node_type=spec.node_type)
        outcome: NodeOutcome | None = None
        error: str | None = None
        try:
            outcome = await runners[spec.node_type].run(run_spec, upstream)
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
        )
        events.emit("NODE_COMPLETED", node_id, status=outcome.status, duration_ms=duration_ms)
        if outcome.status != "success":
            raise _NodeFailed(outcome.error or outcome.status)
        return outcome.task_outputs

    def translate(event_type: str, event: dict[str, Any]) -> None:
        node_id = event["task_id"]
        if event_type == "TASK_SKIPPED":
            events.emit("NODE_SKIPPED", node_id, failed_deps=event["failed_deps"])
        elif event_type == "TASK_FAILED" and node_id not in outcomes:
            # Cut off by total_execution_timeout (a node's own failure is recorded first).
            began = starts.get(node_id)
            duration_ms = 0.0 if began is None else (clock() - began[1]) * 1000.0
            status = event.get("status", "failed")
            events.emit("NODE_COMPLETED", node_id, status=status, duration_ms=duration_ms)

    started_at = datetime.now(UTC)
    start = clock()
    events.emit("META_EXECUTION_STARTED", None, total_nodes=len(nodes))
    executor = DAGExecutor(_outer_config(config))
    executor.on_event(translate)
    groups = _binding_groups(nodes, config)
    try:
        outer = await executor.execute(
            dict.fromkeys(nodes, None),
            dependencies,
            body,
            inject_dep_outputs=True,
            groups=groups,
        )
        node_results: dict[Hashable, MetaDAGNodeResult] = {}
        for node_id, spec in nodes.items():
            if node_id in outcomes:
                node_results[node_id] = outcomes[node_id]
                continue
            task = outer.task_results[node_id]  # skipped, or cut off by the total timeout
            began = starts.get(node_id)
            node_results[node_id] = MetaDAGNodeResult(
                node_id=node_id,
                status=str(task.status),
                error=task.error,
                started_at=None if began is None else began[0],
                completed_at=None if began is None else datetime.now(UTC),
                duration_ms=0.0 if began is None else (clock() - began[1]) * 1000.0,
                node_type=spec.node_type,
            )
        statuses = [r.status for r in node_results.values()]
        duration_ms = (clock() - start) * 1000.0
        result = MetaDAGResult(
            execution_id=execution_id,
            node_results=node_results,
            total_nodes=len(nodes),
            successful_nodes=statuses.count("success"),
            failed_nodes=sum(1 for s in statuses if s not in ("success", "skipped")),
            skipped_nodes=statuses.count("skipped"),
            duration_ms=duration_ms,
            started_at=started_at,
            completed_at=datetime.now(UTC),
        )
        events.emit(
            "META_EXECUTION_COMPLETED",
            None,
            total_nodes=result.total_nodes,
            successful_nodes=result.successful_nodes,
            failed_nodes=result.failed_nodes,
            skipped_nodes=result.skipped_nodes,
            duration_ms=duration_ms,
        )
        await events.drain()
    finally:
        await events.close()
    return result
