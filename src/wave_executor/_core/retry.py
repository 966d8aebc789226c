"""Retry policy as a value, with a pure delay formula (in the style of stamina).

The delay before retry ``k`` (``k = 1, 2, ...``) is::

    d(k) = min(max_delay, base_delay * factor ** (k - 1) * (1 + jitter * u))

with ``u`` uniform in ``[0, 1)``. Jitter only ever *adds* time, so the
jitter-free delays stay lower bounds (0.3.0 code relies on that). With the
defaults (base 1 s, factor 2, cap 32 s, no jitter) this is 0.3.0's schedule:
1 s, 2 s, 4 s, ... . A factor of 0 means no delay at all; a factor between 0
and 1 is treated as 1 (a constant delay) because backoff must not shrink.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a failed task is tried again.

    ``max_retries`` counts retries after the first attempt. ``retry_timeouts``
    decides whether an attempt that hit its timeout is retried (0.3.0 never
    did, so the default is False).
    """

    max_retries: int = 3
    backoff_factor: float = 2.0
    base_delay: float = 1.0
    max_delay: float = 32.0
    jitter: float = 0.0
    retry_timeouts: bool = False

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        for name in ("backoff_factor", "base_delay", "max_delay", "jitter"):
            value = getattr(self, name)
            if not value >= 0:  # also rejects NaN
                raise ValueError(f"{name} must be >= 0, got {value!r}")

    @property
    def max_attempts(self) -> int:
        return self.max_retries + 1

    def delay(self, retry: int, u: float = 0.0) -> float:
        """Seconds to wait before retry number ``retry`` (1-based); ``u`` in [0, 1)."""
        if retry < 1:
            raise ValueError(f"retry numbers start at 1, got {retry}")
        if self.backoff_factor == 0 or self.base_delay == 0:
            return 0.0
        factor = max(self.backoff_factor, 1.0)
        try:
            raw = self.base_delay * factor ** (retry - 1)
        except OverflowError:
            raw = self.max_delay
        return min(self.max_delay, raw * (1.0 + self.jitter * u))

    def should_retry(self, attempt: int, timed_out: bool) -> bool:
        """After attempt number ``attempt`` (1-based) failed, is there another?"""
        if timed_out and not self.retry_timeouts:
            return False
        return attempt <= self.max_retries
