"""One DAG execution: a pool of worker coroutines driving a ``Plan``.

Nothing is created per task up front. Worker coroutines, never more than
the global window allows, each take the highest-priority ready task that
may start (its group, if any, has a free slot), run one attempt, record
the outcome, and loop; a worker with nothing to take, or that the window
has shrunk below, exits. Retries leave the workers during their backoff (a
timer puts the task back) so a waiting retry never holds a slot.
Everything runs inside one ``TaskGroup``; the total timeout,
``stop_on_first_error`` and a cancelled caller all unwind it, and the
result says what was left unfinished. A task body that swallows the
cancellation would hold the unwinding up for good, so workers still alive
are cancelled again every ``RECANCEL_EVERY_S`` and named in a WARNING once
they are ``CANCEL_GRACE_S`` late. From the stop on, nothing starts: no
worker, no attempt, no retry, whatever the unwinding bodies do.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from wave_executor._core.breaker import CircuitBreaker, CircuitBreakerRegistry, CircuitState
from wave_executor._core.early import NO_ROUTE
from wave_executor._core.escalation import AttemptFailure, diagnose
from wave_executor._core.event_payloads import run_totals
from wave_executor._core.fan_out import ChildId, FanOutBook, child_items, failed_children_error
from wave_executor._core.graph import Graph
from wave_executor._core.logs import fields, get_logger
from wave_executor._core.names import EventType, StopReason
from wave_executor._core.overload import is_overload
from wave_executor._core.plan import Plan
from wave_executor._core.ready import GroupedReady
from wave_executor._core.records import DAGExecutionResult, EscalationReport
from wave_executor._core.result_table import TaskResultTable
from wave_executor._core.retry import RetryPolicy
from wave_executor._core.run_clock import RunClock
from wave_executor._core.skips import skip_error, unsuccessful_deps
from wave_executor._core.status import TaskStatus, code_of
from wave_executor._core.triggers import SkipReason, TriggerRule, rule_skip_error
from wave_executor._core.upstream import DEP_OUTPUTS, with_outputs
from wave_executor._core.window import Window
from wave_executor._runtime.attempt import (
    UNSET,
    AttemptTimeout,
    NotAwaitableError,
    TaskBody,
    Watchdog,
    attempt_error,
)
from wave_executor._runtime.attempt import run_attempt as _run_attempt
from wave_executor._runtime.circuits import CircuitGate
from wave_executor._runtime.early import EarlyRoutes, EarlyRun
from wave_executor._runtime.events import EventSink
from wave_executor._runtime.fan_out import ChildGroups
from wave_executor._runtime.limiter import AdaptiveSemaphore, report_outcome
from wave_executor._runtime.observe import AttemptProbe, ExecutionProbe, WindowGauge
from wave_executor._runtime.progress_feed import ProgressFeed
from wave_executor._runtime.reaper import RECANCEL_EVERY_S, Reaper, log_ended_late, log_swallowing
from wave_executor._runtime.recording import RunRecorder
from wave_executor._runtime.settings import Groups, KeyFunction, RunSettings
from wave_executor.errors import CircuitBreakerOpenError, CircuitKeyError

__all__ = ["DagRun"]

log = get_logger("run")

_YIELD_EVERY = 64  # a worker whose tasks never suspend still lets the loop breathe
_RUNNING = code_of(TaskStatus.RUNNING)
_SUCCESS = code_of(TaskStatus.SUCCESS)
_FAILED = code_of(TaskStatus.FAILED)
_READY = code_of(TaskStatus.READY)


def _limit_of(window: Window) -> Callable[[], int]:
    return lambda: window.limit


class _StopRun(Exception):
    """Raised inside the task group to stop the run after a final failure."""


def _lone(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """What a worker raised, out of the task group that carried it.

    asyncio already lets ``KeyboardInterrupt`` and ``SystemExit`` through a
    ``TaskGroup`` as they are; another ``BaseException`` of the caller's
    own reaches them as itself too, not wrapped in the engine's group.
    """
    return group.exceptions[0] if len(group.exceptions) == 1 else group


class _Retrying:
    """Book-keeping of a task that has failed at least once (rare, so not per task)."""

    __slots__ = ("failures", "first_start", "timer")

    def __init__(self, first_start: float) -> None:
        self.first_start = first_start
        self.failures: list[AttemptFailure] = []
        self.timer: asyncio.TimerHandle | None = None


class DagRun:
    """Runs one validated graph to completion; use once."""

    def __init__(
        self,
        *,
        graph: Graph,
        specs: Mapping[Any, Any],
        body: TaskBody,
        settings: RunSettings,
        events: EventSink,
        execution_id: str,
        dependencies: Mapping[Any, Iterable[Any]] | None = None,
        breakers: CircuitBreakerRegistry | None = None,
        circuit_key: KeyFunction | None = None,
        groups: Groups | None = None,
        semaphore: AdaptiveSemaphore | None = None,
        recorder: RunRecorder | None = None,
        restored: Mapping[int, Any] | None = None,
        clock: RunClock | None = None,
        wave_id: str = "dag",
        rules: Mapping[int, TriggerRule] | None = None,
        probe: ExecutionProbe | None = None,
        progress: ProgressFeed | None = None,
        fan_out_parents: frozenset[int] = frozenset(),
        child_groups: ChildGroups | None = None,
        early: EarlyRoutes | None = None,
    ) -> None:
        self._graph = graph
        self._ids = graph.ids
        self._specs = specs
        #: Run-time fan-out (``execute(fan_out=...)``): None when no task fans out.
        self._fan: FanOutBook | None = None
        if fan_out_parents:
            self._fan = FanOutBook(fan_out_parents)
            self._specs = dict(specs)  # children's items join the specs
        self._child_groups = child_groups
        self._dependencies = dependencies if dependencies is not None else {}
        self._body = body
        self._settings = settings
        self._events = events
        self._execution_id = execution_id
        self._loop = asyncio.get_running_loop()
        #: The run's breakers: keyed ones in ``breakers`` (shared beyond the run), per-task
        #: ones of its own (``circuits.local``).
        self.circuits = self._circuits = CircuitGate(
            settings.breakers, breakers if breakers is not None else CircuitBreakerRegistry(),
            circuit_key, groups, events, self._loop.time, execution_id,
        )  # fmt: skip
        self._groups = groups
        self._semaphore = semaphore
        self._recorder = recorder
        #: Told of each task's final status (None: no ``progress=``, nothing to do).
        self._progress = progress
        self._restored = restored or {}
        completed = list(self._restored)
        if groups is None:
            self._plan = Plan(graph, completed=completed, rules=rules)
        else:
            self._plan = Plan(graph, groups.group_of, len(groups.names), completed, rules)
        self._window = settings.global_window()
        #: The loop's clock; ``time.monotonic`` itself when the loop's ``time()`` is
        #: asyncio's own (which returns just that), saving a call per read.
        self._now: Callable[[], float] = (
            time.monotonic
            if getattr(self._loop.time, "__func__", None) is asyncio.BaseEventLoop.time
            else self._loop.time
        )
        self._retrying: dict[int, _Retrying] = {}
        self._interrupted: dict[int, float] = {}  # task -> start of the attempt cut off
        self._workers = 0
        self._worker_tasks: set[asyncio.Task[None]] = set()
        self._reaper: Reaper | None = None  # cancels again workers that swallow the stop
        self._stopping = False  # the run is unwinding: start nothing more
        self._group: asyncio.TaskGroup | None = None
        self._finished: asyncio.Future[None] | None = None
        if clock is None:
            clock = RunClock(self._loop.time(), time.time())
        #: Loop time to wall time for this run's results, records and events.
        self.clock = clock
        self._table = TaskResultTable(graph.ids, graph.index, self._plan.codes, clock, wave_id)
        self._table.skip_reasons = self._plan.skip_reasons
        if recorder is not None:
            recorder.set_clock(clock)
        if self._fan is not None:
            self.circuits.inherit(self._fan.parent_of, self._specs)
        # One generator per seeded policy, made on its first retry (seeding costs 15 µs).
        self._rngs: dict[int, random.Random] = {}
        #: Spans and metrics (``observe.py``); None when nothing observes the run.
        self._probe = probe
        self._attempts: dict[int, AttemptProbe] = {}  # failed attempts not ended yet
        #: Early submission (``_runtime/early.py``): None in a run without a backend that
        #: offers it, and with a store, fan-out, an adaptive semaphore or an observer
        #: (tracing: each attempt's span must be current when its body is sent).
        self._early: EarlyRun | None = None
        if (
            early is not None
            and recorder is None
            and semaphore is None
            and not fan_out_parents
            and probe is None
        ):
            self._early = EarlyRun(early, graph, self._dependencies, rules)

    # -- the run -------------------------------------------------------------

    async def run(self) -> DAGExecutionResult:
        probe = self._probe
        if probe is None:
            return await self._run()
        untrack = self._track(probe)
        try:
            return await self._run()
        finally:
            untrack()
            self._end_attempts("cancelled")  # the caller cancelled: attempts cut off

    async def _run(self) -> DAGExecutionResult:
        settings = self._settings
        started = self._loop.time()
        started_at = self._wall(started)
        self._events.emit(EventType.EXECUTION_STARTED, None, total_tasks=len(self._graph))
        self._restore(started)
        if self._early is not None:
            try:
                await self._early.prepare()
            except Exception:  # cannot connect: every attempt takes today's path and says why
                self._early = None
        stopped: StopReason | None = None
        self._finished = self._loop.create_future()
        if self._plan.done:
            self._finished.set_result(None)
        total = settings.total_timeout
        me = asyncio.current_task()
        cancels_before = 0 if me is None else me.cancelling()
        try:
            async with asyncio.timeout(None if total == math.inf else total):
                try:
                    async with asyncio.TaskGroup() as group:
                        self._group = group
                        self._spawn(reserved=0)
                        try:
                            await self._finished
                        except asyncio.CancelledError:  # the group now cancels the workers
                            self._stop()
                            self._reap()
                            raise
                except* _StopRun:
                    stopped = StopReason.STOP_ON_FIRST_ERROR
                if stopped is not None and self._plan.ruled:
                    await self._clean_up(me, cancels_before)
        except TimeoutError:
            stopped = StopReason.TOTAL_TIMEOUT
        except BaseExceptionGroup as group:
            raise _lone(group) from None
        finally:
            self._group = None
            self._cancel_backoff_timers()
            if self._early is not None:
                self._early.close()
            reaper, self._reaper = self._reaper, None
            if reaper is not None:
                reaper.stop()
                if reaper.warned:
                    scope = f"execution {self._execution_id}"
                    log_ended_late(scope, "the run", reaper.late(), "it was stopped")
        cancelled = me is not None and me.cancelling() > cancels_before
        if stopped == StopReason.STOP_ON_FIRST_ERROR and cancelled:
            # The caller cancelled while the run unwound: the cancellation wins.
            # Python 3.13's TaskGroup has requested it again (taken here, once);
            # before 3.13 it reports only our _StopRun, so we raise it.
            await asyncio.sleep(0)
            raise asyncio.CancelledError
        if stopped is not None:
            self._end_unfinished(stopped)
        finished = self._loop.time()
        result = DAGExecutionResult(
            execution_id=self._execution_id,
            task_results=self._table,
            started_at=started_at,
            completed_at=self._wall(finished),
            allow_partial_success=settings.allow_partial_success,
            min_success_rate=settings.min_success_rate,
            stopped_reason=stopped,
            duration_s=finished - started,
            run_id=None if self._recorder is None else self._recorder.run_id,
            restored=self._table.ids_of(self._table.restored),
        )
        if self._events.active:
            totals = run_totals(result, result.total_failed)
            self._events.emit(
                EventType.EXECUTION_COMPLETED, None, **totals,
                duration_ms=round(result.duration_ms, 3), stopped_reason=stopped,
            )  # fmt: skip
        return result

    def _restore(self, now: float) -> None:
        """Stored successes stand in for tasks of a resumed run: outputs, events."""
        table, events, progress = self._table, self._events, self._progress
        for i, output in self._restored.items():
            table.record(i, now, now, output)
            table.restored.append(i)
            if progress is not None:
                progress.task_done(self._ids[i], TaskStatus.SUCCESS)
            if events.active:
                events.emit(
                    EventType.TASK_COMPLETED,
                    self._ids[i],
                    status="success",
                    duration_ms=0.0,
                    restored=True,
                )

    def _spawn(self, reserved: int) -> None:
        """Start workers for ready tasks that no live worker will pick up."""
        group = self._group
        if group is None or self._stopping:
            return
        want = min(self._window.limit - self._workers, self._plan.ready_count - reserved)
        for _ in range(want):
            if self._stopping:  # a worker that an eager task factory ran at once failed
                return
            self._workers += 1
            self._worker_tasks.add(group.create_task(self._worker()))

    async def _worker(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        watchdog = Watchdog(self._loop, task, RECANCEL_EVERY_S)
        try:
            await self._work(watchdog)
        except asyncio.CancelledError:
            raise
        except BaseException:
            # Stop before the group's done-callback cancels the other workers,
            # so that none of them retries or starts anything while it unwinds.
            self._stop()
            raise
        finally:
            watchdog.close()
            self._workers -= 1
            self._worker_tasks.discard(task)

    async def _work(self, watchdog: Watchdog) -> None:
        """Take ready tasks until there are none: the hot loop of the scheduler."""
        plan, ids, specs, window = self._plan, self._ids, self._specs, self._window
        # Observed runs go through _observed_attempt; the others pay nothing per attempt:
        # without a semaphore either, the body is awaited right here (``run_attempt``,
        # inlined: a coroutine frame less per task).
        run_attempt = _run_attempt if self._probe is None else self._observed_attempt
        clock = self._now
        semaphore = self._semaphore
        inline = self._probe is None and semaphore is None
        body, default_timeout = self._body, self._settings.attempt_timeout
        timeouts = self._settings.timeout_overrides
        timeout = default_timeout
        inject = self._settings.inject_dep_outputs
        events, retrying = self._events, self._retrying
        circuits = self._circuits
        # Breakers are made on a key's first failure: a healthy run never looks one up.
        shared_breakers, local_breakers = circuits.shared.breakers, circuits.local.breakers
        groups = self._groups
        early = self._early
        table = self._table
        # A success needs only the bookkeeping inlined below unless one of these
        # is on; then ``_record_success`` does it (``retrying`` and events are
        # checked per task: both can change during the run).
        plain = (
            self._recorder is None
            and self._probe is None
            and self._progress is None
            and not plan.ruled
        )
        fan = self._fan  # run-time fan-out: its parents take _record_success
        done = 0
        while (
            window.active < window.limit and not self._stopping and (i := plan.take()) is not None
        ):
            task_id = ids[i]
            if early is not None and early.book.routes[i] != NO_ROUTE:
                await self._submit(i, task_id, watchdog, timeouts.get(i, default_timeout))
                continue
            spec = self._inject(task_id) if inject else specs[task_id]
            if timeouts:
                timeout = timeouts.get(i, default_timeout)
            if events.active and i not in retrying:
                events.emit(EventType.TASK_STARTED, task_id)
            breaker = None
            if shared_breakers or local_breakers:
                try:
                    breaker = circuits.find(i, task_id, spec)
                except CircuitKeyError as exc:
                    self._record_failure(i, task_id, clock(), exc, None, retryable=False)
                    continue
                if breaker is not None and not circuits.admit(
                    breaker, clock(), task_id, self._attempt_of(i)
                ):
                    self._refuse(i, task_id, breaker)
                    continue
            window.active += 1  # Window.admit, inlined on the hot path
            in_flight = window.active
            group_in_flight = 0 if groups is None else self._enter_group(i)
            start = clock()
            try:
                if inline:
                    if timeout != math.inf:
                        watchdog.arm(start + timeout, task_id)
                    pending = UNSET
                    try:
                        pending = body(task_id, spec)
                        output = await pending
                    except BaseException as exc:
                        raise attempt_error(exc, watchdog, pending, timeout)  # noqa: B904
                    if watchdog.disarm():
                        raise AttemptTimeout(timeout)
                elif semaphore is None:
                    output = await run_attempt(body, task_id, spec, watchdog, timeout, start)
                else:
                    async with semaphore:
                        start = clock()
                        output = await run_attempt(body, task_id, spec, watchdog, timeout, start)
                        report_outcome(semaphore, None)
            except Exception as exc:
                self._attempt_failed(
                    i, task_id, spec, exc, start, breaker, in_flight, group_in_flight
                )
            except BaseException as exc:
                if self._stopping or not isinstance(exc, asyncio.CancelledError):
                    # Cancelled (run stopped, timed out, or caller gone), or SystemExit
                    # and the like: remember the start.
                    self._interrupted[i] = start
                    if breaker is not None:
                        breaker.release_probe()
                    raise
                # The run is not stopping, so only the watchdog may have cancelled this
                # worker (a stale count left by a TaskGroup in the body, Python 3.11/3.12,
                # hid that from it); or the body raised CancelledError itself (it
                # awaited something that was cancelled). Either is the task's failure.
                failure: BaseException = AttemptTimeout(timeout) if watchdog.fired else exc
                self._attempt_failed(
                    i, task_id, spec, failure, start, breaker, in_flight, group_in_flight
                )
            else:
                window.active -= 1
                if window.limit < window.ceiling or groups is not None or breaker is not None:
                    self._succeeded(i, task_id, in_flight, group_in_flight, breaker)
                if (
                    plain
                    and not retrying
                    and not events.active
                    and (fan is None or i not in fan.parents)
                ):
                    # _record_success for a first-attempt success nobody watches.
                    end = clock()
                    table.record(i, start, end, output)
                    released = plan.succeed(i)
                    if fan is not None and i in fan.parent_of:
                        self._child_ended(fan, i, end)
                    elif not plan.unfinished:
                        self._finish()
                    elif self._workers < window.limit and (released > 1 or groups is not None):
                        self._spawn(reserved=1)
                else:
                    self._record_success(i, task_id, start, output)
            done += 1
            if not done % _YIELD_EVERY:
                await asyncio.sleep(0)

    def _succeeded(
        self,
        i: int,
        task_id: Any,
        in_flight: int,
        group_in_flight: int,
        breaker: CircuitBreaker | None,
    ) -> None:
        """An attempt succeeded (its slot is free already): feed the adaptive windows,
        leave its group, close its breaker's probe. The hot loop calls this only when
        one of them applies."""
        window = self._window
        if window.limit < window.ceiling:
            limit = window.limit
            window.success(in_flight)
            if window.limit > limit:  # a wider window: workers for it
                self._spawn(reserved=1)
        if self._groups is not None:
            self._leave_group(i, group_in_flight)
        if breaker is not None:
            self._circuits.success(breaker, self._now(), task_id, self._attempt_of(i))

    def _attempt_failed(
        self, i: int, task_id: Any, spec: Any, exc: BaseException, start: float,
        breaker: CircuitBreaker | None, in_flight: int, group_in_flight: int,
    ) -> None:  # fmt: skip
        self._window.active -= 1
        if self._groups is not None:
            self._leave_group(i)
        if self._semaphore is not None:
            report_outcome(self._semaphore, exc)
        overload = self._feed_overload(i, exc, start, in_flight, group_in_flight)
        if breaker is None:
            try:
                breaker = self._circuits.create(i, task_id, spec)
            except CircuitKeyError as key_error:
                exc = key_error
        # every attempt would fail alike:
        retryable = not isinstance(exc, (NotAwaitableError, CircuitKeyError))
        self._record_failure(
            i, task_id, start, exc, breaker, overload=overload, retryable=retryable
        )

    # -- groups ---------------------------------------------------------------

    def _enter_group(self, i: int) -> int:
        assert self._groups is not None
        g = self._groups.group_of[i]
        window = self._groups.windows[g]
        in_flight = window.admit()
        if window.full:
            self._grouped_ready().block(g)
        return in_flight

    def _leave_group(self, i: int, success_in_flight: int = 0) -> None:
        """A task of the group ended; ``success_in_flight`` > 0 feeds its window a success."""
        assert self._groups is not None
        g = self._groups.group_of[i]
        window = self._groups.windows[g]
        window.leave()
        if success_in_flight:
            window.success(success_in_flight)
        self._sync_group(g)

    def _sync_group(self, g: int) -> None:
        """Block or unblock a group after its window moved; wake workers for it."""
        assert self._groups is not None
        ready = self._grouped_ready()
        if self._groups.windows[g].full:
            ready.block(g)
        elif ready.is_blocked(g):
            ready.unblock(g)
            self._spawn(reserved=1 if asyncio.current_task() is not None else 0)

    def _grouped_ready(self) -> GroupedReady:
        ready = self._plan.ready
        assert isinstance(ready, GroupedReady)
        return ready

    def _feed_overload(
        self, i: int, exc: BaseException, start: float, in_flight: int, group_in_flight: int
    ) -> bool:
        """Tell the adaptive windows about an overload; True if it was one."""
        if not is_overload(exc, self._settings.overload_errors, isinstance(exc, AttemptTimeout)):
            return False
        now = self._loop.time()
        limit = self._window.limit
        self._window.overload(start, now, in_flight)
        if self._groups is not None and group_in_flight:
            g = self._groups.group_of[i]
            self._groups.windows[g].overload(start, now, group_in_flight)
            self._sync_group(g)
        if self._events.active and self._window.limit != limit:  # not on every overload
            self._events.emit(
                EventType.CONCURRENCY_CHANGED,
                None,
                limit=self._window.limit,
                reason="overload",
                cause_task=self._ids[i],
            )
        return True

    # -- outcomes ------------------------------------------------------------

    def _record_success(self, i: int, task_id: Any, start: float, output: Any) -> None:
        end = self._now()
        first, retries = start, 0
        if self._retrying:
            retrying = self._retrying.pop(i, None)
            if retrying is not None:
                first, retries = retrying.first_start, len(retrying.failures)
        fan = self._fan
        if fan is not None and i in fan.parents:
            self._expand(fan, i, task_id, start, first, end, output, retries)
            return
        if self._recorder is not None and not self._keep(i, start, first, end, output, retries):
            return
        self._table.record(i, first, end, output, None, retries)
        if self._probe is not None:
            self._probe.task_ended(task_id, "success")
        if self._progress is not None:
            self._progress.task_done(task_id, TaskStatus.SUCCESS)
        plan = self._plan
        released = plan.succeed(i)
        if self._events.active:
            duration_ms = (end - first) * 1000.0
            self._events.emit(
                EventType.TASK_COMPLETED, task_id, status="success", duration_ms=duration_ms
            )
        if plan.skips:  # a success skipped tasks whose rule wants failures (ruled plans)
            skipped, plan.skips = plan.skips, []
            self._skip(skipped, task_id, end)
        if fan is not None and i in fan.parent_of:
            self._child_ended(fan, i, end)
        elif not plan.unfinished:
            self._finish()
        elif self._workers < self._window.limit and (released > 1 or self._groups is not None):
            self._spawn(reserved=1)

    def _keep(
        self, i: int, start: float, first: float, end: float, output: Any, retries: int
    ) -> bool:
        """Record a success in the store; an output it cannot keep fails the task."""
        assert self._recorder is not None
        try:
            self._recorder.outcome(i, "success", output, None, first, end, retries)
        except Exception as exc:
            if retries:
                self._retrying[i] = _Retrying(first)  # keep the history for the report
            self._record_failure(i, self._ids[i], start, exc, None, retryable=False)
            return False
        self._recorder.attempt(i, retries + 1, "success", None, start, end)
        return True

    def _refuse(self, i: int, task_id: Any, breaker: CircuitBreaker) -> None:
        now = self._loop.time()
        error = CircuitBreakerOpenError(breaker.key, breaker.retry_after(now), breaker.state.value)
        self._record_failure(i, task_id, now, error, breaker, circuit_open=True)

    def _record_failure(
        self,
        i: int,
        task_id: Any,
        started: float,
        exc: BaseException,
        breaker: CircuitBreaker | None,
        *,
        circuit_open: bool = False,
        overload: bool = False,
        retryable: bool = True,
    ) -> None:
        if self._early is not None:
            self._withdraw_after(i)
        now = self._loop.time()
        timed_out = isinstance(exc, AttemptTimeout)
        message = str(exc) or type(exc).__name__
        retrying = self._retrying.get(i)
        if retrying is None:
            retrying = self._retrying[i] = _Retrying(started)
        attempt = len(retrying.failures) + 1
        if breaker is not None and not circuit_open:
            self._circuits.failure(breaker, now, task_id, attempt)
        policy = self._settings.retry_for(i)
        delay = (
            policy.delay(attempt, self._jitter(policy)) if attempt <= policy.max_retries else 0.0
        )
        retry = (
            retryable
            and not circuit_open
            and not self._stopping  # a failure while the run unwinds is final
            and policy.should_retry(attempt, timed_out, exc, now - retrying.first_start, delay)
        )
        if self._recorder is not None:
            status = "timeout" if timed_out else "failed"
            self._recorder.attempt(i, attempt, status, message, started, now)
        if self._attempts:
            probe = self._attempts.pop(i, None)
            if probe is not None:
                probe.end("timeout" if timed_out else "failed", exc, delay if retry else None)
        retrying.failures.append(
            AttemptFailure(
                message, timed_out, circuit_open, overload, type(exc).__name__,
                now - started, delay if retry else None,
            )
        )  # fmt: skip
        if retry:
            self._schedule_retry(i, task_id, attempt, message, delay)
        else:
            self._give_up(i, task_id, retrying, breaker, timed_out, now)

    def _jitter(self, policy: RetryPolicy) -> float:
        """A draw from ``policy``'s own generator, so a seeded per-task policy is
        reproducible whatever the run's other policies do."""
        if not policy.jitter:
            return 0.0  # unused by the delay: spare the generator
        rng = self._rngs.get(id(policy))
        if rng is None:
            rng = self._rngs[id(policy)] = random.Random(policy.seed)
        return rng.random()

    def _schedule_retry(self, i: int, task_id: Any, attempt: int, error: str, delay: float) -> None:
        self._plan.back_off(i)
        if log.isEnabledFor(logging.INFO):
            run_id = self._execution_id
            log.info(
                "run %s: task %r attempt %d failed, retrying in %.3g s: %s",
                run_id, task_id, attempt, delay, error, extra=fields(run_id, task_id, attempt),
            )  # fmt: skip
        if self._events.active:
            self._events.emit(
                EventType.TASK_RETRYING, task_id, attempt=attempt, delay_s=delay, error=error
            )
        if delay <= 0:
            self._retry_due(i)
        else:
            self._retrying[i].timer = self._loop.call_at(
                self._loop.time() + delay, self._retry_due, i
            )

    def _retry_due(self, i: int) -> None:
        retrying = self._retrying.get(i)
        if retrying is not None:
            retrying.timer = None
        self._plan.retry(i)
        self._spawn(reserved=0)

    def _give_up(
        self,
        i: int,
        task_id: Any,
        retrying: _Retrying,
        breaker: CircuitBreaker | None,
        timed_out: bool,
        now: float,
    ) -> None:
        del self._retrying[i]
        failures = retrying.failures
        root_cause, options = diagnose(failures)
        if not self._circuits.enabled:
            circuit_state = "disabled"
        else:
            circuit_state = "closed" if breaker is None else breaker.state.value
        report = EscalationReport(
            task_id=task_id,
            execution_id=self._execution_id,
            attempt_count=len(failures),
            failure_history=[f.message for f in failures],
            root_cause=root_cause,
            resolution_options=options,
            circuit_state=circuit_state,
            escalated_at=self._wall(now),
            attempts=[f.to_dict(k) for k, f in enumerate(failures, 1)],
        )
        status = TaskStatus.TIMEOUT if timed_out else TaskStatus.FAILED
        error = failures[-1].message
        escalation = {"escalation": report.to_dict()}
        self._table.record(i, retrying.first_start, now, escalation, error, len(failures) - 1)
        self._store_outcome(
            i, status, escalation, error, retrying.first_start, now, len(failures) - 1
        )
        if log.isEnabledFor(logging.INFO):
            run_id, attempts = self._execution_id, len(failures)
            log.info(
                "run %s: task %r %s after %d attempt(s): %s",
                run_id, task_id, "timed out" if timed_out else "failed", attempts, error,
                extra=fields(run_id, task_id, attempts),
            )  # fmt: skip
        if self._progress is not None:
            self._progress.task_done(task_id, status)
        skipped = self._plan.fail(i, status)
        if self._probe is not None:
            self._probe.task_ended(task_id, status.value, error)
        events = self._events
        if events.active:
            events.emit(EventType.TASK_FAILED, task_id, status=status.value, error=error)
            events.emit(EventType.TASK_ESCALATED, task_id, escalation=escalation["escalation"])
        self._skip(skipped, task_id, now)
        if self._settings.stop_on_first_error and not self._stopping and not self._plan.cleaning:
            self._stop()
            raise _StopRun
        fan = self._fan
        if fan is not None and i in fan.parent_of:
            self._child_ended(fan, i, now)
        elif self._plan.done:
            self._finish()
        elif self._plan.ruled:
            self._spawn(reserved=1)  # a failure may release tasks (all_done, one_failed...)

    def _skip(self, skipped: list[tuple[int, int]], root: Any, now: float) -> None:
        ids, plan = self._ids, self._plan
        ruled = plan.ruled
        for s, _via in skipped:
            task_id = ids[s]
            failed_deps = self._unsuccessful_deps(task_id)
            reason = plan.skip_reasons.get(s) if ruled else None
            rule = plan.rule_of(s)
            if reason is SkipReason.RULE_NOT_MET or rule is not TriggerRule.ALL_SUCCESS:
                error = rule_skip_error(rule, self._upstream_statuses(task_id))
            else:
                error = skip_error(failed_deps, root)
            self._table.record(s, now, now, None, error)
            self._store_outcome(s, TaskStatus.SKIPPED, None, error, now, now, 0)
            if self._probe is not None:
                self._probe.task_ended(task_id, "skipped", error)
            if self._progress is not None:
                self._progress.task_done(task_id, TaskStatus.SKIPPED)
            if self._events.active:
                if reason is None:
                    self._events.emit(EventType.TASK_SKIPPED, task_id, failed_deps=failed_deps)
                else:
                    self._events.emit(
                        EventType.TASK_SKIPPED, task_id, failed_deps=failed_deps,
                        skip_reason=reason.value, trigger_rule=rule.value,
                    )  # fmt: skip

    def _upstream_statuses(self, task_id: Any) -> dict[Any, str]:
        """Each dependency's status as a rule sees it (for a skipped task's error)."""
        index, plan = self._graph.index, self._plan
        out: dict[Any, str] = {}
        for d in self._dependencies.get(task_id, ()):
            i = index[d]
            status = plan.status(i).value
            if plan.status(i) is TaskStatus.SKIPPED:
                why = plan.skip_reasons.get(i, SkipReason.UPSTREAM_FAILED)
                status += " (rule not met)" if why is SkipReason.RULE_NOT_MET else ""
            out[d] = status
        return out

    def _store_outcome(
        self, i: int, status: TaskStatus, output: Any, error: str | None,
        start: float, end: float, retries: int,
    ) -> None:  # fmt: skip
        """Record an unsuccessful outcome; an output the store cannot keep is dropped."""
        if self._recorder is not None:
            self._recorder.unsuccessful(i, status.value, output, error, start, end, retries)

    def _unsuccessful_deps(self, task_id: Any) -> list[Any]:
        index, plan = self._graph.index, self._plan

        def succeeded_or_open(d: Any) -> bool:
            i = index[d]
            return not plan.is_terminal(i) or plan.status(i) == TaskStatus.SUCCESS

        return unsuccessful_deps(self._dependencies.get(task_id, ()), succeeded_or_open)

    def _finish(self) -> None:
        finished = self._finished
        if finished is not None and not finished.done():
            finished.set_result(None)

    # -- early end -----------------------------------------------------------

    def _stop(self) -> None:
        """The run is ending: no new worker, attempt or retry from here on.

        Bodies that swallow the stop may still end (and be recorded) while
        the group unwinds; nothing they release may start.
        """
        self._stopping = True
        self._cancel_backoff_timers()

    def _reap(self) -> None:
        """Until the workers are gone, cancel again those that swallowed the cancellation."""
        self._reaper = Reaper(
            self._loop, self._loop.time(), self._workers_alive, self._cancel_workers,
            self._warn_stuck,
        ).start()  # fmt: skip

    def _workers_alive(self) -> bool:
        return any(not task.done() for task in self._worker_tasks)

    def _cancel_workers(self) -> None:
        for task in self._worker_tasks:
            if not task.done():
                task.cancel()

    def _warn_stuck(self, late: float) -> None:
        codes, interrupted = self._plan.codes, self._interrupted
        fan = self._fan
        stuck = [
            self._ids[i]
            for i, code in enumerate(codes)
            if code == _RUNNING
            and i not in interrupted
            and not (fan is not None and fan.waiting(i))  # a parent waits for its children
        ]
        scope = f"execution {self._execution_id}"
        log_swallowing(scope, stuck, late, "the run was stopped", RECANCEL_EVERY_S)

    async def _clean_up(self, me: asyncio.Task[Any] | None, cancels_before: int) -> None:
        """After ``stop_on_first_error``: cancel what was left, then run the cleanup
        tasks (``all_done``/``always``) once their upstreams are done.

        Not when the caller cancelled meanwhile: then nothing more runs.
        """
        if me is not None and me.cancelling() > cancels_before:
            return
        reaper, self._reaper = self._reaper, None
        if reaper is not None:
            reaper.stop()
        for i in self._interrupted:  # their attempt was cut off: give back its slots
            self._window.active -= 1
            if self._groups is not None:
                self._leave_group(i)
        error = "cancelled: the run stopped after a task failed (stop_on_first_error)"
        self._end_tasks(self._plan.begin_cleanup(), TaskStatus.CANCELLED, error)
        if self._plan.done:
            return
        self._stopping = False
        self._finished = self._loop.create_future()
        async with asyncio.TaskGroup() as group:
            self._group = group
            self._spawn(reserved=0)
            try:
                await self._finished
            except asyncio.CancelledError:
                self._stop()
                self._reap()
                raise

    def _cancel_backoff_timers(self) -> None:
        for retrying in self._retrying.values():
            if retrying.timer is not None:
                retrying.timer.cancel()
                retrying.timer = None

    def _end_unfinished(self, reason: StopReason) -> None:
        """Give every task that did not finish a result and a closing event."""
        if reason is StopReason.TOTAL_TIMEOUT:
            status = TaskStatus.TIMEOUT
            error = why = self._settings.deadline_error()
        else:
            status = TaskStatus.CANCELLED
            why = "a task failed (stop_on_first_error)"
            error = f"cancelled: the run stopped after {why}"
        ended = self._plan.abort(status)
        log.info(
            "run %s stopped, %s: %d unfinished task(s) ended %s",
            self._execution_id, why, len(ended), status.value, extra=fields(self._execution_id),
        )  # fmt: skip
        self._end_tasks(ended, status, error)

    def _end_tasks(self, ended: list[int], status: TaskStatus, error: str) -> None:
        """Record tasks ended by a stop: their result, their outcome, one TASK_FAILED."""
        now = self._loop.time()
        for i in ended:
            task_id = self._ids[i]
            retrying = self._retrying.pop(i, None)
            start = self._interrupted.pop(i, None)
            if retrying is not None:
                start = retrying.first_start
            elif self._fan is not None and i in self._fan.expansions:
                start = self._fan.expansions[i].first_start  # its children were running
            was_started = start is not None
            first = now if start is None else start
            retries = 0 if retrying is None else len(retrying.failures)
            self._table.record(i, first, now, None, error, retries)
            self._store_outcome(i, status, None, error, first, now, retries)
            if self._probe is not None:
                attempt = self._attempts.pop(i, None)
                if attempt is not None:
                    attempt.end(status.value)
                self._probe.task_ended(task_id, status.value, error)
            if self._progress is not None:
                self._progress.task_done(task_id, status)
            if self._events.active:
                self._events.emit(
                    EventType.TASK_FAILED,
                    task_id,
                    status=status.value,
                    error=error,
                    started=was_started,
                )

    # -- observation (observe.py) ---------------------------------------------

    async def _observed_attempt(
        self, body: TaskBody, task_id: Any, spec: Any, watchdog: Watchdog, limit: float,
        now: float,
    ) -> Any:  # fmt: skip
        """``run_attempt`` with the attempt's probe current while the body runs.

        A success ends the probe here; a failed or cut-off attempt's probe is
        ended once the run knows what follows (a retry and its delay, or not).
        """
        assert self._probe is not None
        i = self._graph.index[task_id]
        retrying = self._retrying.get(i)
        number = 1 if retrying is None else len(retrying.failures) + 1
        group = None if self._groups is None else self._groups.names[self._groups.group_of[i]]
        probe = self._probe.attempt(task_id, number, group)
        try:
            output = await _run_attempt(body, task_id, spec, watchdog, limit, now)
        except BaseException:
            probe.release()
            self._attempts[i] = probe
            raise
        probe.release()
        probe.end("success")
        return output

    def _track(self, probe: ExecutionProbe) -> Any:
        windows: list[WindowGauge] = [("global", None, self._window_limit)]
        if self._groups is not None:
            for name, window in zip(self._groups.names, self._groups.windows, strict=True):
                if name is not None:
                    windows.append(("group", name, _limit_of(window)))
        if self._semaphore is not None:
            sem = self._semaphore
            windows.append(("semaphore", None, lambda: sem.limit))
        plan = self._plan
        return probe.track(lambda: len(plan.ready), windows)

    def _window_limit(self) -> int:
        return self._window.limit

    def _end_attempts(self, status: str) -> None:
        attempts, self._attempts = self._attempts, {}
        for probe in attempts.values():
            probe.end(status)

    # -- fan-out -------------------------------------------------------------

    def _expand(
        self, fan: FanOutBook, i: int, task_id: Any, start: float, first: float, end: float,
        output: Any, retries: int,
    ) -> None:  # fmt: skip
        """A fan-out parent's body succeeded: its output's items become child tasks.

        The parent stays running until its last child has ended.
        """
        recorder, child_groups = self._recorder, self._child_groups
        try:  # everything that may raise, before anything changes
            pairs = child_items(task_id, output)  # iterates the output: may raise anything
            keys = [k for k, _ in pairs]
            items = [item for _, item in pairs]
            children = [ChildId(task_id, k) for k in keys]
            store_keys = None if recorder is None else recorder.keys_for(children)
            groups = None if child_groups is None else child_groups.of(i, children, items)
            first_child = self._graph.grow(children, self._graph.priority[i])
        except Exception as exc:
            if retries:
                self._retrying[i] = _Retrying(first)  # keep the history for the report
            self._record_failure(i, task_id, start, exc, None, retryable=False)
            return
        count = len(children)
        indices = range(first_child, first_child + count)
        restored: dict[int, Any] = {}
        if recorder is not None:
            assert store_keys is not None
            recorder.attempt(i, retries + 1, "success", None, start, end)
            restored = recorder.add_children(store_keys, items)
        if groups is not None:
            assert child_groups is not None
            child_groups.assign(groups)
            self._grouped_ready().add_groups(child_groups.count)
        settings = self._settings
        for overrides in (settings.retry_overrides, settings.timeout_overrides):
            if i in overrides:
                assert isinstance(overrides, dict)
                overrides.update(dict.fromkeys(indices, overrides[i]))
        specs = self._specs
        assert isinstance(specs, dict)
        specs.update(zip(children, items, strict=True))
        table = self._table
        table.grow(task_id, indices)
        if self._progress is not None:
            self._progress.add_total(count)
        expansion = fan.expand(i, first_child, keys, first, retries)
        self._plan.expand(i, count, list(restored))
        events = self._events
        for k, stored in restored.items():
            table.record(first_child + k, end, end, stored)
            table.restored.append(first_child + k)
            expansion.open -= 1
            if events.active:
                events.emit(
                    EventType.TASK_COMPLETED, children[k], status="success", duration_ms=0.0,
                    restored=True,
                )  # fmt: skip
        if not expansion.open:
            self._end_parent(fan, i, end)
        elif self._workers < self._window.limit:
            self._spawn(reserved=1)

    def _child_ended(self, fan: FanOutBook, child: int, now: float) -> None:
        parent = fan.child_ended(child)
        if parent is not None:
            self._end_parent(fan, parent, now)
        elif self._plan.done:  # defensive: a parent always outlives its children
            self._finish()

    def _end_parent(self, fan: FanOutBook, p: int, now: float) -> None:
        """Every child of ``p`` has ended: ``p`` succeeds with ``{key: output}`` if they
        all succeeded, else fails, its output holding the succeeded children's outputs."""
        expansion = fan.expansions[p]
        codes, ids, table, plan = self._plan.codes, self._ids, self._table, self._plan
        indices = expansion.indices()
        outputs = {
            k: table.output_of(c)
            for k, c in zip(expansion.keys, indices, strict=True)
            if codes[c] == _SUCCESS
        }
        failed = [ids[c] for c in indices if codes[c] != _SUCCESS]
        task_id, first, retries = ids[p], expansion.first_start, expansion.retries
        recorder = self._recorder
        error = None
        if failed:
            error = failed_children_error(task_id, failed, len(indices))
        elif recorder is not None:
            try:
                recorder.parent_outcome(p, "success", outputs, None, first, now, retries)
            except Exception as exc:  # the store cannot keep the output
                error = f"the store could not keep the output: {exc}"
        events = self._events
        table.record(p, first, now, outputs, error, retries)
        if self._probe is not None:
            self._probe.task_ended(task_id, "success" if error is None else "failed", error)
        if self._progress is not None:
            self._progress.task_done(
                task_id, TaskStatus.SUCCESS if error is None else TaskStatus.FAILED
            )
        if error is None:
            released = plan.succeed(p)
            if events.active:
                events.emit(
                    EventType.TASK_COMPLETED, task_id, status="success",
                    duration_ms=(now - first) * 1000.0, children=len(indices),
                )  # fmt: skip
            if plan.skips:
                skipped, plan.skips = plan.skips, []
                self._skip(skipped, task_id, now)
        else:
            if recorder is not None:
                try:
                    recorder.parent_outcome(p, "failed", outputs, error, first, now, retries)
                except Exception:  # without the output; a store failing even so is logged
                    recorder.unsuccessful(p, "failed", None, error, first, now, retries)
            skipped = plan.fail(p, TaskStatus.FAILED)
            released = 1 if plan.ruled else 0
            if events.active:
                events.emit(
                    EventType.TASK_FAILED, task_id, status=TaskStatus.FAILED.value, error=error,
                    failed_children=failed,
                )  # fmt: skip
            self._skip(skipped, task_id, now)
            if self._settings.stop_on_first_error and not self._stopping and not plan.cleaning:
                self._stop()  # (a failed child has stopped the run already)
                raise _StopRun
        if plan.done:
            self._finish()
        elif released and self._workers < self._window.limit:
            self._spawn(reserved=1)

    # -- helpers -------------------------------------------------------------

    def _wall(self, t: float) -> datetime:
        return self.clock.wall(t)

    def _attempt_of(self, i: int) -> int:
        """The number of task ``i``'s attempt in progress (1 for its first)."""
        retrying = self._retrying.get(i)
        return 1 if retrying is None else len(retrying.failures) + 1

    def _inject(self, task_id: Any) -> Any:
        """A copy of the spec carrying its dependencies' outputs (never the caller's)."""
        spec = self._specs[task_id]
        deps = self._dependencies.get(task_id)
        if not deps:
            return spec  # a task without dependencies gets its spec as it is (as in 0.3.0)
        table, index = self._table, self._graph.index
        if self._plan.ruled:  # only the upstreams that succeeded have outputs to give
            codes, fan = self._plan.codes, self._fan
            deps = [
                d
                for d in deps
                if codes[index[d]] == _SUCCESS
                # a failed fan-out parent gives its succeeded children's outputs
                or (fan is not None and codes[index[d]] == _FAILED and index[d] in fan.expansions)
            ]
        outputs = {d: table.output_of(index[d]) for d in deps}
        return with_outputs(spec, DEP_OUTPUTS, outputs)

    # -- early submission ------------------------------------------------------

    async def _submit(self, i: int, task_id: Any, watchdog: Watchdog, limit: float) -> None:
        """One attempt of a task routed to a backend that submits early.

        Submitted now; if some upstreams have not ended yet (it was released
        early), the backend runs it once they succeed, and the attempt counts
        as started (TASK_STARTED, its timeout) only when they have. It holds
        its slots from submission. Withdrawn if an upstream's attempt fails.
        """
        early = self._early
        assert early is not None
        plan, codes, clock, events = self._plan, self._plan.codes, self._loop.time, self._events
        live, book = early.live, early.book
        # Upstreams still running (an eligible task released early). Only eligible tasks
        # have them: any other waits until its rule is decided, as without early submission.
        pending = [u for u in book.upstreams[i] if codes[u] != _SUCCESS] if book.eligible[i] else []
        if any(u not in live for u in pending):  # defensive: an upstream lost its submission
            plan.withdraw(i)
            return
        upstream = [live[u] for u in pending]
        inject = self._settings.inject_dep_outputs
        spec = self._inject(task_id) if inject else self._specs[task_id]
        if pending and inject and isinstance(spec, dict) and isinstance(spec[DEP_OUTPUTS], dict):
            outputs = spec[DEP_OUTPUTS]  # a copy made by _inject
            for u, sub in zip(pending, upstream, strict=True):
                outputs[self._ids[u]] = sub.remote
        if not pending and events.active and i not in self._retrying:
            events.emit(EventType.TASK_STARTED, task_id)  # (an early one's: once it starts)
        circuits = self._circuits
        breaker = None
        if circuits.shared.breakers or circuits.local.breakers:
            try:
                breaker = circuits.find(i, task_id, spec)
            except CircuitKeyError as exc:
                if pending:  # fails when its upstreams have succeeded, as today
                    plan.withdraw(i)
                else:
                    self._record_failure(i, task_id, clock(), exc, None, retryable=False)
                return
            if breaker is not None:
                if pending and breaker.state is not CircuitState.CLOSED:
                    plan.withdraw(i)  # early only under a closed breaker
                    return
                if not circuits.admit(breaker, clock(), task_id, self._attempt_of(i)):
                    self._refuse(i, task_id, breaker)
                    return
        window, groups = self._window, self._groups
        window.active += 1
        in_flight = window.active
        group_in_flight = 0 if groups is None else self._enter_group(i)
        start = clock()
        ready: asyncio.Future[bool] | None = None
        try:
            backend = early.backend_of(i)
            assert backend is not None
            sub = backend.submit_early(early.body, task_id, spec, upstream)
            live[i] = sub
            self._release_early(book.submitted(i))
            if pending:
                ready = early.wait(i, len(pending))
                if not await ready:
                    return  # withdrawn: its slots are back, its submission cancelled
                ready = None
                start = clock()
                if events.active and i not in self._retrying:
                    events.emit(EventType.TASK_STARTED, task_id)
            output = await _run_attempt(_result_of(sub), task_id, spec, watchdog, limit, start)
        except Exception as exc:
            self._attempt_failed(i, task_id, spec, exc, start, breaker, in_flight, group_in_flight)
        except BaseException as exc:
            if ready is not None:  # stopped while waiting for its upstreams: never started
                if ready.cancelled() or not ready.done() or ready.result():  # not withdrawn
                    released = early.release(i)
                    if released is not None:
                        released.cancel()
                    early.book.lost(i)
                    window.active -= 1
                    if groups is not None:
                        self._leave_group(i)
                raise
            if self._stopping or not isinstance(exc, asyncio.CancelledError):
                live.pop(i, None)
                early.book.lost(i)
                self._interrupted[i] = start
                if breaker is not None:
                    breaker.release_probe()
                raise
            failure: BaseException = AttemptTimeout(limit) if watchdog.fired else exc
            self._attempt_failed(
                i, task_id, spec, failure, start, breaker, in_flight, group_in_flight
            )
        else:
            window.active -= 1
            self._succeeded(i, task_id, in_flight, group_in_flight, breaker)
            self._record_success(i, task_id, start, output)
            early.succeeded(i)

    def _release_early(self, candidates: list[int]) -> None:
        """Make ready the pending tasks whose upstreams are now all submitted."""
        if not candidates or self._stopping:
            return
        release = self._plan.release_early
        if sum(release(s) for s in candidates) and self._workers < self._window.limit:
            self._spawn(reserved=0)

    def _withdraw_after(self, u: int) -> None:
        """``u``'s attempt failed: withdraw every task submitted early on it, and on
        those (cancelled on the cluster, slots given back, PENDING again)."""
        early = self._early
        assert early is not None
        plan, codes, book = self._plan, self._plan.codes, early.book
        stack = [u]
        while stack:
            v = stack.pop()
            early.live.pop(v, None)
            book.lost(v)
            for s in book.successors(v):
                code = codes[s]
                if code == _READY:  # released early, not taken yet
                    plan.withdraw(s)
                elif code == _RUNNING and s in early.waits:
                    sub = early.release(s)
                    if sub is not None:
                        sub.cancel()
                    self._window.active -= 1
                    if self._groups is not None:
                        self._leave_group(s)
                    plan.withdraw(s)
                    stack.append(s)


def _result_of(sub: Any) -> TaskBody:
    """An attempt body that awaits ``sub``'s outcome (the submission is made already)."""

    def result(task_id: Any, spec: Any) -> Any:
        return sub.result()

    return result
