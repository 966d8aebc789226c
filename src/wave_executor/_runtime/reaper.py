"""Tasks that swallow cancellation: cancelled again until they end, and named.

A body may catch ``CancelledError`` and carry on, or ``await`` in a
``finally``. Whatever cancelled it (an attempt's timeout, a run that
stops, a reconciler that stops or replaces a run) must not wait on it for
good. A ``Reaper`` cancels it again every ``RECANCEL_EVERY_S`` (a body that
swallows one cancellation usually yields to the next, as
``asyncio.timeout`` relies on) and, once it is ``CANCEL_GRACE_S`` late,
names it in one WARNING; when it ends late, an INFO line says so. Every
mode uses this one piece, with one wording.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Sequence

from wave_executor._core.logs import get_logger

__all__ = ["CANCEL_GRACE_S", "RECANCEL_EVERY_S", "Reaper", "log_ended_late", "log_swallowing"]

#: Seconds (loop time) a cancelled task may take to end before a WARNING names it.
CANCEL_GRACE_S = 5.0
#: Period (loop time) at which a cancelled task that is still alive is cancelled again.
RECANCEL_EVERY_S = 1.0

log = get_logger("cancel")


class Reaper:
    """Cancels again, every ``period`` seconds, whatever a cancellation left alive."""

    __slots__ = ("_alive", "_cancel", "_loop", "_period", "_since", "_timer", "_warn", "warned")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        since: float,
        alive: Callable[[], bool],
        cancel: Callable[[], object],
        warn: Callable[[float], None],
        period: float = RECANCEL_EVERY_S,
    ) -> None:
        self._loop = loop
        self._since = since  # loop time of the first cancellation (or the deadline)
        self._alive = alive
        self._cancel = cancel
        self._warn = warn  # called once, with the lateness, at CANCEL_GRACE_S
        self._period = period
        self._timer: asyncio.TimerHandle | None = None
        #: Whether the WARNING was given (callers add an INFO line when it ends).
        self.warned = False

    def start(self) -> Reaper:
        """First re-cancellation one period from now: the first cancellation's
        clean-up gets that long."""
        self._timer = self._loop.call_later(self._period, self._tick)
        return self

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def late(self) -> float:
        return self._loop.time() - self._since

    def _tick(self) -> None:
        self._timer = None
        if not self._alive():
            return
        late = self.late()
        if not self.warned and late >= CANCEL_GRACE_S:
            self.warned = True
            self._warn(late)
        self._cancel()
        self._timer = self._loop.call_later(self._period, self._tick)


def log_swallowing(
    scope: str | None, task_ids: Sequence[Hashable], late: float, after: str, period: float
) -> None:
    """The WARNING: which tasks still run, how late, and that they are cancelled again."""
    one = len(task_ids) == 1
    log.warning(
        "%s%s %s %s still running %.3g s after %s; %s cancellation, cancelling %s again "
        "every %.3g s",
        f"{scope}: " if scope else "", "task" if one else "tasks",
        ", ".join(map(repr, task_ids)), "is" if one else "are", late, after,
        "it swallows" if one else "they swallow", "it" if one else "them", period,
    )  # fmt: skip


def log_ended_late(scope: str, what: str, late: float, after: str) -> None:
    """The INFO line once something named in a WARNING has ended."""
    log.info("%s: %s ended %.3g s after %s", scope, what, late, after)
