"""One level-mode execution: waves run one after another, each a DAG run.

``LevelExecutor`` (``levels.py``) validates and wires; this runs the waves,
enforces the per-wave and total time budgets, the pause between waves and
the success gate, merges each wave's outputs, and passes the wave runs'
task events on under the level run's id.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from wave_executor._core.aggregation import aggregate
from wave_executor._core.breaker import CircuitBreakerRegistry
from wave_executor._core.config import WaveConfig
from wave_executor._core.event_payloads import run_totals
from wave_executor._core.graph import build_graph
from wave_executor._core.names import EventType, StopReason
from wave_executor._core.records import DAGExecutionResult, TaskResult
from wave_executor._core.retry import RetryPolicy
from wave_executor._core.run_clock import RunClock
from wave_executor._core.skips import skip_error, unsuccessful_deps
from wave_executor._core.status import TaskStatus
from wave_executor._core.triggers import (
    Decision,
    SkipReason,
    TriggerRule,
    decide,
    rule_skip_error,
    skip_reason,
)
from wave_executor._core.upstream import DEP_OUTPUTS, with_outputs
from wave_executor._core.waves import ExecutionContext, WaveDefinition, WaveResult, unmet_policy
from wave_executor._runtime.attempt import TaskBody
from wave_executor._runtime.dag_run import DagRun
from wave_executor._runtime.engine import end_probe
from wave_executor._runtime.events import EventSink, RunEvents, TaggedEvents
from wave_executor._runtime.limiter import AdaptiveSemaphore
from wave_executor._runtime.observe import ExecutionProbe
from wave_executor._runtime.observe import execution as observed_execution
from wave_executor._runtime.progress_feed import ProgressFeed
from wave_executor._runtime.settings import GroupSpec, KeyFunction, resolve_groups, run_settings

__all__ = ["LevelRun", "WaveOptions"]

V = TypeVar("V")

# The wave runs' own run-level events: the level run sends its own instead.
_WAVE_RUN_EVENTS = frozenset({EventType.EXECUTION_STARTED, EventType.EXECUTION_COMPLETED})


@dataclasses.dataclass(frozen=True, slots=True)
class WaveOptions:
    """``execute()``'s per-task options, applied inside each wave."""

    semaphore: AdaptiveSemaphore | None
    costs: Mapping[Any, float] | None
    groups: GroupSpec | None
    retry_policies: Mapping[Any, RetryPolicy] | None
    circuit_key: KeyFunction | None
    breakers: CircuitBreakerRegistry  # the executor's keyed breakers


def _only(mapping: Mapping[Any, V] | None, keys: Mapping[Any, Any]) -> dict[Any, V] | None:
    return None if mapping is None else {k: v for k, v in mapping.items() if k in keys}


class LevelRun:
    """One level-mode execution; use once."""

    def __init__(
        self,
        tasks: Mapping[Any, Any],
        dependencies: Mapping[Any, Iterable[Any]],
        waves: list[list[Any]],
        body: TaskBody,
        config: WaveConfig,
        events: RunEvents,
        inject: bool,
        wave_options: WaveOptions,
        rules: Mapping[Any, TriggerRule] | None = None,
        progress: ProgressFeed | None = None,
    ) -> None:
        self._tasks, self._deps, self._waves = tasks, dependencies, waves
        self._progress = progress
        #: Task id -> non-default trigger rule; decided at the barrier before each wave.
        self._rules: Mapping[Any, TriggerRule] = rules or {}
        self._body, self._cfg, self._events = body, config, events
        self._inject, self._options = inject, wave_options
        self._results: dict[Any, TaskResult] = {}
        self._loop = asyncio.get_running_loop()
        self._clock = RunClock(self._loop.time(), time.time())
        events.clock = self._clock
        self._probe: ExecutionProbe | None = None  # spans and metrics (observe.py)

    def _wall(self, t: float) -> datetime:
        return self._clock.wall(t)

    async def run(self, execution_id: str) -> ExecutionContext:
        probe = self._probe = observed_execution("level", execution_id, None, len(self._tasks))
        if probe is None:
            return await self._run(execution_id)
        try:
            ctx = await self._run(execution_id)
        except BaseException as exc:
            probe.end("cancelled", exc)
            raise
        probe.end(
            "success" if ctx.succeeded else "failed",
            None,
            total_tasks=ctx.total_tasks,
            successful_tasks=ctx.total_successful,
            failed_tasks=ctx.total_failed,
            skipped_tasks=ctx.total_skipped,
            stopped_reason=ctx.stopped_reason,
        )
        return ctx

    async def _run(self, execution_id: str) -> ExecutionContext:
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
        progress = self._progress
        try:
            if progress is not None:
                progress.start(len(self._tasks))
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
                **run_totals(ctx, ctx.total_failed - ctx.total_timeout),
                total_waves=ctx.total_waves,
                completed_waves=ctx.completed_waves,
                duration_ms=round(ctx.duration_ms, 3),
                stopped_reason=stopped,
            )
            await events.drain()
        finally:
            if progress is not None:
                progress.close()
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
        t0 = loop.time()
        events.emit(
            EventType.WAVE_STARTED, None, wave_index=k, wave_id=wave_id, total_tasks=len(ids)
        )
        results: dict[Any, TaskResult] = {}
        runnable: dict[Any, Any] = {}
        for task_id in ids:
            if self._rules:
                skipped = self._decide(task_id, wave_id, k, t0)
                if skipped is None:
                    runnable[task_id] = self._spec_for(task_id)
                else:
                    results[task_id] = skipped
                continue
            bad = self._unsuccessful_deps(task_id)
            if bad:
                error = skip_error(bad)
                results[task_id] = self._skipped(task_id, wave_id, error, t0)
                if self._probe is not None:
                    self._probe.task_ended(task_id, "skipped", error)
                events.emit(
                    EventType.TASK_SKIPPED, task_id, failed_deps=bad, wave_id=wave_id, wave_index=k
                )
            else:
                runnable[task_id] = self._spec_for(task_id)
        per_wave = cfg.per_wave_timeout
        wave_cut = per_wave < remaining
        stopped: StopReason | None = None
        timed_out = False
        if runnable:
            if wave_cut:
                budget, message = per_wave, f"per-wave timeout ({per_wave:g}s) reached in {wave_id}"
            else:
                total = cfg.total_execution_timeout
                budget, message = remaining, f"total execution timeout ({total:g}s) reached"
            dag = await self._run_wave_tasks(runnable, k, budget, message)
            for task_id in runnable:
                results[task_id] = dag.task_results[task_id]
            if dag.stopped_reason == StopReason.TOTAL_TIMEOUT:
                timed_out = wave_cut
                stopped = None if wave_cut else StopReason.TOTAL_TIMEOUT
            elif dag.stopped_reason is not None:
                stopped = StopReason(dag.stopped_reason)
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
        deps = self._deps.get(task_id)
        if not self._inject or not deps:
            return spec
        results = self._results
        outputs = {
            d: results[d].output
            for d in deps
            if not self._rules or results[d].status == TaskStatus.SUCCESS
        }
        return with_outputs(spec, DEP_OUTPUTS, outputs)

    def _decide(self, task_id: Any, wave_id: str, k: int, now: float) -> TaskResult | None:
        """A task's trigger rule at the barrier (its upstreams have all ended): None
        to run it, else its skipped result (the TASK_SKIPPED event is sent)."""
        rule = self._rules.get(task_id, TriggerRule.ALL_SUCCESS)
        deps = list(dict.fromkeys(self._deps.get(task_id, ())))
        counts = [0, 0, 0]  # succeeded, failed, skipped by their rule
        shown: dict[Any, str] = {}
        for d in deps:
            r = self._results[d]
            shown[d] = str(r.status)
            if r.status == TaskStatus.SUCCESS:
                counts[0] += 1
            elif r.skip_reason == SkipReason.RULE_NOT_MET:
                counts[2] += 1
                shown[d] += " (rule not met)"
            else:
                counts[1] += 1
        if decide(rule, len(deps), *counts) is Decision.RUN:
            return None
        reason = skip_reason(rule, counts[1])
        bad = self._unsuccessful_deps(task_id)
        if reason is SkipReason.UPSTREAM_FAILED and rule is TriggerRule.ALL_SUCCESS:
            error = skip_error(bad)
        else:
            error = rule_skip_error(rule, shown)
        result = self._skipped(task_id, wave_id, error, now)
        result.skip_reason = reason
        if self._probe is not None:
            self._probe.task_ended(task_id, "skipped", error)
        self._events.emit(
            EventType.TASK_SKIPPED, task_id, failed_deps=bad, skip_reason=reason.value,
            trigger_rule=rule.value, wave_id=wave_id, wave_index=k,
        )  # fmt: skip
        return result

    def _unsuccessful_deps(self, task_id: Any) -> list[Any]:
        results = self._results
        return unsuccessful_deps(
            self._deps.get(task_id, ()), lambda d: results[d].status == TaskStatus.SUCCESS
        )

    async def _run_wave_tasks(
        self, specs: dict[Any, Any], k: int, budget: float, deadline_message: str
    ) -> DAGExecutionResult:
        """One engine run over wave ``k``'s runnable tasks (they share no edges)."""
        cfg, options, wave_id = self._cfg, self._options, f"wave-{k}"
        graph = build_graph(specs, {}, _only(options.costs, specs))
        settings = dataclasses.replace(
            run_settings(cfg, graph, False, _only(options.retry_policies, specs)),
            total_timeout=budget,
            deadline_message=deadline_message,
        )
        groups = options.groups
        if isinstance(groups, Mapping):
            groups = {t: g for t, g in groups.items() if t in specs}
        wave_groups = resolve_groups(cfg, graph, specs, groups)
        events: EventSink = self._events
        if events.active:
            events = TaggedEvents(events, {"wave_id": wave_id, "wave_index": k}, _WAVE_RUN_EVENTS)
        probe = None
        if self._probe is not None:
            attributes = {"wave_id": wave_id, "wave_index": k, "total_tasks": len(specs)}
            probe = self._probe.child("wave", attributes)
        run = DagRun(
            graph=graph,
            specs=specs,
            body=self._body,
            settings=settings,
            events=events,
            execution_id=self._events.execution_id,
            breakers=options.breakers,
            circuit_key=options.circuit_key,
            groups=wave_groups,
            semaphore=options.semaphore,
            clock=self._clock,
            wave_id=wave_id,
            probe=probe,
            progress=self._progress,
        )
        if probe is None:
            return await run.run()
        try:
            result = await run.run()
        except BaseException as exc:
            probe.end("cancelled", exc)
            raise
        end_probe(probe, result)
        return result

    def _skipped(self, task_id: Any, wave_id: str, error: str, now: float) -> TaskResult:
        if self._progress is not None:
            self._progress.task_done(task_id, TaskStatus.SKIPPED)
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
                if self._probe is not None:
                    self._probe.task_ended(task_id, "skipped", error)
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
