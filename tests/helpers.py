from __future__ import annotations

import asyncio
import math
from typing import Any


async def leftover_tasks() -> set[asyncio.Task[Any]]:
    """Tasks still alive on this loop besides the caller's own."""
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}


class Recorder:
    """A sync event callback that keeps every event."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event_type: str, event: dict[str, Any]) -> None:
        self.events.append((event_type, event))

    def types(self, task_id: object = ..., *, kind: str | None = None) -> list[str]:
        return [
            t
            for t, e in self.events
            if (task_id is ... or e["task_id"] == task_id) and (kind is None or t == kind)
        ]

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [e for t, e in self.events if t == event_type]


class Probe:
    """A task body that sleeps and records the peak number of bodies running at once."""

    def __init__(self, seconds: float, fail_odd: bool = False) -> None:
        self.seconds = seconds
        self.fail_odd = fail_odd
        self.running = 0
        self.peak = 0

    async def __call__(self, task_id: Any, spec: Any) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(self.seconds)
        finally:
            self.running -= 1
        if self.fail_odd and task_id % 2:
            raise ValueError("bad input")


class Stubborn:
    """A body that swallows cancellations.

    It yields to the cancellation after ``swallow`` swallowed ones (0: it
    swallows every one), and ends by itself ``refuse_for`` s after its first
    cancellation, so that old code fails an assertion instead of hanging: a
    cancellation that comes at or after that time is not swallowed either.
    """

    def __init__(self, refuse_for: float = math.inf, swallow: int = 0) -> None:
        self.refuse_for = refuse_for
        self.swallow = swallow
        self.cancels: list[float] = []  # loop times of the cancellations it received
        self.ended: float | None = None

    async def __call__(self, task_id: Any, spec: Any) -> None:
        loop = asyncio.get_running_loop()
        first: float | None = None  # this run's first cancellation
        swallowed = 0
        while True:
            until = math.inf if first is None else first + self.refuse_for
            try:
                await asyncio.sleep(min(until - loop.time(), 3600.0))
            except asyncio.CancelledError:
                now = loop.time()
                self.cancels.append(now)
                first = now if first is None else first
                swallowed += 1
                if 0 < self.swallow < swallowed or now - first >= self.refuse_for:
                    self.ended = now
                    raise
            else:
                if loop.time() >= until:  # its time is up: it ends without being asked again
                    self.ended = loop.time()
                    return
