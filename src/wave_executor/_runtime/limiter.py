"""``AdaptiveSemaphore``: a FIFO concurrency limiter whose window learns.

With ``adaptive=True`` the window follows the AIMD policy of
``wave_executor._core.aimd``: it grows while calls succeed with the window
full and shrinks when calls report overload (429/503, a declared error
type, a timeout). It never shrinks because tasks are waiting: 0.3.0 did,
and so ran wide graphs at 2. Outcomes are reported with ``record_success``
/ ``record_overload`` / ``record_failure``, or automatically by
``async with sem.call():``. ``set_limit`` resizes by hand at any time.

A waiter that is cancelled never leaks a slot: if it was granted a slot in
the same instant, the slot is passed on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import NamedTuple

from wave_executor._core.aimd import SLOW_START_WINDOW, AIMDPolicy
from wave_executor._core.checks import check_exception_types, check_int, is_number
from wave_executor._core.overload import is_overload

__all__ = ["Admission", "AdaptiveSemaphore", "LimiterStatistics", "report_outcome"]

log = logging.getLogger("wave_executor")


class Admission(NamedTuple):
    """When a call got its slot, and how many calls (itself included) were in then."""

    admitted_at: float
    in_flight: int


@dataclass(frozen=True, slots=True)
class LimiterStatistics:
    limit: int
    active: int
    waiting: int
    successes: int
    overloads: int
    failures: int
    decreases: int


_current: ContextVar[Admission | None] = ContextVar("wave_executor_admission", default=None)


class AdaptiveSemaphore:
    """Concurrency limiter with the 0.3.0 constructor and properties.

    ``initial`` is honoured exactly, even below ``min_val`` (0.3.0 clamped it
    up); ``min_val`` is the floor the adaptive window never shrinks below
    (or ``initial``, when that is lower). ``saturation_threshold`` is
    accepted for 0.3.0 code and ignored: a queue is not overload.
    ``overload_errors`` declares exception types that mean "too much".

    An adaptive window slow-starts: it opens at ``slow_start_from`` (10) and
    doubles per round trip of calls made with it full, up to ``initial``;
    the first overload ends that, and AIMD goes on from there. So a window
    configured far wider than the service does not send its whole width at
    once. ``slow_start_from=None`` opens at ``initial``, as before.
    """

    def __init__(
        self,
        initial: int,
        min_val: int = 2,
        max_val: int = 10_000,
        saturation_threshold: int = 20,
        adaptive: bool = True,
        *,
        backoff_ratio: float = 0.9,
        overload_errors: tuple[type[BaseException], ...] = (),
        slow_start_from: int | None = SLOW_START_WINDOW,
    ) -> None:
        check_int("initial", initial, 1)
        check_int("min_val", min_val, 1)
        check_int("max_val", max_val, 1)
        if max_val < min_val:
            raise ValueError(f"need 1 <= min_val <= max_val, got {min_val}, {max_val}")
        if not is_number(backoff_ratio) or not 0 < backoff_ratio < 1:  # NaN fails too
            raise ValueError(f"backoff_ratio must be a number in (0, 1), got {backoff_ratio!r}")
        if slow_start_from is not None:
            check_int("slow_start_from", slow_start_from, 1)
        check_exception_types("overload_errors", overload_errors)
        self.min_val = min_val
        self.max_val = max_val
        self.saturation_threshold = saturation_threshold
        self.adaptive = adaptive
        self.overload_errors = overload_errors
        start = min(initial, max_val)
        self._policy = AIMDPolicy(
            start, min_limit=min(min_val, start), max_limit=max_val, backoff_ratio=backoff_ratio,
            initial_window=slow_start_from if adaptive else None,
        )  # fmt: skip
        self._limit = self._policy.limit
        self._active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._successes = self._overloads = self._failures = 0

    # -- state ---------------------------------------------------------------

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

    def statistics(self) -> LimiterStatistics:
        return LimiterStatistics(
            self._limit, self._active, self.waiting, self._successes, self._overloads,
            self._failures, self._policy.decreases,
        )  # fmt: skip

    def set_limit(self, limit: int) -> None:
        """Resize the window now; a larger window admits waiters at once."""
        check_int("limit", limit, 1)
        self._limit = self._policy.resize(limit) if self.adaptive else limit
        self._wake_waiters()

    # -- slots ---------------------------------------------------------------

    def try_acquire(self) -> Admission | None:
        """Take a slot if one is free and nobody queues for it; never waits."""
        if self._active >= self._limit or self._waiters:
            return None
        return self._admit()

    def _admit(self) -> Admission:
        self._active += 1
        admission = Admission(asyncio.get_running_loop().time(), self._active)
        _current.set(admission)
        return admission

    async def acquire(self) -> None:
        if self._active < self._limit and not self._waiters:
            self._admit()
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
        # _wake_waiters counted us in; record the admission in our own context.
        _current.set(Admission(asyncio.get_running_loop().time(), self._active))

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

    # -- feedback ------------------------------------------------------------

    def record_success(self, admission: Admission | None = None) -> None:
        """A call made under this semaphore succeeded."""
        self._successes += 1
        admission = admission or _current.get()
        if self.adaptive and admission is not None:
            before = self._limit
            self._limit = self._policy.on_success(admission.in_flight)
            if self._limit > before:
                self._wake_waiters()

    def record_overload(self, admission: Admission | None = None) -> None:
        """A call was refused for overload (or timed out): the window shrinks."""
        self._overloads += 1
        admission = admission or _current.get()
        if self.adaptive and admission is not None:
            now = asyncio.get_running_loop().time()
            self._limit = self._policy.on_overload(admission.admitted_at, now, admission.in_flight)

    def record_failure(self) -> None:
        """A call failed for another reason; the window does not move."""
        self._failures += 1

    def record_error(self, exc: BaseException, admission: Admission | None = None) -> bool:
        """Classify ``exc`` and record it; True when it counted as overload."""
        overload = is_overload(exc, self.overload_errors, isinstance(exc, TimeoutError))
        if overload:
            self.record_overload(admission)
        else:
            self.record_failure()
        return overload

    @asynccontextmanager
    async def call(self) -> AsyncIterator[Admission]:
        """Hold a slot for one call and report its outcome when the block ends."""
        await self.acquire()
        admission = _current.get()
        assert admission is not None
        try:
            yield admission
        except Exception as exc:
            self.record_error(exc, admission)
            raise
        else:
            self.record_success(admission)
        finally:
            self.release_nowait()

    # -- 0.3.0 context manager -------------------------------------------------

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


def report_outcome(semaphore: AdaptiveSemaphore, error: BaseException | None) -> None:
    """Tell a caller's semaphore how a call went (``error`` None: it succeeded).

    Its methods are the caller's code (a subclass may override them): one
    that raises, even ``CancelledError``, is logged and ignored, never a
    failure of the run or of the task.
    """
    try:
        if error is None:
            semaphore.record_success()
        else:
            semaphore.record_error(error)
    except (Exception, asyncio.CancelledError):
        what = "success" if error is None else "error"
        log.exception("specialist_semaphore %r failed to record a %s", semaphore, what)
