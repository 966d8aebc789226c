"""Test helpers: an event loop on virtual time.

``VirtualClockEventLoop`` is a selector event loop whose ``time()`` is a
number it owns. Whenever the loop has nothing ready to run and would block
waiting for a timer, it jumps straight to that timer instead of sleeping
(trio's ``MockClock(autojump_threshold=0)``). Backoff, timeouts and restart
delays therefore take microseconds of real time and behave exactly, with no
dependence on how loaded the machine is.

Time only jumps while the loop is idle. Real I/O and threads are still
waited for in real time, but while a thread works the virtual clock may
jump ahead to the next timer, so keep threads out of virtual-time tests.

Usage::

    from wave_executor.testing import run_virtual

    def test_backoff():
        result, elapsed = run_virtual(main())  # elapsed is virtual seconds
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine, Mapping
from typing import Any, TypeAlias, TypeVar

__all__ = [
    "OverloadedError",
    "RateLimitedService",
    "VirtualClock",
    "VirtualClockEventLoop",
    "run_virtual",
]

T = TypeVar("T")
FileDescriptorLike: TypeAlias = Any  # int or an object with fileno(), as selectors takes


class VirtualClock:
    """A monotonic clock that only moves when told to (or when the loop is idle)."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go back")
        self._now += seconds


class _AutojumpSelector(selectors.BaseSelector):
    """Wraps a real selector; turns an idle wait for a timer into a clock jump."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._real = selectors.DefaultSelector()

    def register(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            # Nothing scheduled at all: only real I/O (or a thread) can wake us.
            return self._real.select(None)
        self._clock.advance(timeout)
        return []

    def get_key(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Mapping[FileDescriptorLike, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()


class VirtualClockEventLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on virtual time; ``loop.clock`` is its ``VirtualClock``."""

    def __init__(self, clock: VirtualClock | None = None) -> None:
        self.clock = clock if clock is not None else VirtualClock()
        super().__init__(selector=_AutojumpSelector(self.clock))

    def time(self) -> float:
        return self.clock.time()


def run_virtual(coro: Coroutine[Any, Any, T]) -> tuple[T, float]:
    """Run ``coro`` on a fresh virtual-time loop; return its result and the
    virtual seconds that passed."""
    clock = VirtualClock()
    with asyncio.Runner(loop_factory=lambda: VirtualClockEventLoop(clock)) as runner:
        start = clock.time()
        result = runner.run(coro)
        return result, clock.time() - start


class OverloadedError(Exception):
    """The simulated service refused a call: it was at capacity (HTTP 429)."""

    status_code = 429


class RateLimitedService:
    """A stand-in for a service that pushes back, for tests and benchmarks.

    It serves ``capacity`` calls at a time, each taking ``service_time``
    seconds; a call beyond capacity is refused with ``OverloadedError``
    after ``reject_after`` seconds (a fast 429, as real APIs answer). It
    counts what happened, so a test can check goodput and refusals. Works
    on real time and on the virtual clock alike.
    """

    def __init__(self, capacity: int, service_time: float, reject_after: float = 0.001) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.service_time = service_time
        self.reject_after = reject_after
        self.in_service = 0
        self.peak = 0
        self.served = 0
        self.refused = 0

    async def call(self, payload: Any = None) -> Any:
        if self.in_service >= self.capacity:
            self.refused += 1
            await asyncio.sleep(self.reject_after)
            raise OverloadedError(f"over capacity ({self.capacity} in service)")
        self.in_service += 1
        self.peak = max(self.peak, self.in_service)
        try:
            await asyncio.sleep(self.service_time)
        finally:
            self.in_service -= 1
        self.served += 1
        return payload
