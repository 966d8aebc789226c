"""One level-mode execution: waves run one after another, each a DAG run.

``LevelExecutor`` (``levels.py``) validates and wires; this runs the waves,
enforces the per-wave and total time budgets, the pause between waves and
the success gate, merges each wave's outputs, and passes the wave runs'
task events on under the level run's id.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from wave_executor._core.aggregation import aggregate
from wave_executor._core.config import WaveConfig
from wave_executor._core.names import EventType, StopReason
from wave_executor._core.records import DAGExecutionResult, TaskResult
from wave_executor._core.retry import RetryPolicy
from wave_executor._core.status import TaskStatus
from wave_executor._core.upstream import DEP_OUTPUTS, with_outputs
from wave_executor._core.waves import ExecutionContext, WaveDefinition, WaveResult, unmet_policy
from wave_executor._runtime.events import RunEvents
from wave_executor._runtime.executor import DAGExecutor
from wave_executor._runtime.limiter import AdaptiveSemaphore
from wave_executor._runtime.settings import GroupSpec, KeyFunction

__all__ = ["LevelRun", "WaveOptions"]

TaskBody = Callable[[Any, Any], Awaitable[Any]]
V = TypeVar("V")

# Events of the per-wave DAG runs that the level run replaces with its own.
_INNER_RUN_EVENTS = frozenset({EventType.EXECUTION_STARTED, EventType.EXECUTION_COMPLETED})
_ENVELOPE = frozenset({"event_type", "execution_id", "task_id", "timestamp"})


@dataclasses.dataclass(frozen=True, slots=True)
class WaveOptions:
    """``DAGExecutor.execute()`` options, narrowed to one wave's tasks."""

    specialist: AdaptiveSemaphore | None
    costs: Mapping[Any, float] | None
    groups: GroupSpec | None
    retry_policies: Mapping[Any, RetryPolicy] | None
    circuit_key: KeyFunction | None

    async def run(
        self,
        inner: DAGExecutor,
        specs: dict[Any, Any],
        body: TaskBody,
        config: WaveConfig,
    ) -> DAGExecutionResult:
        groups = self.groups
        if isinstance(groups, Mapping):
            groups = {t: g for t, g in groups.items() if t in specs}
        return await inner.execute(
            specs,
            {},
            body,
            config,
            False,  # the level run injects dependency outputs itself
            self.specialist,
            priority_costs=_only(self.costs, specs),
            groups=groups,
            retry_policies=_only(self.retry_policies, specs),
            circuit_key=self.circuit_key,
        )


def _only(mapping: Mapping[Any, V] | None, keys: Mapping[Any, Any]) -> dict[Any, V] | None:
    return None if mapping is None else {k: v for k, v in mapping.items() if k in keys}


class LevelRun:
    """One level-mode execution; use once."""

    def __init__(
        self,
        *,
        tasks: Mapping[Any, Any],
        dependencies: Mapping[Any, Iterable[Any]],
        waves: list[list[Any]],
        body: TaskBody,
        config: WaveConfig,
        events: RunEvents,
        inner: DAGExecutor,
        inject: bool,
        wave_options: WaveOptions,
    ) -> None:
        self._tasks = tasks
        self._deps = dependencies
        self._waves = waves
        self._body = body
        self._cfg = config
        self._events = events
        self._inner = inner
        self._inject = inject
        self._options = wave_options
        self._results: dict[Any, TaskResult] = {}
        self._loop = asyncio.get_running_loop()
        self._mono0 = self._loop.time()
        self._wall0 = datetime.now(UTC)
        # What the event forwarder tags task events with: the running wave.
        self._wave_index = 0
        self._timeout_error = ""
        if events.active:
            inner.on_event(self._forward)

    def _wall(self, t: float) -> datetime:
        return self._wall0 + timedelta(seconds=t - self._mono0)

    async def run(self, execution_id: str) -> ExecutionContext:
        cfg, events, loop = self._cfg, self._events, self._loop
        start = loop.time()
        ctx = ExecutionContext(
            execution_id=execution_id,
            waves=[
                WaveDefinition(f"wave-{k}", k, {t: self._tasks[t] for t in ids}, set(ids), False)
                for k, ids in enumerate(self._waves)
            ],
            config=cfg,
            started_at=self._wall(start),
        )
        deadline = start + cfg.total_execution_timeout
        try:
            events.emit(
                EventType.EXECUTION_STARTED,
                None,
                total_tasks=len(self._tasks),
                total_waves=len(ctx.waves),
            )
            stopped: str | None = None
            why = ""
            k = 0
            while k < len(self._waves):
                if k and cfg.inter_wave_delay_ms and not await self._pause(deadline):
                    stopped = StopReason.TOTAL_TIMEOUT
                    break
                remaining = deadline - loop.time()
                if remaining <= 0:
                    stopped = StopReason.TOTAL_TIMEOUT
                    break
                stopped, why = await self._run_wave(ctx, k, remaining)
                k += 1
                if stopped is not None:
                    break
            if stopped is not None:
                if stopped == "total_timeout":
                    why = f"total execution timeout ({cfg.total_execution_timeout:g}s) reached"
                self._skip_waves(ctx, k, stopped, why)
            end = loop.time()
            ctx.completed_at = self._wall(end)
            ctx.duration_s = end - start
            ctx.stopped_reason = stopped
            ctx.cancelled = stopped is not None
            events.emit(
                EventType.EXECUTION_COMPLETED,
                None,
                total_tasks=ctx.total_tasks,
                total_successful=ctx.total_successful,
                total_failed=ctx.total_failed - ctx.total_timeout,
                total_skipped=ctx.total_skipped,
                total_timeout=ctx.total_timeout,
                total_cancelled=ctx.total_cancelled,
                total_waves=ctx.total_waves,
                completed_waves=ctx.completed_waves,
                duration_ms=round(ctx.duration_ms, 3),
                stopped_reason=stopped,
            )
            await events.drain()
        finally:
            await events.close()
        return ctx

    async def _pause(self, deadline: float) -> bool:
        """Sleep ``inter_wave_delay_ms``; False if the total deadline comes first."""
        delay = self._cfg.inter_wave_delay_ms / 1000.0
        remaining = deadline - self._loop.time()
        if delay < remaining:
            await asyncio.sleep(delay)
            return True
        await asyncio.sleep(max(remaining, 0.0))
        return False

    # -- one wave ------------------------------------------------------------

    async def _run_wave(
        self, ctx: ExecutionContext, k: int, remaining: float
    ) -> tuple[str | None, str]:
        """Run wave ``k``; return why the run must stop after it (None, "") and a message."""
        cfg, events, loop = self._cfg, self._events, self._loop
        ids = self._waves[k]
        wave_id = f"wave-{k}"
        ctx.current_wave_index = k
        ctx.waves[k].dependencies_resolved = True
        self._wave_index = k
        t0 = loop.time()
        events.emit(
            EventType.WAVE_STARTED, None, wave_index=k, wave_id=wave_id, total_tasks=len(ids)
        )
        results: dict[Any, TaskResult] = {}
        runnable: dict[Any, Any] = {}
        for task_id in ids:
            bad = self._unsuccessful_deps(task_id)
            if bad:
                error = f"skipped: dependencies did not succeed: {bad!r}"
                results[task_id] = self._skipped(task_id, wave_id, error, t0)
                events.emit(
                    EventType.TASK_SKIPPED, task_id, failed_deps=bad, wave_id=wave_id, wave_index=k
                )
            else:
                runnable[task_id] = self._spec_for(task_id)
        per_wave = cfg.per_wave_timeout
        wave_cut = per_wave < remaining
        if wave_cut:
            self._timeout_error = f"per-wave timeout ({per_wave:g}s) reached in {wave_id}"
        else:
            self._timeout_error = (
                f"total execution timeout ({cfg.total_execution_timeout:g}s) reached"
            )
        stopped: str | None = None
        timed_out = False
        if runnable:
            wave_cfg = dataclasses.replace(
                cfg,
                total_execution_timeout=per_wave if wave_cut else remaining,
                emit_events=events.active,
            )
            t_inner = loop.time()
            dag = await self._options.run(self._inner, runnable, self._body, wave_cfg)
            for task_id in runnable:
                results[task_id] = self._adopt(dag, task_id, wave_id, t_inner)
            if dag.stopped_reason == "total_timeout":
                timed_out = wave_cut
                stopped = None if wave_cut else StopReason.TOTAL_TIMEOUT
            elif dag.stopped_reason is not None:
                stopped = dag.stopped_reason
        ordered = {task_id: results[task_id] for task_id in ids}
        self._results.update(ordered)
        t1 = loop.time()
        successes = [(t, r.output) for t, r in ordered.items() if r.status == TaskStatus.SUCCESS]
        wave = WaveResult(
            wave_id=wave_id,
            wave_index=k,
            task_results=ordered,
            merged_output=aggregate(cfg.aggregation_strategy, successes),
            started_at=self._wall(t0),
            completed_at=self._wall(t1),
            duration_s=t1 - t0,
            timed_out=timed_out,
        )
        ctx.wave_results[wave_id] = wave
        ctx.checkpoint_results[wave_id] = ordered  # the barrier's record (0.3.0 field)
        if events.active:
            events.emit(
                EventType.WAVE_COMPLETED,
                None,
                wave_index=k,
                wave_id=wave_id,
                total_tasks=wave.total_tasks,
                success_count=wave.success_count,
                failure_count=wave.failure_count,
                timeout_count=wave.timeout_count,
                skipped_count=wave.skipped_count,
                cancelled_count=wave.cancelled_count,
                success_rate=wave.success_rate,
                timed_out=timed_out,
                duration_ms=wave.duration_ms,
            )
        if stopped == "stop_on_first_error":
            return stopped, "the run stopped after a task failed (stop_on_first_error)"
        if stopped is not None or k == len(self._waves) - 1:
            return stopped, ""
        gate = unmet_policy(wave, cfg)
        if gate == "allow_partial_success":
            return gate, f"{wave_id} had tasks that did not succeed (allow_partial_success=False)"
        if gate == "min_success_rate":
            rate = wave.attempted_success_rate
            return gate, (
                f"the success rate of {wave_id} ({rate:.3g}) is below "
                f"min_success_rate ({cfg.min_success_rate:g})"
            )
        return None, ""

    def _spec_for(self, task_id: Any) -> Any:
        """The spec the body gets: a copy with ``_dep_outputs`` when injecting."""
        spec = self._tasks[task_id]
        if not self._inject:
            return spec
        outputs = {d: self._results[d].output for d in self._deps.get(task_id, ())}
        return with_outputs(spec, DEP_OUTPUTS, outputs)

    def _unsuccessful_deps(self, task_id: Any) -> list[Any]:
        results = self._results
        return [
            d
            for d in dict.fromkeys(self._deps.get(task_id, ()))
            if results[d].status != TaskStatus.SUCCESS
        ]

    def _adopt(self, dag: DAGExecutionResult, task_id: Any, wave_id: str, t0: float) -> TaskResult:
        """The wave run's result of a task, re-tagged with its wave and this run's clock."""
        r = dag.task_results[task_id]
        start = t0 + (r.started_at - dag.started_at).total_seconds()
        error = r.error
        if (
            r.status == TaskStatus.TIMEOUT
            and dag.stopped_reason == StopReason.TOTAL_TIMEOUT
            and error is not None
            and error.startswith("total execution timeout")
        ):
            error = self._timeout_error  # the cut was this wave's budget
        return TaskResult(
            task_id=task_id,
            wave_id=wave_id,
            status=r.status,
            output=r.output,
            error=error,
            duration_ms=r.duration_ms,
            retry_count=r.retry_count,
            started_at=self._wall(start),
            completed_at=self._wall(start + r.duration_ms / 1000.0),
        )

    def _skipped(self, task_id: Any, wave_id: str, error: str, now: float) -> TaskResult:
        at = self._wall(now)
        return TaskResult(task_id, wave_id, TaskStatus.SKIPPED, None, error, 0.0, 0, at, at)

    def _skip_waves(self, ctx: ExecutionContext, first: int, reason: str, why: str) -> None:
        """Waves ``first..`` never start: every task skipped, saying why."""
        now = self._loop.time()
        events = self._events
        for k in range(first, len(self._waves)):
            wave_id = f"wave-{k}"
            results: dict[Any, TaskResult] = {}
            for task_id in self._waves[k]:
                bad = self._unsuccessful_deps(task_id)
                error = f"skipped: {wave_id} did not run: {why}"
                if bad:
                    error += f"; dependencies did not succeed: {bad!r}"
                results[task_id] = self._results[task_id] = self._skipped(
                    task_id, wave_id, error, now
                )
                events.emit(
                    EventType.TASK_SKIPPED,
                    task_id,
                    failed_deps=bad,
                    reason=reason,
                    wave_id=wave_id,
                    wave_index=k,
                )
            at = self._wall(now)
            ctx.wave_results[wave_id] = WaveResult(
                wave_id=wave_id,
                wave_index=k,
                task_results=results,
                merged_output=aggregate(self._cfg.aggregation_strategy, []),
                started_at=at,
                completed_at=at,
                duration_s=0.0,
                executed=False,
            )

    # -- events --------------------------------------------------------------

    def _forward(self, event_type: str, event: dict[str, Any]) -> None:
        """Pass a wave run's task event on under this run's id, tagged with the wave."""
        if event_type in _INNER_RUN_EVENTS:
            return
        data = {k: v for k, v in event.items() if k not in _ENVELOPE}
        if (
            event_type == EventType.TASK_FAILED
            and "started" in data
            and data.get("status") == "timeout"
        ):
            data["error"] = self._timeout_error
        k = self._wave_index
        self._events.emit(event_type, event["task_id"], wave_id=f"wave-{k}", wave_index=k, **data)
