"""``DAGExecutor``: validates a graph, wires the pieces, and runs it."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

from wave_executor._core.backend import Backend
from wave_executor._core.breaker import CircuitBreakerRegistry
from wave_executor._core.config import WaveConfig
from wave_executor._core.fan_out import ChildId
from wave_executor._core.records import DAGExecutionResult
from wave_executor._core.retry import RetryPolicy
from wave_executor._core.store_protocol import RunStore
from wave_executor._runtime.attempt import BackendSpec
from wave_executor._runtime.engine import DagOptions, SpecialistSemaphore, run_dag
from wave_executor._runtime.executor_base import ExecutorBase
from wave_executor._runtime.settings import GroupSpec, KeyFunction
from wave_executor.progress import Progress

__all__ = ["DAGExecutor"]


class DAGExecutor(ExecutorBase):
    """Runs a dependency graph of async tasks, each as soon as its own dependencies succeed.

    One executor may run many graphs, one after another or at the same time;
    event callbacks and circuit breakers with an explicit ``circuit_key``
    belong to the executor and so are shared by its runs.
    """

    def __init__(
        self,
        config: WaveConfig | None = None,
        *,
        circuit_breakers: CircuitBreakerRegistry | None = None,
        backend: Backend | None = None,
    ) -> None:
        super().__init__(config, circuit_breakers=circuit_breakers, backend=backend)
        self._last_run_breakers = CircuitBreakerRegistry()

    def circuit_breaker_states(self) -> dict[Hashable, dict[str, Any]]:
        """States of the breakers that exist: keyed ones and the last run's per-task ones."""
        states = self._last_run_breakers.states()
        states.update(self._breakers.states())
        return states

    def reset_circuit_breakers(self) -> None:
        """Forget every breaker (all circuits closed)."""
        super().reset_circuit_breakers()
        self._last_run_breakers = CircuitBreakerRegistry()

    async def execute(
        self,
        tasks: Mapping[Any, Any],
        dependencies: Mapping[Any, Iterable[Any]] | None,
        task_executor: Callable[[Any, Any], Any],
        config: WaveConfig | None = None,
        inject_dep_outputs: bool = False,
        specialist_semaphore: SpecialistSemaphore | None = None,
        *,
        priority_costs: Mapping[Any, float] | None = None,
        groups: GroupSpec | None = None,
        retry_policies: Mapping[Any, RetryPolicy] | None = None,
        timeouts: Mapping[Any, float | None] | None = None,
        circuit_key: KeyFunction | None = None,
        store: RunStore | None = None,
        run_id: str | None = None,
        trigger_rules: Mapping[Any, str] | None = None,
        backend: Backend | None = None,
        backends: BackendSpec | None = None,
        progress: Progress | None = None,
        fan_out: Mapping[Any, Callable[[ChildId, Any], Any]] | None = None,
    ) -> DAGExecutionResult:
        """Run every task of ``tasks`` once its dependencies have succeeded.

        ``priority_costs`` optionally maps task ids to a cost estimate (for
        example expected seconds); when concurrency is capped, the task with
        the longest remaining chain of cost to an exit goes first. Without it
        the chain is counted in tasks. Tasks missing from it are estimated at
        the mean of the given costs.

        ``groups`` puts tasks into groups (a mapping task id -> group name, or
        a function ``(task_id, spec) -> name or None``); each group runs at
        most ``specialist_budgets.get(name, default_specialist_budget)``
        tasks at once, and a full group never holds up another's tasks.

        ``retry_policies`` overrides the retry policy per task and
        ``timeouts`` the per-attempt timeout (seconds; None for none);
        ``circuit_key`` is a function ``(task_id, spec) -> key or None`` that
        names the circuit breaker guarding a task.

        ``store`` makes the run durable: every attempt and outcome is recorded
        under ``run_id`` (a fresh id when omitted; see ``result.run_id``).
        Executing again with the same ``run_id`` resumes: tasks whose success
        was recorded, whose spec is unchanged and whose dependencies are all
        reused too are not called; their stored outputs stand in for them.

        ``trigger_rules`` maps task ids to the rule that decides when they run
        (``"all_done"``, ``"one_failed"``...; ``docs/trigger-rules.md``); the
        others keep ``"all_success"``. A task whose rule can no longer be met
        is skipped with ``skip_reason == "rule_not_met"`` and does not count
        against the run's success.

        ``backend`` runs the bodies elsewhere than in the event loop (default:
        the executor's ``backend``, else inline): ``ThreadBackend`` and
        ``ProcessBackend`` from ``wave_executor.backends``, ``DaskBackend`` from
        ``wave_executor.backends.dask``, or your own. ``backends`` chooses per
        task (a mapping task id -> backend, or a function ``(task_id, spec) ->
        backend or None`` for the default).

        ``progress`` is told of the run as it goes (``start(total)``, then
        ``task_done(task_id, status)`` once per task, then ``close()``), even
        with ``emit_events=False``: any ``wave_executor.progress.Progress``,
        such as ``RichProgress`` from ``wave_executor.progress.rich`` or
        ``TqdmProgress`` from ``wave_executor.progress.tqdm``. Its errors are
        logged, never raised.

        ``fan_out`` maps task ids to a function ``(child_id, item) ->
        awaitable``: such a task's output (a mapping, or any iterable, keyed
        ``0..n-1``) is split into items at run time, each run as a child task
        ``ChildId(task, key)`` with the parent's group, retry policy, timeout,
        circuit and backend. The parent ends when its children have: it
        succeeds with ``{key: child output}`` if they all did, else fails
        (``docs/fan-out.md``).

        Raises ``ValueError`` (``UnknownDependencyError``) for a dependency on
        an unknown task, for an unknown trigger rule and for a rule given to an
        unknown task, and ``WaveCircularDependencyError`` for a cycle, all
        before anything runs.
        """
        options = DagOptions(
            inject_dep_outputs, specialist_semaphore, priority_costs, groups, retry_policies,
            timeouts, circuit_key, store, run_id, trigger_rules,
            backend if backend is not None else self.backend, backends, progress, fan_out,
        )  # fmt: skip
        return await run_dag(
            tasks,
            dependencies,
            task_executor,
            config if config is not None else self.config,
            options,
            self._hub,
            self._breakers,
            self._keep_run_breakers,
        )

    def _keep_run_breakers(self, breakers: CircuitBreakerRegistry) -> None:
        self._last_run_breakers = breakers
