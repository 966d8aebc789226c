"""The supervisor behind ``WaveReconciler``: a control loop woken by change.

Every trigger -- a run exits, ``update()`` is called, a restart timer fires,
a dependency changes status or becomes ready, a slot frees -- puts task ids
in a *dirty* set and wakes the control loop. The loop takes the whole set at
once (so repeated triggers merge), asks the pure ``reconcile_task`` what
each task needs and applies it. The loop is one asyncio task and applying
never awaits, so one task is reconciled at a time. Every ``resync_s``
seconds (0.3.0's ``poll_interval_s``) it reconciles everything: a safety
net, not the reaction time.

Exits are recorded, and restart decisions made, the moment a run ends (in
its done callback); status changes go through ``_move``, which checks the
transition table and fires the triggers, the event and the checkpoint.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wave_executor._core.logs import fields, get_logger
from wave_executor._core.names import EventType
from wave_executor._core.reconcile import (
    TERMINAL,
    ActionKind,
    CheckpointStore,
    ReconcileTaskSpec,
    ReconcileTaskState,
    SupervisedRecord,
    SupervisedStatus,
    diff_desired,
    reconcile_task,
)
from wave_executor._core.restart import RestartPolicy, RestartSettings, check_timeout, decide
from wave_executor._core.run_clock import RunClock
from wave_executor._core.upstream import DEP_OUTPUTS, with_outputs
from wave_executor._runtime import observe
from wave_executor._runtime.attempt import TaskBody
from wave_executor._runtime.reaper import CANCEL_GRACE_S, RECANCEL_EVERY_S
from wave_executor._runtime.supervised_runs import Exit, RunTable
from wave_executor._runtime.supervisor_io import (
    REMOVED,
    SHUTDOWN,
    CheckpointWriter,
    Entry,
    EventOutlet,
    checkpoint_entry,
    restore,
    snapshot,
)

__all__ = ["Supervisor", "SupervisorSettings"]

log = get_logger("reconciler")

_S = SupervisedStatus
SPEC_CHANGED = "spec_changed"
UPSTREAM = "upstream_restarted"


@dataclass(frozen=True, slots=True)
class SupervisorSettings:
    cap: int  # runs at once (WaveConfig.max_parallel_per_wave)
    resync_s: float
    inject_dep_outputs: bool
    emit_events: bool
    restart: RestartSettings


class Supervisor:
    """Desired state, observed records, runs, and the loop that reconciles them."""

    def __init__(
        self,
        body: TaskBody,
        settings: SupervisorSettings,
        reconciler_id: str,
        store: CheckpointStore | None = None,
    ) -> None:
        self._settings = settings
        self._rid = reconciler_id
        self.events = EventOutlet(reconciler_id, settings.emit_events)
        self._writer = (
            None if store is None else CheckpointWriter(store, reconciler_id, self._entry)
        )
        self._runs = RunTable(
            body, self._on_exit, self._on_ready, f"reconciler {reconciler_id!r}", reconciler_id
        )
        self.desired: dict[Hashable, ReconcileTaskSpec] = {}
        self.deps: dict[Hashable, tuple[Hashable, ...]] = {}
        self._dependents: dict[Hashable, list[Hashable]] = {}
        self.records: dict[Hashable, SupervisedRecord] = {}
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._dirty: dict[Hashable, None] = {}  # ordered sets, as dicts
        self._waiting_slot: dict[Hashable, None] = {}
        self._open: set[Hashable] = set()  # desired, not "always", not terminal
        self._complete = asyncio.Event()
        self._complete.set()
        self._wake = asyncio.Event()
        self._control: asyncio.Task[None] | None = None
        self._stopping = False
        self._unannounced_stop = False  # stopped, but stop() has not finished yet
        self._restored = False
        self._stops = 0  # stop() calls so far: a start() that sees one come gives way
        self._loop: asyncio.AbstractEventLoop | None = None
        self._origin = RunClock(0.0, time.time())  # for display
        self.started_at: float | None = None
        self.cycles = 0
        self._rng = random.Random()

    # -- lifecycle -------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._control is not None

    def uptime(self) -> float:
        """Seconds since the last start() (0.0 before the first)."""
        if self.started_at is None or self._loop is None:
            return 0.0
        return self._loop.time() - self.started_at

    async def start(self) -> None:
        """Start the control loop; on the first start, restore from the store first.

        A ``stop()`` called while the store is read wins: this returns
        without starting (a later ``start()`` starts from what was restored).
        """
        if self._control is not None:
            return
        loop = self._bind_loop()
        restored = 0
        if self._writer is not None and not self._restored:
            self._restored = True  # set before awaiting: a concurrent start() must not restore
            stops = self._stops
            try:
                restored = await self._restore(self._writer)
            except BaseException:
                self._restored = False
                raise
            if self._control is not None or self._stops != stops:
                return
        self._stopping = False
        self.started_at = loop.time()
        for record in self.records.values():
            if record.status is _S.STOPPED and record.reason == SHUTDOWN:
                record.reason = None
                self._move(record, _S.PENDING, EventType.TASK_PENDING, reason="resumed")
        self._dirty.update(dict.fromkeys(self.desired))
        self._control = loop.create_task(self._control_loop(), name=f"reconciler {self._rid}")
        if self._writer is not None:
            self._writer.start(loop)
        self._emit(
            EventType.RECONCILER_STARTED, None, task_count=len(self.desired), restored=restored
        )

    async def stop(self, limit: float | None = None) -> None:
        """Admit nothing new, cancel and await every run, flush checkpoints and events.

        Runs that are still alive after ``limit`` seconds (they swallow
        cancellation) raise ``TimeoutError`` naming them; they stay tracked
        and cancelled again, and a later ``stop()`` waits for them again.

        Everything is cancelled before the first ``await``: a ``stop()`` that
        is itself cancelled leaves no control loop, timer or checkpoint
        writer behind, and runs that end on their own.
        """
        self._stopping = True
        self._stops += 1
        control, self._control = self._control, None
        if control is not None:
            control.cancel()
            self._unannounced_stop = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._waiting_slot.clear()
        for task_id in list(self.records):
            self._runs.cancel(task_id, SHUTDOWN)
        try:
            if control is not None:
                await asyncio.wait({control})
            await self._await_runs(limit)
        except asyncio.CancelledError:
            if self._writer is not None:
                self._writer.abandon()
            raise
        if self._unannounced_stop:
            self._unannounced_stop = False
            self._emit(EventType.RECONCILER_STOPPED, None, reconcile_cycle=self.cycles)
        await self.settle()

    async def _await_runs(self, limit: float | None) -> None:
        """Wait until no run is alive; after ``limit`` s raise ``TimeoutError`` naming them."""
        loop = self._bind_loop()
        deadline = None if limit is None else loop.time() + limit
        while len(self._runs):  # exits are recorded before wait() returns
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                stuck = ", ".join(map(repr, self._runs.task_ids()))
                raise TimeoutError(
                    f"reconciler {self._rid!r}: stop() timed out after {limit:g} s; "
                    f"tasks still running: {stuck} (they swallow cancellation and are "
                    f"cancelled again every {RECANCEL_EVERY_S:g} s; call stop() again "
                    "to wait for them)"
                )
            await asyncio.wait(self._runs.tasks(), timeout=left)

    async def wait_ended(self, runs: set[asyncio.Task[Any]]) -> None:
        """Wait for runs cancelled by ``apply``, for at most ``CANCEL_GRACE_S``.

        A run still alive then swallows cancellation: it is left to the run
        table (cancelled again, named in a WARNING, its exit recorded when it
        ends), so that a caller of ``update()`` is never held by one bad task.
        """
        if runs:
            await asyncio.wait(runs, timeout=CANCEL_GRACE_S)

    async def settle(self) -> None:
        """When not running: write pending checkpoints and deliver pending events now."""
        if self._control is None:
            try:
                if self._writer is not None:
                    await self._writer.close()
            finally:
                await self.events.drain()

    async def wait_complete(self, limit: float) -> bool:
        """Wait until every desired task not under "always" is terminal (woken, not polled)."""
        self._bind_loop()
        try:
            async with asyncio.timeout(None if math.isinf(limit) else max(limit, 0.0)):
                while self._open:
                    await self._complete.wait()
        except TimeoutError:
            return not self._open
        return True

    # -- desired state ---------------------------------------------------------

    def apply(
        self, specs: dict[Hashable, ReconcileTaskSpec], deps: dict[Hashable, tuple[Hashable, ...]]
    ) -> set[asyncio.Task[Any]]:
        """Replace the desired state (validated by the caller); return runs to await."""
        self._bind_loop()
        diff = diff_desired(self.desired, specs)
        self.desired, self.deps = specs, deps
        self._dependents = _reverse(deps)
        ending: set[asyncio.Task[Any] | None] = set()
        for task_id in diff.removed:
            self._cancel_timer(task_id)
            ending.add(self._runs.cancel(task_id, REMOVED, override=True))
            record = self.records[task_id]
            if task_id not in self._runs and record.status is not _S.STOPPED:
                self._move(record, _S.STOPPED, EventType.TASK_STOPPED, reason=REMOVED)
            record.reason = REMOVED
        for task_id in diff.added:
            if task_id in self._runs:  # removed a moment ago; that run is still ending
                ending.add(self._runs.cancel(task_id, SPEC_CHANGED, override=True))
            else:
                self.records[task_id] = SupervisedRecord(task_id)
        for task_id in diff.changed:
            self._respec(task_id, ending)
        for task_id in diff.retuned:  # settings apply from the next exit, except:
            record = self.records[task_id]
            if (
                record.status is _S.SUCCESS
                and specs[task_id].restart_policy is not RestartPolicy.ALWAYS
            ):
                record.next_start_after = None  # no "always" restart any more
                self._cancel_timer(task_id)
        self._recount_open()
        self._dirty.update(dict.fromkeys(specs))
        self._wake.set()
        if self._writer is not None:
            for task_id in (*specs, *diff.removed):
                self._writer.mark(task_id)
        counts = {
            "added": len(diff.added),
            "removed": len(diff.removed),
            "changed": len(diff.changed),
        }
        self._emit(EventType.DESIRED_STATE_UPDATED, None, task_count=len(specs), **counts)
        return {task for task in ending if task is not None}

    def _respec(self, task_id: Hashable, ending: set[asyncio.Task[Any] | None]) -> None:
        """A changed spec: restart with a fresh quota (after the old run has ended)."""
        self._cancel_timer(task_id)
        if task_id in self._runs:
            ending.add(self._runs.cancel(task_id, SPEC_CHANGED, override=True))
            return
        record = self.records[task_id]
        record.fresh_quota()
        if record.status is not _S.PENDING:
            self._move(record, _S.PENDING, EventType.TASK_PENDING, reason=SPEC_CHANGED)

    # -- the control loop ------------------------------------------------------

    async def _control_loop(self) -> None:
        resync = self._settings.resync_s
        while True:
            if self._dirty:
                await asyncio.sleep(0)  # let runs and callbacks in between rounds
            else:
                self._wake.clear()
                try:
                    async with asyncio.timeout(None if math.isinf(resync) else resync):
                        await self._wake.wait()
                except TimeoutError:
                    self._dirty.update(dict.fromkeys(self.desired))
            self._round()

    def _round(self) -> None:
        batch, self._dirty = self._dirty, {}
        now = self._clock()
        for task_id in batch:
            self._reconcile(task_id, now)
        free = self._settings.cap - len(self._runs)
        while free > 0 and self._waiting_slot:
            task_id = next(iter(self._waiting_slot))
            del self._waiting_slot[task_id]
            self._mark(task_id)
            free -= 1
        self.cycles += 1

    def _reconcile(self, task_id: Hashable, now: float) -> None:
        spec = self.desired.get(task_id)
        record = self.records.get(task_id)
        if spec is None or record is None or self._stopping:
            return
        deps = {d: self.records[d] for d in self.deps.get(task_id, ())}
        rest_for_one = self._settings.restart.rest_for_one
        action = reconcile_task(record, deps, now, rest_for_one=rest_for_one)
        if action.kind is ActionKind.UNSKIP:
            record.reason = record.root = record.last_error = None
            self._move(record, _S.PENDING, EventType.TASK_PENDING, reason="dependencies_recovered")
            action = reconcile_task(record, deps, now, rest_for_one=rest_for_one)
        if action.kind is ActionKind.START:
            if len(self._runs) < self._settings.cap:
                self._start(record, spec, deps, now)
            else:
                self._waiting_slot[task_id] = None
        elif action.kind is ActionKind.WAIT:
            self._arm_timer(task_id, action.at)
        elif action.kind is ActionKind.SKIP:
            self._skip(record, action.deps, deps)
        elif action.kind is ActionKind.STOP:
            self._runs.cancel(task_id, UPSTREAM, upstream=action.deps[0])

    def _skip(
        self,
        record: SupervisedRecord,
        dead: tuple[Hashable, ...],
        deps: Mapping[Hashable, SupervisedRecord],
    ) -> None:
        first = deps[dead[0]]
        root = first.root if first.status is _S.SKIPPED and first.root is not None else dead[0]
        reason = f"dependency {dead[0]!r} is {first.status.value}"
        if root != dead[0] and root in self.records:
            reason += f" (root cause: {root!r} is {self.records[root].status.value})"
        record.reason = record.last_error = reason
        record.root, record.next_start_after = root, None
        self._cancel_timer(record.task_id)
        self._move(
            record, _S.SKIPPED, EventType.TASK_SKIPPED, failed_deps=list(dead), reason=reason
        )

    # -- runs --------------------------------------------------------------------

    def _start(
        self,
        record: SupervisedRecord,
        spec: ReconcileTaskSpec,
        deps: Mapping[Hashable, SupervisedRecord],
        now: float,
    ) -> None:
        task_id = record.task_id
        self._cancel_timer(task_id)
        self._waiting_slot.pop(task_id, None)
        argument = spec.spec
        if self._settings.inject_dep_outputs and deps:  # the DAG executor's shape, on a copy
            outputs = {d: dep.output for d, dep in deps.items()}
            argument = with_outputs(argument, DEP_OUTPUTS, outputs)
        record.runs += 1
        record.restart_count = record.runs - 1
        record.ready, record.started_at, record.next_start_after = False, now, None
        record.dep_runs = {d: dep.run_id for d, dep in deps.items()}
        record.run_id = run_id = self._runs.reserve()
        restarts = record.restart_count
        if restarts:
            log.info(
                "reconciler %r: task %r restarted (run %d, restart %d)",
                self._rid, task_id, record.runs, restarts,
                extra=fields(self._rid, task_id, record.runs),
            )  # fmt: skip
        self._move(
            record, _S.RUNNING, EventType.TASK_STARTED, restart_count=restarts, run=record.runs
        )
        limit = check_timeout(spec.timeout_s)
        observer = observe.current
        if restarts and observer is not None:
            observer.restarted(self._rid, task_id)
        self._runs.start(self._bind_loop(), task_id, run_id, argument, limit, record.runs)

    def _on_exit(self, task_id: Hashable, run_id: int, exit_: Exit) -> None:
        if self._waiting_slot:
            self._wake.set()  # a slot is free
        record = self.records.get(task_id)
        if record is None or record.run_id != run_id:
            return
        record.ready = False
        if exit_.cancelled is not None:
            self._after_cancel(record, exit_.cancelled, exit_.upstream)
        else:
            self._after_exit(record, exit_, self._clock())

    def _after_exit(self, record: SupervisedRecord, exit_: Exit, now: float) -> None:
        status = exit_.status
        ran_for = now - (record.started_at if record.started_at is not None else now)
        info = {"status": status.value, "duration_ms": round(ran_for * 1e3, 3), "run": record.runs}
        if status is _S.SUCCESS:
            record.output, record.last_error = exit_.output, None
            self._move(record, status, EventType.TASK_COMPLETED, **info)
        else:
            record.last_error = exit_.error
            self._move(record, status, EventType.TASK_FAILED, error=exit_.error, **info)
        spec = self.desired[record.task_id]  # a removed task's run exits as cancelled
        decision = decide(
            spec.restart_policy,
            failed=status is not _S.SUCCESS,
            ran_for=ran_for,
            now=now,
            max_restart_attempts=spec.max_restart_attempts,
            backoff_base=spec.restart_backoff_base,
            settings=self._settings.restart,
            history=record.history,
            u=self._rng.random(),
        )
        failures = record.history.streak
        if decision.blocked is not None:
            record.reason = decision.blocked
            self._move(
                record, _S.BLOCKED, EventType.TASK_BLOCKED, reason=record.reason, failures=failures
            )
        elif decision.restart:
            record.next_start_after = now + decision.delay
            if status is not _S.SUCCESS:  # a clean exit still satisfies dependents
                self._move(record, _S.PENDING)
            self._emit(
                EventType.TASK_RESTART_SCHEDULED, record.task_id, delay_s=decision.delay,
                restart_count=record.runs, after=status.value, failures=failures,
            )  # fmt: skip
            self._mark(record.task_id)

    def _after_cancel(
        self, record: SupervisedRecord, reason: str, upstream: Hashable | None
    ) -> None:
        extra = {} if upstream is None else {"upstream": upstream}
        if reason == SHUTDOWN and not self._stopping:  # stop() timed out, start() came since
            self._move(record, _S.PENDING, EventType.TASK_STOPPED, reason=reason)  # resumes
            self._mark(record.task_id)
            return
        if reason in (REMOVED, SHUTDOWN):
            record.reason = reason
            self._move(record, _S.STOPPED, EventType.TASK_STOPPED, reason=reason, **extra)
            return
        if reason == SPEC_CHANGED:
            record.fresh_quota()
        self._move(record, _S.PENDING, EventType.TASK_STOPPED, reason=reason, **extra)  # runs again
        self._mark(record.task_id)

    def _on_ready(self, task_id: Hashable, run_id: int) -> None:
        record = self.records.get(task_id)
        if record is None or record.run_id != run_id or record.status is not _S.RUNNING:
            return
        if record.ready or self._runs.cancelling(run_id):
            return
        record.ready = True
        self._changed(record)
        self._emit(EventType.TASK_READY, task_id, run=record.runs)

    # -- bookkeeping -----------------------------------------------------------

    def _move(
        self, record: SupervisedRecord, to: SupervisedStatus, event: str | None = None, **data: Any
    ) -> None:
        """The one place a status changes: table check, triggers, checkpoint, event."""
        record.move(to)
        self._changed(record)
        if event is not None:
            self._emit(event, record.task_id, **data)

    def _changed(self, record: SupervisedRecord) -> None:
        task_id = record.task_id
        dependents = self._dependents.get(task_id)
        if dependents:
            self._dirty.update(dict.fromkeys(dependents))
            self._wake.set()
        spec = self.desired.get(task_id)
        if spec is not None and spec.restart_policy is not RestartPolicy.ALWAYS:
            if record.status in TERMINAL:
                self._open.discard(task_id)
            else:
                self._open.add(task_id)
            self._sync_complete()
        if self._writer is not None:
            self._writer.mark(task_id)

    def _recount_open(self) -> None:
        self._open = {
            task_id
            for task_id, spec in self.desired.items()
            if spec.restart_policy is not RestartPolicy.ALWAYS
            and self.records[task_id].status not in TERMINAL
        }
        self._sync_complete()

    def _sync_complete(self) -> None:
        if self._open:
            self._complete.clear()
        else:
            self._complete.set()

    def _mark(self, task_id: Hashable) -> None:
        self._dirty[task_id] = None
        self._wake.set()

    def _arm_timer(self, task_id: Hashable, at: float) -> None:
        timer = self._timers.get(task_id)
        if timer is not None:
            if timer.when() == at:
                return
            timer.cancel()
        self._timers[task_id] = self._bind_loop().call_at(at, self._timer_fired, task_id)

    def _timer_fired(self, task_id: Hashable) -> None:
        self._timers.pop(task_id, None)
        self._mark(task_id)

    def _cancel_timer(self, task_id: Hashable) -> None:
        timer = self._timers.pop(task_id, None)
        if timer is not None:
            timer.cancel()

    def _emit(self, event_type: str, task_id: Hashable | None, **data: Any) -> None:
        self.events.emit(event_type, task_id, **data)

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:  # an asyncio.Event binds to the first loop it meets
                self._wake, self._complete = asyncio.Event(), asyncio.Event()
                self._sync_complete()
            self._loop = loop
            self._origin = RunClock(loop.time(), time.time())
        return loop

    def _clock(self) -> float:
        return self._bind_loop().time()

    def wall(self, t: float | None) -> datetime | None:
        """A monotonic time as a wall-clock datetime (for display only)."""
        if t is None:
            return None
        return self._origin.wall(t)

    # -- checkpoints -----------------------------------------------------------

    def snapshot(self, record: SupervisedRecord) -> ReconcileTaskState:
        """The public view of a record: a new object, with wall-clock datetimes."""
        return snapshot(record, self.wall)

    def _entry(self, task_id: Hashable) -> Entry:
        return checkpoint_entry(task_id, self.desired, self.deps, self.records, self.wall)

    async def _restore(self, writer: CheckpointWriter) -> int:
        """Add the stored tasks that the desired state does not already name."""
        found = await restore(writer, self.desired, self.deps)
        if found is None:
            return 0
        self.desired, self.deps, records = found
        self._dependents = _reverse(self.deps)
        self.records.update(records)
        self._recount_open()
        return len(records)


def _reverse(deps: Mapping[Hashable, Iterable[Hashable]]) -> dict[Hashable, list[Hashable]]:
    dependents: dict[Hashable, list[Hashable]] = {}
    for task_id, upstream in deps.items():
        for dep in upstream:
            dependents.setdefault(dep, []).append(task_id)
    return dependents
