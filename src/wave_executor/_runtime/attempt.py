"""One attempt of one task: deadline, call, outcome.

The per-attempt timeout is enforced by a ``Watchdog`` that belongs to the
worker, not by an ``asyncio.timeout()`` per attempt: a timer handle per
attempt costs about 7 µs (creation, heap push, lazy cancel), more than the
whole rest of the scheduler's work for a task. The watchdog keeps one timer
per worker and re-arms it only when it fires, so with fast tasks and a long
timeout it costs nothing per task.

When the deadline passes, the watchdog cancels the worker's task; the
attempt turns that cancellation into ``AttemptTimeout`` using the same
``cancel``/``uncancel`` protocol as ``asyncio.timeout``, so a cancellation
from outside (the caller, the task group) is never mistaken for a timeout.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeAlias

__all__ = ["AttemptTimeout", "TaskBody", "Watchdog", "run_attempt"]

TaskBody: TypeAlias = Callable[[Any, Any], Awaitable[Any]]


class AttemptTimeout(TimeoutError):
    """An attempt ran past its per-attempt timeout and was cancelled."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(f"timeout after {timeout:g}s")


class Watchdog:
    """Enforces the deadline of whatever attempt its worker task is running."""

    __slots__ = ("_deadline", "_expired", "_loop", "_task", "_timer", "_timer_at")

    def __init__(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        self._loop = loop
        self._task = task
        self._deadline = math.inf
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf  # when the timer fires (inf: no timer)
        self._expired = False

    def arm(self, deadline: float) -> None:
        self._deadline = deadline
        if deadline < self._timer_at:  # rare: no timer yet, or a shorter limit than before
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(deadline, self._fire)
            self._timer_at = deadline

    def disarm(self) -> None:
        self._deadline = math.inf
        if self._expired:
            # The body swallowed our cancellation and returned: undo our request.
            self._expired = False
            self._task.uncancel()

    def absorb(self) -> bool:
        """In ``except CancelledError``: was this cancellation ours (and only ours)?"""
        if not self._expired:
            return False
        self._expired = False
        self._deadline = math.inf
        return self._task.uncancel() == 0

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = math.inf

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        deadline = self._deadline
        if deadline == math.inf:
            return
        if self._loop.time() >= deadline:
            self._expired = True
            self._task.cancel()
        else:
            self._timer = self._loop.call_at(deadline, self._fire)
            self._timer_at = deadline


async def run_attempt(
    body: TaskBody,
    task_id: Hashable,
    spec: Any,
    watchdog: Watchdog,
    limit: float,
    now: float,
) -> Any:
    """Await ``body(task_id, spec)`` within ``limit`` seconds from ``now``.

    Returns the output; raises ``AttemptTimeout`` on timeout and lets any
    other exception of the body through.
    """
    if limit != math.inf:
        watchdog.arm(now + limit)
    try:
        return await body(task_id, spec)
    except asyncio.CancelledError:
        if watchdog.absorb():
            raise AttemptTimeout(limit) from None
        raise
    finally:
        watchdog.disarm()
