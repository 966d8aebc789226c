"""``AdaptiveSemaphore``: a FIFO concurrency limiter whose size can change at run time.

For now ``adaptive=True`` does not shrink the window on its own (0.3.0 read
a queue of waiters as overload and collapsed to ``min_val``; a feedback
driven policy is planned). The limit only changes through ``set_limit``.
A waiter that is cancelled never leaks a slot: if it was granted a slot in
the same instant, the slot is passed on.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType

__all__ = ["AdaptiveSemaphore"]


class AdaptiveSemaphore:
    """Concurrency limiter with the 0.3.0 constructor and properties."""

    def __init__(
        self,
        initial: int,
        min_val: int = 2,
        max_val: int = 10_000,
        saturation_threshold: int = 20,
        adaptive: bool = True,
    ) -> None:
        if initial < 1:
            raise ValueError(f"initial must be >= 1, got {initial}")
        if min_val < 1 or max_val < min_val:
            raise ValueError(f"need 1 <= min_val <= max_val, got {min_val}, {max_val}")
        self.min_val = min_val
        self.max_val = max_val
        self.saturation_threshold = saturation_threshold
        self.adaptive = adaptive
        # The caller's initial value is honoured exactly, even below min_val.
        self._limit = min(initial, max_val)
        self._active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def active(self) -> int:
        return self._active

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    def locked(self) -> bool:
        return self._active >= self._limit

    def set_limit(self, limit: int) -> None:
        """Resize the window; a larger window admits waiters at once."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self._limit = limit
        self._wake_waiters()

    async def acquire(self) -> None:
        if self._active < self._limit and not self._waiters:
            self._active += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Granted and cancelled in the same instant: hand the slot on.
                self._active -= 1
                self._wake_waiters()
            raise
        finally:
            if (not waiter.done() or waiter.cancelled()) and waiter in self._waiters:
                self._waiters.remove(waiter)

    def release_nowait(self) -> None:
        if self._active <= 0:
            raise RuntimeError("AdaptiveSemaphore released more times than acquired")
        self._active -= 1
        self._wake_waiters()

    async def release(self) -> None:
        """Give a slot back (a coroutine, as in 0.3.0)."""
        self.release_nowait()

    def _wake_waiters(self) -> None:
        while self._waiters and self._active < self._limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._active += 1
                waiter.set_result(None)

    async def __aenter__(self) -> AdaptiveSemaphore:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release_nowait()

    def __repr__(self) -> str:
        return (
            f"AdaptiveSemaphore(limit={self._limit}, active={self._active}, waiting={self.waiting})"
        )
