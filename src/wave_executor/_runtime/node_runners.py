"""The node kinds of a MetaDAG: the ``NodeRunner`` protocol and the built-in runners.

A runner turns one node spec into a ``NodeOutcome``; the MetaDAG run (``meta_run``) does the
scheduling. A user adds a kind with ``MetaDAG.register_node_type``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from wave_executor._core.breaker import CircuitBreakerRegistry
from wave_executor._core.config import WaveConfig
from wave_executor._core.meta_records import (
    MetaDAGNodeSpec,
    NodeOutcome,
    TaskSummaries,
    nested_outputs,
)
from wave_executor._core.names import EventType, StopReason
from wave_executor._core.records import TaskResult
from wave_executor._core.restart import RestartPolicy
from wave_executor._core.restart_args import restart_args
from wave_executor._core.upstream import UPSTREAM_OUTPUTS, with_outputs
from wave_executor._runtime.attempt import TaskBody
from wave_executor._runtime.checkpoints import ReconcilerCheckpoints
from wave_executor._runtime.engine import DagOptions, run_dag
from wave_executor._runtime.events import EventCallback, EventHub
from wave_executor._runtime.reconciler import WaveReconciler

__all__ = [
    "BAD_RECONCILER_STATUSES",
    "DagNodeRunner",
    "MetaNodeRunner",
    "NodeRunner",
    "ReconcilerNodeRunner",
    "default_runners",
    "describe_unsuccessful",
    "inject_upstream",
]

#: Reconciler task statuses that make a reconciler node fail at once.
BAD_RECONCILER_STATUSES = frozenset({"failed", "timeout", "blocked", "skipped"})


@runtime_checkable
class NodeRunner(Protocol):
    """Runs one node of a kind. ``spec.tasks`` already carry ``_upstream_outputs``
    (when the MetaDAG injects them); ``upstream_outputs`` is
    ``{upstream_node_id: task_outputs}``. Return a ``NodeOutcome``; raising
    makes the node "failed" with the exception as its error. Cancellation
    must stop everything the runner started."""

    async def run(self, spec: MetaDAGNodeSpec, upstream_outputs: dict[Any, Any]) -> NodeOutcome: ...


def inject_upstream(tasks: Mapping[Any, Any], upstream: Mapping[Any, Any]) -> dict[Any, Any]:
    """Copies of ``tasks`` with ``_upstream_outputs`` (dicts get the key, others are wrapped)."""
    return {
        task_id: with_outputs(spec, UPSTREAM_OUTPUTS, dict(upstream))
        for task_id, spec in tasks.items()
    }


class _TaskNodeRunner:
    """The built-in kinds that run ``spec.tasks`` with ``spec.task_executor``.

    ``events``, when given, receives the run's task events (the MetaDAG passes
    them on with ``task_events=True``).
    """

    async def run(
        self,
        spec: MetaDAGNodeSpec,
        upstream_outputs: dict[Any, Any],
        events: EventCallback | None = None,
    ) -> NodeOutcome:
        # The tasks already carry upstream_outputs; add_node checked the executor.
        assert spec.task_executor is not None
        return await self._run(spec, spec.task_executor, events)

    async def _run(
        self, spec: MetaDAGNodeSpec, body: TaskBody, events: EventCallback | None
    ) -> NodeOutcome:
        raise NotImplementedError


class DagNodeRunner(_TaskNodeRunner):
    """``node_type="dag"``: one DAG run of the node's tasks."""

    async def _run(
        self, spec: MetaDAGNodeSpec, body: TaskBody, events: EventCallback | None
    ) -> NodeOutcome:
        hub = EventHub()
        if events is not None:
            hub.subscribe(events)
        options = DagOptions(
            inject_dep_outputs=spec.inject_dep_outputs,
            store=spec.store,
            run_id=spec.run_id if spec.store is not None else None,
            backend=spec.backend,
            backends=spec.backends,
        )
        config = spec.config if spec.config is not None else WaveConfig()
        result = await run_dag(
            spec.tasks, spec.task_dependencies, body, config, options,
            hub, CircuitBreakerRegistry(),
        )  # fmt: skip
        results = result.task_results
        outputs = {t: r.output for t, r in results.items() if r.status == "success"}
        summaries = TaskSummaries(results)
        bad = {t: r for t, r in results.items() if r.status != "success"}
        if not bad:
            return NodeOutcome("success", outputs, summaries, result)
        if spec.accept_partial and result.succeeded:
            error = f"partial success: {len(bad)} of {len(results)} tasks did not succeed"
            return NodeOutcome("success", outputs, summaries, result, error)
        status = "timeout" if result.stopped_reason == StopReason.TOTAL_TIMEOUT else "failed"
        return NodeOutcome(status, outputs, summaries, result, describe_unsuccessful(bad))


def describe_unsuccessful(bad: Mapping[Any, TaskResult]) -> str:
    parts = [f"{t!r}: {r.status}" + (f" ({r.error})" if r.error else "") for t, r in bad.items()]
    shown = "; ".join(parts[:5]) + ("; ..." if len(parts) > 5 else "")
    return f"{len(bad)} task(s) did not succeed: {shown}"


class ReconcilerNodeRunner(_TaskNodeRunner):
    """``node_type="reconciler"``: a WaveReconciler until every task is complete.

    A task under "always" never completes (it is restarted after every
    exit): it counts once it is up, i.e. it exited cleanly at least once or
    is running and called ``mark_ready()``. Fails as soon as a task is
    failed, timeout, blocked or skipped (it does not wait out
    ``completion_timeout``); "timeout" when ``completion_timeout`` passes
    first. The reconciler is always stopped before this returns.
    """

    async def _run(
        self, spec: MetaDAGNodeSpec, body: TaskBody, events: EventCallback | None
    ) -> NodeOutcome:
        reconciler = WaveReconciler(
            body,
            spec.config,
            poll_interval_s=spec.poll_interval_s,
            checkpoint_store=None if spec.store is None else ReconcilerCheckpoints(spec.store),
            reconciler_id=spec.run_id or f"meta-node-{spec.node_id}",
            inject_dep_outputs=spec.inject_dep_outputs,
            restart_settings=spec.restart_settings,
        )
        changed = asyncio.Event()
        up: set[Any] = set()  # tasks seen up (a clean exit, or ready) since they started

        def watch(event_type: str, event: dict[str, Any]) -> None:
            if event_type in (EventType.TASK_COMPLETED, EventType.TASK_READY):
                up.add(event["task_id"])
            changed.set()

        reconciler.on_event(watch)
        if events is not None:
            reconciler.on_event(events)
        complete: asyncio.Task[bool] | None = None
        deadline: asyncio.TimerHandle | None = None
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
            # A timer, not a comparison of clock readings: a timeout of a few
            # ulps can fire "on time" without the clock reaching the deadline.
            expired: list[bool] = []

            def expire() -> None:
                expired.append(True)
                changed.set()

            deadline = asyncio.get_running_loop().call_later(spec.completion_timeout, expire)
            always = _always_tasks(spec)
            down: list[Any] = always
            while True:
                bad = _bad_states(reconciler)
                if bad:
                    return self._outcome(reconciler, "failed", _describe_states(reconciler, bad))
                late = f"after completion_timeout={spec.completion_timeout} s"
                if complete.done():
                    if not complete.result():
                        return self._outcome(reconciler, "timeout", f"tasks not complete {late}")
                    down = [t for t in down if t not in up and not _is_up(reconciler, t)]
                    if not down:
                        return self._outcome(reconciler, "success", None)
                if expired:
                    if not complete.done():
                        return self._outcome(reconciler, "timeout", f"tasks not complete {late}")
                    shown = ", ".join(map(repr, down[:5])) + (", ..." if len(down) > 5 else "")
                    error = f'"always" task(s) never up {late} (no clean exit, no mark_ready()): '
                    return self._outcome(reconciler, "timeout", error + shown)
                changed.clear()
                waiter = asyncio.ensure_future(changed.wait())
                try:
                    await asyncio.wait(
                        {waiter} if complete.done() else {complete, waiter},
                        timeout=spec.completion_poll_interval,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    waiter.cancel()
        finally:
            if deadline is not None:
                deadline.cancel()
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
                "task_id": task_id,
                "status": str(state.status),
                "restart_count": state.restart_count,
                "error": state.last_error,
            }
        return NodeOutcome(status, outputs, summaries, None, error)


def _always_tasks(spec: MetaDAGNodeSpec) -> list[Any]:
    """The node's tasks under "always": services, never "complete", so they count once up."""
    args = restart_args(
        spec.tasks, spec.policies, spec.max_restart_attempts, spec.restart_backoff_base,
        spec.timeouts,
    )  # fmt: skip
    return [t for t, policy in args.policy.items() if policy is RestartPolicy.ALWAYS]


def _is_up(reconciler: WaveReconciler, task_id: Any) -> bool:
    """Up now: its last run exited cleanly, or it runs and called ``mark_ready()``
    (what the events, when the node's config has them off, would have said)."""
    state = reconciler.get_task_state(task_id)
    return state.status == "success" or (state.status == "running" and state.ready)


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
        if spec.store is not None:  # a durable MetaDAG: the nested one records under the node
            nested = await spec.meta.execute(
                upstream_outputs=upstream_outputs, store=spec.store, run_id=spec.run_id
            )
        else:
            nested = await spec.meta.execute(upstream_outputs=upstream_outputs)
        outputs = nested_outputs(nested)  # copies: downstream edits cannot reach `nested`
        if nested.succeeded:
            return NodeOutcome("success", outputs, nested=nested)
        bad = [f"{n!r}: {r.status}" for n, r in nested.node_results.items() if not r.succeeded]
        error = f"{len(bad)} nested node(s) did not succeed: " + "; ".join(bad[:5])
        return NodeOutcome("failed", outputs, nested=nested, error=error)


def default_runners() -> dict[str, NodeRunner]:
    return {"dag": DagNodeRunner(), "reconciler": ReconcilerNodeRunner(), "meta": MetaNodeRunner()}
