"""A concurrency window: a slot count with an optional adaptive limit.

The DAG runtime's workers are its own waiters, so its windows need no
queue, only counts: ``admit`` when a task starts, ``leave`` when it ends,
and the outcome fed to the AIMD policy (when the window is adaptive).
"""

from __future__ import annotations

from wave_executor._core.aimd import SLOW_START_WINDOW, AIMDPolicy

__all__ = ["Window"]


class Window:
    __slots__ = ("active", "ceiling", "limit", "policy")

    def __init__(self, limit: int, policy: AIMDPolicy | None = None) -> None:
        self.limit = policy.limit if policy is not None else limit
        self.active = 0
        self.policy = policy
        #: Growth stops here; a window at its ceiling skips the policy on success.
        self.ceiling = policy.max_limit if policy is not None else self.limit

    @classmethod
    def adaptive(cls, limit: int, floor: int, initial: int | None = SLOW_START_WINDOW) -> Window:
        """A window that never exceeds ``limit`` and shrinks no lower than ``floor``
        (or ``limit``, when that is lower). It slow-starts from ``initial`` (None: starts
        at ``limit``), doubling per round trip until ``limit`` or the first overload."""
        policy = AIMDPolicy(
            limit, min_limit=min(floor, limit), max_limit=limit, initial_window=initial
        )
        return cls(limit, policy)

    @property
    def full(self) -> bool:
        return self.active >= self.limit

    def admit(self) -> int:
        """Take a slot; return the calls in flight, this one included."""
        self.active += 1
        return self.active

    def leave(self) -> None:
        self.active -= 1

    def success(self, in_flight: int) -> None:
        if self.limit < self.ceiling and self.policy is not None:
            self.limit = self.policy.on_success(in_flight)

    def overload(self, admitted_at: float, now: float, in_flight: int) -> None:
        if self.policy is not None:
            self.limit = self.policy.on_overload(admitted_at, now, in_flight)
