"""Loop time to wall-clock time, for display.

Durations and deadlines are measured on the event loop's monotonic clock;
results and records show wall-clock times. A run reads both clocks once,
when it starts, and maps every loop time through that pair, so a run on a
virtual clock (``wave_executor.testing``) shows times that advance with it
instead of the machine's.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["RunClock"]


class RunClock:
    """A (loop time, wall time) pair read at the same moment."""

    __slots__ = ("mono0", "wall0")

    def __init__(self, mono0: float, wall0: float) -> None:
        self.mono0 = mono0
        self.wall0 = wall0  # seconds since the epoch

    def seconds(self, t: float) -> float:
        """Loop time ``t`` as seconds since the epoch."""
        return self.wall0 + (t - self.mono0)

    def wall(self, t: float) -> datetime:
        """Loop time ``t`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.wall0 + (t - self.mono0), UTC)
