"""The supervisor's edges: its event stream, and checkpoints out and in.

Events and checkpoint writes are fed synchronously when a record changes and
delivered from their own task, so neither a slow callback nor a slow store
delays a reaction; both are drained when the reconciler stops (or, while it
is not running, at the end of each ``update()``), so nothing is left behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeAlias

from wave_executor._core.graph import build_graph
from wave_executor._core.logs import fields, get_logger
from wave_executor._core.reconcile import (
    CheckpointStore,
    ReconcileTaskSpec,
    ReconcileTaskState,
    SupervisedRecord,
    SupervisedStatus,
    record_from_checkpoint,
    spec_from_checkpoint,
)
from wave_executor._runtime.events import EventCallback, EventHub, RunEvents

__all__ = [
    "REMOVED",
    "SHUTDOWN",
    "CheckpointWriter",
    "Entry",
    "EventOutlet",
    "checkpoint_entry",
    "restore",
    "snapshot",
]

REMOVED = "removed_from_desired"
SHUTDOWN = "reconciler_stopped"

log = get_logger("reconciler")

#: What is saved for a task: its spec (None once removed), a state snapshot, its deps.
Entry: TypeAlias = tuple[ReconcileTaskSpec | None, ReconcileTaskState, set[Any]]


class EventOutlet:
    """Event callbacks of one reconciler, delivered through ``RunEvents``.

    A ``RunEvents`` copies the callback list when it is made, so a new
    subscription starts a new stream; the old one is drained later.
    """

    def __init__(self, source_id: str, enabled: bool) -> None:
        self._source_id = source_id
        self._enabled = enabled
        self._hub = EventHub()
        self._stream: RunEvents | None = None
        self._retired: list[RunEvents] = []

    def subscribe(self, callback: EventCallback) -> EventCallback:
        self._hub.subscribe(callback)
        self._retire()
        return callback

    def unsubscribe(self, callback: EventCallback) -> None:
        self._hub.unsubscribe(callback)
        self._retire()

    def _retire(self) -> None:
        if self._stream is not None:
            self._retired.append(self._stream)
            self._stream = None

    def emit(self, event_type: str, task_id: Hashable | None, **data: Any) -> None:
        stream = self._stream
        if stream is None:
            stream = self._stream = self._hub.stream(self._source_id, self._enabled)
        stream.emit(event_type, task_id, **data)

    async def drain(self) -> None:
        """Deliver everything queued; no dispatcher task survives this."""
        streams = [*self._retired, *([self._stream] if self._stream is not None else [])]
        self._retired.clear()
        for stream in streams:
            await stream.drain()


class CheckpointWriter:
    """Saves changed tasks to a ``CheckpointStore``, coalescing repeated changes.

    ``entry(task_id)`` is read when the save happens, so a task that changed
    ten times while the store was busy is written once, as it is now. Store
    errors are logged, never raised into the reconciler (``CancelledError``
    from the store included); a ``BaseException`` of the store's own ends
    the writer and is raised by ``close()``, that is by ``stop()``.
    """

    def __init__(
        self,
        store: CheckpointStore,
        reconciler_id: str,
        entry: Callable[[Hashable], Entry],
    ) -> None:
        self.store = store
        self._rid = reconciler_id
        self._entry = entry
        self._unsaved: dict[Hashable, None] = {}
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def mark(self, task_id: Hashable) -> None:
        self._unsaved[task_id] = None
        if self._wake is not None:
            self._wake.set()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._task is not None:
            return
        self._closing = False
        self._wake = asyncio.Event()
        self._wake.set()
        self._task = loop.create_task(self._write_loop(), name=f"checkpoints {self._rid}")

    async def close(self) -> None:
        """Write what is unsaved, then end the writer task."""
        task, self._task = self._task, None
        if task is not None and self._wake is not None:
            self._closing = True
            self._wake.set()
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:
                task.cancel()  # stop() was cancelled: no writer task outlives it
                await asyncio.wait({task})  # (it ends at once: it awaits nothing of ours)
                raise
        self._wake = None
        await self.flush()
        if task is not None and not task.cancelled() and (error := task.exception()) is not None:
            raise error  # a BaseException of the store's own ended the writer: the caller's

    def abandon(self) -> None:
        """End the writer task now (``stop()`` was cancelled): tasks not yet
        written stay marked for the next ``close()``, but a write it was in
        the middle of may be lost."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        self._wake = None

    async def flush(self) -> None:
        me = asyncio.current_task()
        while self._unsaved:
            batch, self._unsaved = self._unsaved, {}
            for task_id in batch:
                cancelling = 0 if me is None else me.cancelling()
                try:
                    await self._save(task_id)
                except (Exception, asyncio.CancelledError) as exc:
                    if isinstance(exc, asyncio.CancelledError) and (
                        me is None or me.cancelling() > cancelling
                    ):
                        raise  # we were cancelled, not the store failing
                    log.exception(
                        "reconciler %r: checkpoint of task %r failed", self._rid, task_id,
                        extra=fields(self._rid, task_id),
                    )  # fmt: skip

    async def _write_loop(self) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            await wake.wait()
            wake.clear()
            await self.flush()
            if self._closing:
                return

    async def _save(self, task_id: Hashable) -> None:
        spec, state, deps = self._entry(task_id)
        if spec is None:
            delete = getattr(self.store, "delete_reconciler_state", None)
            if delete is not None:
                await delete(self._rid, task_id)
                return
        await self.store.save_reconciler_state(self._rid, task_id, spec, state, deps)

    async def load(self) -> tuple[dict[Any, Any], dict[Any, Any], dict[Any, Any]]:
        specs, states, deps = await self.store.load_reconciler_state(self._rid)
        return dict(specs), dict(states), dict(deps)


def snapshot(
    record: SupervisedRecord, wall: Callable[[float | None], datetime | None]
) -> ReconcileTaskState:
    """The public view of a record: a new object, with wall-clock datetimes."""
    return ReconcileTaskState(
        task_id=record.task_id,
        status=record.status,
        restart_count=record.restart_count,
        last_started=wall(record.started_at),
        next_start_after=wall(record.next_start_after),
        last_error=record.last_error,
        output=record.output,
        ready=record.ready,
        reason=record.reason,
    )


def checkpoint_entry(
    task_id: Hashable,
    desired: Mapping[Hashable, ReconcileTaskSpec],
    deps: Mapping[Hashable, tuple[Hashable, ...]],
    records: Mapping[Hashable, SupervisedRecord],
    wall: Callable[[float | None], datetime | None],
) -> Entry:
    """What is saved for ``task_id`` now (spec None: it was removed)."""
    spec = desired.get(task_id)
    record = records.get(task_id)
    if spec is None or record is None:
        return None, ReconcileTaskState(task_id, SupervisedStatus.STOPPED, reason=REMOVED), set()
    state = snapshot(record, wall)
    if record.status is SupervisedStatus.STOPPED and record.reason == SHUTDOWN:
        state.status, state.reason = SupervisedStatus.PENDING, None  # a shutdown is no outcome
    return replace(spec), state, set(deps.get(task_id, ()))


Restored: TypeAlias = tuple[
    dict[Hashable, ReconcileTaskSpec],
    dict[Hashable, tuple[Hashable, ...]],
    dict[Hashable, SupervisedRecord],
]


async def restore(
    writer: CheckpointWriter,
    desired: Mapping[Hashable, ReconcileTaskSpec],
    deps: Mapping[Hashable, tuple[Hashable, ...]],
) -> Restored | None:
    """The desired state and dependencies merged with the stored tasks it does not name,
    and records for those; None if there are none. Raises for an invalid checkpoint."""
    specs, states, stored_deps = await writer.load()
    found = {
        task_id: spec_from_checkpoint(task_id, raw)
        for task_id, raw in specs.items()
        if raw is not None and task_id not in desired
    }
    if not found:
        return None
    found_deps = {t: tuple(stored_deps[t]) for t in found if stored_deps.get(t)}
    all_specs, all_deps = {**desired, **found}, {**deps, **found_deps}
    build_graph(all_specs, all_deps)  # a checkpoint is input too: validate it
    records = {
        task_id: record_from_checkpoint(task_id, states.get(task_id), spec.restart_policy)
        for task_id, spec in found.items()
    }
    return all_specs, all_deps, records
