from __future__ import annotations

import asyncio
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
