"""Circuit breaker: CLOSED -> OPEN -> HALF_OPEN -> CLOSED.

Pure: every method takes an optional ``now`` (seconds on a monotonic clock);
when omitted, the breaker's own clock is read, which keeps the 0.3.0 call
signatures (``allow_request()``) working. In HALF_OPEN exactly one probe is
in flight at a time; its outcome closes the circuit (after
``success_threshold`` successful probes) or opens it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from wave_executor._core.checks import check_int, check_number

__all__ = ["BreakerSettings", "CircuitBreaker", "CircuitBreakerRegistry", "CircuitState"]


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Fails calls fast while a shared dependency (a service, a key) is unhealthy."""

    def __init__(
        self,
        key: Hashable,
        failure_threshold: int = 5,
        success_threshold: int = 2,
        recovery_timeout: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            hash(key)  # here, not when a registry files the breaker
        except TypeError:
            raise TypeError(f"key must be hashable, got {key!r}") from None
        check_int("failure_threshold", failure_threshold, 1)
        check_int("success_threshold", success_threshold, 1)
        check_number("recovery_timeout", recovery_timeout, at_least=0)
        if not callable(clock):
            raise TypeError(f"clock must be a function returning seconds, got {clock!r}")
        self.key = key
        self.failure_threshold = failure_threshold
        self.success_threshold = success_threshold
        self.recovery_timeout = recovery_timeout
        self._clock = clock
        self._state = CircuitState.CLOSED
        self.failure_count = 0
        self.success_count = 0
        self._opened_at: float | None = None
        self._last_failure_at: float | None = None
        self._probe_in_flight = False

    @property
    def state(self) -> CircuitState:
        return self._state

    def retry_after(self, now: float | None = None) -> float | None:
        """Seconds until an open circuit admits a probe (None unless OPEN)."""
        if self._state is not CircuitState.OPEN or self._opened_at is None:
            return None
        now = self._clock() if now is None else now
        return max(0.0, self._opened_at + self.recovery_timeout - now)

    def allow_request(self, now: float | None = None) -> bool:
        """May a call go ahead? An OPEN circuit past its timeout lets one probe through."""
        if self._state is CircuitState.CLOSED:
            return True
        now = self._clock() if now is None else now
        if self._state is CircuitState.OPEN:
            assert self._opened_at is not None
            if now - self._opened_at < self.recovery_timeout:
                return False
            self._state = CircuitState.HALF_OPEN
            self.success_count = 0
            self._probe_in_flight = False
        if self._probe_in_flight:
            return False
        self._probe_in_flight = True
        return True

    def record_success(self, now: float | None = None) -> None:
        if self._state is CircuitState.HALF_OPEN:
            self._probe_in_flight = False
            self.success_count += 1
            if self.success_count >= self.success_threshold:
                self._close()
        elif self._state is CircuitState.CLOSED:
            self.failure_count = 0

    def record_failure(self, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        self._last_failure_at = now
        if self._state is CircuitState.HALF_OPEN:
            self._open(now)
        elif self._state is CircuitState.CLOSED:
            self.failure_count += 1
            if self.failure_count >= self.failure_threshold:
                self._open(now)

    def release_probe(self) -> None:
        """A probe ended with no verdict (cancelled): let another one through."""
        self._probe_in_flight = False

    def reset(self) -> None:
        self._close()

    def _open(self, now: float) -> None:
        self._state = CircuitState.OPEN
        self._opened_at = now
        self._probe_in_flight = False
        self.success_count = 0

    def _close(self) -> None:
        self._state = CircuitState.CLOSED
        self.failure_count = 0
        self.success_count = 0
        self._opened_at = None
        self._probe_in_flight = False

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        now = self._clock() if now is None else now
        age = None if self._last_failure_at is None else round(now - self._last_failure_at, 3)
        return {
            "key": self.key,
            "state": self._state.value,
            "failure_count": self.failure_count,
            "success_count": self.success_count,
            "last_failure_age_s": age,
        }

    def __repr__(self) -> str:
        return f"CircuitBreaker(key={self.key!r}, state={self._state.value})"


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """How the breakers an executor creates behave (from ``WaveConfig``)."""

    failure_threshold: int = 5
    success_threshold: int = 2
    recovery_timeout: float = 60.0


class CircuitBreakerRegistry:
    """Breakers by key, created on a key's first failure.

    An executor owns one by default, so keyed breakers live as long as the
    executor. Pass the same registry to several executors to fence a
    service off for all of them; ``reset`` forgets breakers (one key or all).
    """

    def __init__(self) -> None:
        #: The breakers themselves; empty while nothing has failed.
        self.breakers: dict[Hashable, CircuitBreaker] = {}

    def get(self, key: Hashable) -> CircuitBreaker | None:
        return self.breakers.get(key)

    def get_or_create(
        self, key: Hashable, settings: BreakerSettings, clock: Callable[[], float]
    ) -> CircuitBreaker:
        breaker = self.breakers.get(key)
        if breaker is None:
            breaker = self.breakers[key] = CircuitBreaker(
                key,
                settings.failure_threshold,
                settings.success_threshold,
                settings.recovery_timeout,
                clock=clock,
            )
        return breaker

    def reset(self, key: Hashable | None = None) -> None:
        if key is None:
            self.breakers.clear()
        else:
            self.breakers.pop(key, None)

    def states(self) -> dict[Hashable, dict[str, Any]]:
        return {key: breaker.to_dict() for key, breaker in self.breakers.items()}

    def __len__(self) -> int:
        return len(self.breakers)

    def __contains__(self, key: object) -> bool:
        return key in self.breakers
