"""The adaptive concurrency policy: AIMD driven by what calls report.

Why not queue length: 0.3.0 shrank its window whenever more than 20 tasks
waited, reading its own backlog as overload, so a wide graph ran at 2 while
the service sat idle. A backlog says nothing about the service. What does:
an explicit overload answer (429/503, a declared error type) or a timeout.

The policy, after TCP congestion avoidance and Netflix's AIMD limiter:

* **Additive increase.** A success of a call that was admitted while the
  window was full (at least ``limit - 1`` others in flight) counts towards
  growth; after ``limit`` such successes the limit grows by one, i.e. about
  +1 per round trip while the window is actually used. A window that is not
  used does not grow, so an idle spell cannot build up a burst.
* **Multiplicative decrease** by ``backoff_ratio`` on overload, at most once
  per round trip: an overload from a call admitted *before* the last
  decrease is a consequence of the old limit and is ignored (TCP's fast
  recovery rule; it needs no RTT estimate).
* **Fast convergence.** A refused call that was admitted as the k-th call
  in flight shows that k was too many: on overload the limit also drops to
  k - 1 when that is lower. A service that refuses beyond capacity C thus
  sends a window of 100 to about C in one step instead of fifteen.
* **Careful probing.** The window remembers the level known to work: k - 1
  after the first overload, raised whenever a call admitted above it (within
  the window) succeeds. Below it the window grows at the normal pace; beyond
  it, ``probe_slowdown`` times slower. The window still finds capacity that
  appears later, but knocks on the ceiling rarely, which keeps refused calls
  rare. A probe beyond the known level that is refused sends the window back
  to that level, not lower: the level worked a moment ago, and cutting below
  it would leave capacity unused for round trips after every probe.
* **One refusal is not a new ceiling.** A refusal at or below the known
  level (the service holds less than it did, or it freed slots late for a
  moment) cuts the window as above, but lowers the known level to k - 1 only
  if the window has grown since its last decrease. Refusals that follow one
  another while the window only shrinks are one episode: afterwards the
  window regrows at the normal pace to the level that worked, instead of
  probing back to it ``probe_slowdown`` times slower. A capacity that
  really fell is learned at the next refusal, once the window has grown.

* **Slow start.** A window configured wide, against a service that holds
  far less, used to send its whole width at once and have most of it
  refused (80 refusals in the first burst of a window of 100 against a
  service that holds 20). With ``initial_window`` set, the window starts
  there and grows by one per success, i.e. doubles per round trip, up to
  the configured limit (TCP's slow start, up to ``ssthresh``); the first
  overload ends slow start for good, and the window goes on as above. A
  success counts during slow start if the call was admitted with at least
  half the current window in flight: the window at most doubled since.

Other failures (bugs, bad input) do not move the window. Everything here
is pure: the caller passes ``now`` and the in-flight count.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AIMDPolicy", "SLOW_START_WINDOW"]

#: Where adaptive windows start by default (TCP's initial window, RFC 6928).
SLOW_START_WINDOW = 10


@dataclass
class AIMDPolicy:
    """Mutable AIMD state; ``limit`` is the current window (always within bounds).

    With ``initial_window``, ``limit`` is where slow start stops: the window
    starts at the lower of the two (see the module docstring).
    """

    limit: int
    min_limit: int = 1
    max_limit: int = 10_000
    backoff_ratio: float = 0.9
    probe_slowdown: int = 16
    initial_window: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.min_limit <= self.max_limit:
            raise ValueError(
                f"need 1 <= min_limit <= max_limit, got {self.min_limit}, {self.max_limit}"
            )
        if not 0.0 < self.backoff_ratio < 1.0:
            raise ValueError(f"backoff_ratio must be in (0, 1), got {self.backoff_ratio}")
        if self.probe_slowdown < 1:
            raise ValueError(f"probe_slowdown must be >= 1, got {self.probe_slowdown}")
        if self.initial_window is not None and self.initial_window < 1:
            raise ValueError(f"initial_window must be >= 1, got {self.initial_window}")
        self.limit = self._bounded(self.limit)
        #: Slow start grows the window up to here; 0 once it is over.
        self.slow_start_until = 0
        if self.initial_window is not None and self.initial_window < self.limit:
            self.slow_start_until = self.limit
            self.limit = self._bounded(self.initial_window)
        self._credit = 0
        self._last_decrease = float("-inf")
        self._known_good = self.max_limit  # nothing learned yet: grow at the normal pace
        self._grew = True  # the window grew since its last decrease
        self.decreases = 0

    def _bounded(self, limit: int) -> int:
        return max(self.min_limit, min(limit, self.max_limit))

    def on_success(self, in_flight_at_admission: int) -> int:
        """A call succeeded; ``in_flight_at_admission`` counts it too."""
        limit = self.limit
        if self.slow_start_until:
            if 2 * in_flight_at_admission >= limit:
                self.limit = limit = limit + 1
                if limit >= self.slow_start_until:
                    self.slow_start_until = 0
            return limit
        if self._known_good < in_flight_at_admission <= limit:
            self._known_good = in_flight_at_admission  # a level above it worked
        if in_flight_at_admission >= limit - 1 and limit < self.max_limit:
            self._credit += 1
            needed = limit if limit < self._known_good else limit * self.probe_slowdown
            if self._credit >= needed:
                self._credit = 0
                self.limit = limit + 1
                self._grew = True
        return self.limit

    def on_overload(self, admitted_at: float, now: float, in_flight_at_admission: int) -> int:
        """The service refused a call (or it timed out): shrink, once per round trip."""
        if admitted_at < self._last_decrease:
            return self.limit  # a consequence of the old limit, already answered
        self.slow_start_until = 0
        known, fine = self._known_good, in_flight_at_admission - 1
        if known < self.max_limit and fine >= known:
            target = known  # a probe beyond the level that works failed: back to it
        else:
            target = int(self.limit * self.backoff_ratio)
            if fine >= 1:
                target = min(target, fine)
                if known >= self.max_limit or self._grew:
                    self._known_good = fine
        self._grew = False
        self.limit = self._bounded(min(target, self.limit - 1))
        self._last_decrease = now
        self._credit = 0
        self.decreases += 1
        return self.limit

    def resize(self, limit: int) -> int:
        """Set the window by hand (bounded); learning starts afresh from there."""
        self.limit = self._bounded(limit)
        self._credit = 0
        self._known_good = self.max_limit
        self._grew = True
        self.slow_start_until = 0
        return self.limit
