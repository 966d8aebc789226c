"""Event delivery: typed inside, the 0.3.0 ``(event_type, dict)`` shape outside.

Callbacks may be plain functions or coroutine functions. Each is *called*
in order at the moment the event happens; a coroutine (or any awaitable) it
returns is queued and awaited by one dispatcher task per run, in order, so a
slow async callback delays later deliveries but never the scheduler. A
callback that raises is logged and otherwise ignored, ``CancelledError``
and ``BaseException`` subclasses of its own included: a callback that
raises ``CancelledError`` was not cancelled by anyone, and letting it
through would cancel the scheduler (or the dispatcher) instead.
``KeyboardInterrupt`` and ``SystemExit`` still propagate. Before
``execute()`` returns, every queued delivery has completed.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeAlias

from wave_executor._core.fan_out import ChildId
from wave_executor._core.logs import fields, get_logger
from wave_executor._core.run_clock import RunClock

__all__ = ["ENVELOPE", "EventCallback", "EventHub", "EventSink", "RunEvents", "TaggedEvents"]

log = get_logger("events")

EventCallback: TypeAlias = Callable[[str, dict[str, Any]], Awaitable[None] | None]

#: The keys every event carries; the rest of an event is its payload.
ENVELOPE = frozenset({"event_type", "execution_id", "task_id", "timestamp"})


class EventSink(Protocol):
    """Where a run sends its events. The engine checks ``active`` before it
    builds a payload, so a run nobody listens to pays nothing for events."""

    @property
    def active(self) -> bool: ...

    def emit(self, event_type: str, task_id: Hashable | None = None, **data: Any) -> None: ...


class EventHub:
    """The callbacks registered on one executor (shared by all its runs)."""

    __slots__ = ("_callbacks",)

    def __init__(self) -> None:
        self._callbacks: list[EventCallback] = []

    def subscribe(self, callback: EventCallback) -> EventCallback:
        if not callable(callback):
            raise TypeError(f"event callback must be callable, got {callback!r}")
        self._callbacks.append(callback)
        return callback

    def unsubscribe(self, callback: EventCallback) -> None:
        self._callbacks.remove(callback)

    def stream(
        self, execution_id: str, enabled: bool = True, clock: RunClock | None = None
    ) -> RunEvents:
        return RunEvents(self._callbacks if enabled else [], execution_id, clock)


class RunEvents:
    """Event emission for one run. ``active`` is False when nobody listens."""

    __slots__ = (
        "_callbacks", "_closing", "_dispatcher", "_pending", "_wake", "active", "clock",
        "execution_id",
    )  # fmt: skip

    def __init__(
        self, callbacks: list[EventCallback], execution_id: str, clock: RunClock | None = None
    ) -> None:
        self._callbacks = list(callbacks)
        self.execution_id = execution_id
        #: Timestamps follow the run's clock (a virtual one in tests); None: the machine's.
        self.clock = clock
        self.active = bool(self._callbacks)
        self._pending: deque[Awaitable[Any]] = deque()
        self._dispatcher: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._closing = False

    def emit(self, event_type: str, task_id: Hashable | None = None, **data: Any) -> None:
        if not self.active:
            return
        event: dict[str, Any] = {
            "event_type": event_type,
            "execution_id": self.execution_id,
            "task_id": task_id,
            "timestamp": self._now().isoformat(),
        }
        if type(task_id) is ChildId:  # a fan-out child names its parent
            event["parent_id"] = task_id.parent
        event.update(data)
        for callback in self._callbacks:
            try:
                returned = callback(event_type, dict(event) if len(self._callbacks) > 1 else event)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException:  # an Exception, CancelledError, or a BaseException of its own
                log.exception(
                    "event callback %r failed on %s", callback, event_type,
                    extra=fields(self.execution_id, task_id),
                )  # fmt: skip
                continue
            if inspect.isawaitable(returned):
                self._queue(returned)

    def _now(self) -> datetime:
        clock = self.clock
        if clock is None:
            return datetime.now(UTC)
        return clock.wall(asyncio.get_running_loop().time())

    def _queue(self, awaitable: Awaitable[Any]) -> None:
        dispatcher = self._dispatcher
        if dispatcher is not None and dispatcher.done() and awaitable is not _STOP:
            # KeyboardInterrupt or SystemExit ended it: nothing will await this
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            return
        self._pending.append(awaitable)
        if self._dispatcher is None:
            self._wake = asyncio.Event()
            self._dispatcher = asyncio.get_running_loop().create_task(
                self._dispatch(), name=f"wave-executor events {self.execution_id}"
            )
        assert self._wake is not None
        self._wake.set()

    async def _dispatch(self) -> None:
        assert self._wake is not None
        task = asyncio.current_task()
        assert task is not None
        while True:
            while self._pending:
                awaitable = self._pending.popleft()
                if awaitable is _STOP:
                    return
                cancelling = task.cancelling()
                try:
                    await awaitable
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:
                    if isinstance(exc, asyncio.CancelledError) and (
                        self._closing or task.cancelling() > cancelling
                    ):
                        raise  # close(), or the loop is cancelling its tasks
                    log.exception("async event callback failed", extra=fields(self.execution_id))
            self._wake.clear()
            await self._wake.wait()

    async def drain(self) -> None:
        """Wait until every queued delivery is done, then end the dispatcher."""
        task = self._dispatcher
        if task is None:
            return
        self._queue(_STOP)
        try:
            await asyncio.wait({task})
        finally:
            await self.close()

    async def close(self) -> None:
        """End the dispatcher now; undelivered coroutines are closed, not leaked."""
        task, self._dispatcher = self._dispatcher, None
        self._closing = True
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})
        while self._pending:
            awaitable = self._pending.popleft()
            if inspect.iscoroutine(awaitable):
                awaitable.close()


class TaggedEvents:
    """The events of one part of a run (a wave, say), sent on with tags added
    and the part's own run-level events left out."""

    __slots__ = ("_drop", "_parent", "_tags", "active")

    def __init__(
        self, parent: EventSink, tags: dict[str, Any], drop: frozenset[str] = frozenset()
    ) -> None:
        self._parent = parent
        self._tags = tags
        self._drop = drop
        self.active = parent.active

    def emit(self, event_type: str, task_id: Hashable | None = None, **data: Any) -> None:
        if event_type not in self._drop:
            self._parent.emit(event_type, task_id, **{**self._tags, **data})


class _Stop:
    """Queued last by ``drain``: tells the dispatcher to end."""

    def __await__(self) -> Any:
        return iter(())


_STOP: Awaitable[Any] = _Stop()
