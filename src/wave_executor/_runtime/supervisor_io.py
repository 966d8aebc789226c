"""The supervisor's two outlets: its event stream and its checkpoint writer.

Both are fed synchronously when a record changes and deliver from their own
task, so neither a slow callback nor a slow store delays a reaction; both
are drained when the reconciler stops (or, while it is not running, at the
end of each ``update()``), so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from typing import Any, TypeAlias

from wave_executor._core.reconcile import CheckpointStore, ReconcileTaskSpec, ReconcileTaskState
from wave_executor._runtime.events import EventCallback, EventHub, RunEvents

__all__ = ["CheckpointWriter", "Entry", "EventOutlet"]

log = logging.getLogger("wave_executor")

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
    errors are logged, never raised into the reconciler.
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
            await asyncio.wait({task})
        self._wake = None
        await self.flush()

    async def flush(self) -> None:
        while self._unsaved:
            batch, self._unsaved = self._unsaved, {}
            for task_id in batch:
                try:
                    await self._save(task_id)
                except Exception:
                    log.exception("reconciler %r: checkpoint of task %r failed", self._rid, task_id)

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
