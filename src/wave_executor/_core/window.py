"""A concurrency window: a slot count with an optional adaptive limit.

The DAG runtime's workers are its own waiters, so its windows need no
queue, only counts: ``admit`` when a task starts, ``leave`` when it ends,
and the outcome fed to the AIMD policy (when the window is adaptive).
"""

from __future__ import annotations

from wave_executor._core.aimd import AIMDPolicy

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
    def adaptive(cls, limit: int, floor: int) -> Window:
        """A window that starts at ``limit``, never exceeds it, and shrinks no lower
        than ``floor`` (or ``limit``, when that is lower)."""
        return cls(limit, AIMDPolicy(limit, min_limit=min(floor, limit), max_limit=limit))

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
