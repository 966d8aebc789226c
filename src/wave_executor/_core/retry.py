"""Retry policy as a value, with a pure delay formula (in the style of stamina).

The delay before retry ``k`` (``k = 1, 2, ...``) is, without jitter::

    d(k) = min(max_delay, base_delay * factor ** (k - 1))

With the defaults (base 1 s, factor 2, cap 32 s) this is 0.3.0's schedule:
1 s, 2 s, 4 s, ... . A factor of 0 means no delay at all; a factor between 0
and 1 is treated as 1 (a constant delay), because backoff must not shrink.

Jitter is opt-in, because 0.3.0 code relies on the delays as lower bounds:

* ``"proportional"`` (the default mode): ``d(k) * (1 + jitter * u)``, capped;
  it only ever adds time, so the jitter-free delays stay lower bounds.
* ``"full"``: ``u * d(k)`` (AWS's "full jitter"), which spreads a herd of
  retries the most, at the price of the lower bound.

``u`` is uniform in [0, 1); the runtime draws it from a ``random.Random``
seeded with ``seed`` (None: not reproducible).

What is retried: by default every exception, but a timeout only with
``retry_timeouts``; ``retry_on`` narrows that to exception types or a
predicate. ``deadline`` bounds the whole affair: no retry is scheduled
that would start more than ``deadline`` seconds after the first attempt.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from wave_executor._core.checks import check_exception_types, check_int, check_number

__all__ = ["RetryPolicy"]

RetryPredicate = Callable[[BaseException], bool]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a failed task is tried again.

    ``max_retries`` counts retries after the first attempt.
    """

    max_retries: int = 3
    backoff_factor: float = 2.0
    base_delay: float = 1.0
    max_delay: float = 32.0
    jitter: float = 0.0
    jitter_mode: Literal["proportional", "full"] = "proportional"
    retry_timeouts: bool = False
    retry_on: tuple[type[BaseException], ...] | RetryPredicate | None = None
    deadline: float | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        check_int("max_retries", self.max_retries, 0)
        if self.jitter is False:  # "no jitter", as written in the wild
            object.__setattr__(self, "jitter", 0.0)
        for name in ("backoff_factor", "base_delay", "max_delay", "jitter"):
            check_number(name, getattr(self, name), at_least=0)
        if self.jitter_mode not in ("proportional", "full"):
            raise ValueError(
                f"jitter_mode must be 'proportional' or 'full', got {self.jitter_mode!r}"
            )
        if self.deadline is not None:
            check_number("deadline", self.deadline, at_least=0, hint=" seconds or None")
        rule = self.retry_on
        if isinstance(rule, tuple):
            check_exception_types("retry_on", rule)
        elif rule is not None and (isinstance(rule, type) or not callable(rule)):
            raise TypeError(
                "retry_on must be a tuple of exception classes, a predicate "
                f"exc -> bool or None, got {rule!r}"
            )

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
            raw = min(self.max_delay, self.base_delay * factor ** (retry - 1))
        except OverflowError:
            raw = self.max_delay
        if self.jitter_mode == "full":
            return raw * u if self.jitter else raw
        return min(self.max_delay, raw * (1.0 + self.jitter * u))

    def retries_error(self, exc: BaseException, timed_out: bool) -> bool:
        """Is this kind of failure worth another attempt at all?"""
        if timed_out and not self.retry_timeouts:
            return False
        rule = self.retry_on
        if rule is None or timed_out:
            return True
        if isinstance(rule, tuple):
            return isinstance(exc, rule)
        return bool(rule(exc))

    def should_retry(
        self,
        attempt: int,
        timed_out: bool,
        exc: BaseException | None = None,
        elapsed: float = 0.0,
        delay: float = 0.0,
    ) -> bool:
        """After attempt number ``attempt`` (1-based) failed, is there another?

        ``elapsed`` is the time since the first attempt started and ``delay``
        the wait before the next one, for the ``deadline`` check.
        """
        if attempt > self.max_retries:
            return False
        if exc is not None and not self.retries_error(exc, timed_out):
            return False
        if timed_out and not self.retry_timeouts:
            return False
        deadline = math.inf if self.deadline is None else self.deadline
        return elapsed + delay <= deadline
