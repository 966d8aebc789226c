"""``DAGExecutor``: validates a graph, wires the pieces, and runs it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Any

from wave_executor._core.breaker import CircuitBreaker
from wave_executor._core.config import WaveConfig
from wave_executor._core.graph import build_graph
from wave_executor._core.records import DAGExecutionResult
from wave_executor._runtime.dag_run import BreakerSettings, DagRun, RunSettings
from wave_executor._runtime.events import EventCallback, EventHub
from wave_executor._runtime.limiter import AdaptiveSemaphore

__all__ = ["DAGExecutor"]


class DAGExecutor:
    """Runs a dependency graph of async tasks, each as soon as its own dependencies succeed.

    One executor may run many graphs, one after another or at the same time;
    event callbacks and circuit breakers with an explicit ``circuit_key``
    belong to the executor and so are shared by its runs.
    """

    def __init__(self, config: WaveConfig | None = None) -> None:
        self.config = config if config is not None else WaveConfig()
        self._hub = EventHub()
        self._shared_breakers: dict[Hashable, CircuitBreaker] = {}
        self._last_task_breakers: dict[Hashable, CircuitBreaker] = {}

    def on_event(self, callback: EventCallback) -> EventCallback:
        """Register ``callback(event_type, event)`` (sync or async); returns it, so it
        can be used as a decorator."""
        return self._hub.subscribe(callback)

    def remove_event_callback(self, callback: EventCallback) -> None:
        self._hub.unsubscribe(callback)

    def circuit_breaker_states(self) -> dict[Hashable, dict[str, Any]]:
        """States of the breakers that exist: shared ones and the last run's per-task ones."""
        states = {k: b.to_dict() for k, b in self._last_task_breakers.items()}
        states.update({k: b.to_dict() for k, b in self._shared_breakers.items()})
        return states

    def reset_circuit_breakers(self) -> None:
        """Forget every breaker (all circuits closed)."""
        self._shared_breakers.clear()
        self._last_task_breakers = {}

    async def execute(
        self,
        tasks: Mapping[Any, Any],
        dependencies: Mapping[Any, Iterable[Any]] | None,
        task_executor: Callable[[Any, Any], Awaitable[Any]],
        config: WaveConfig | None = None,
        inject_dep_outputs: bool = False,
        specialist_semaphore: AdaptiveSemaphore | None = None,
        *,
        priority_costs: Mapping[Any, float] | None = None,
    ) -> DAGExecutionResult:
        """Run every task of ``tasks`` once its dependencies have succeeded.

        ``priority_costs`` optionally maps task ids to a cost estimate (for
        example expected seconds); when concurrency is capped, the task with
        the longest remaining chain of cost to an exit goes first. Without it
        the chain is counted in tasks. Tasks missing from it are estimated at
        the mean of the given costs.

        Raises ``ValueError`` (``UnknownDependencyError``) for a dependency on
        an unknown task and ``WaveCircularDependencyError`` for a cycle, both
        before anything runs.
        """
        if not callable(task_executor):
            raise TypeError(f"task_executor must be an async callable, got {task_executor!r}")
        cfg = config if config is not None else self.config
        deps = dependencies if dependencies is not None else {}
        graph = build_graph(tasks, deps, priority_costs)
        execution_id = str(uuid.uuid4())
        events = self._hub.stream(execution_id, enabled=cfg.emit_events)
        run = DagRun(
            graph=graph,
            specs=tasks,
            dependencies=deps,
            body=task_executor,
            settings=_settings(cfg, inject_dep_outputs),
            events=events,
            execution_id=execution_id,
            shared_breakers=self._shared_breakers,
            specialist=specialist_semaphore,
        )
        try:
            result = await run.run()
            await events.drain()
        finally:
            await events.close()
            self._last_task_breakers = run.task_breakers
        return result


def _settings(cfg: WaveConfig, inject_dep_outputs: bool) -> RunSettings:
    breakers = None
    if cfg.circuit_breaker_enabled:
        breakers = BreakerSettings(
            cfg.circuit_failure_threshold, cfg.circuit_success_threshold,
            cfg.circuit_recovery_timeout,
        )  # fmt: skip
    return RunSettings(
        cap=cfg.max_parallel_per_wave,
        attempt_timeout=cfg.default_task_timeout,
        total_timeout=cfg.total_execution_timeout,
        retry=cfg.effective_retry_policy(),
        stop_on_first_error=cfg.stop_on_first_error,
        allow_partial_success=cfg.allow_partial_success,
        min_success_rate=cfg.min_success_rate,
        inject_dep_outputs=inject_dep_outputs,
        breakers=breakers,
    )
