"""The exception tree of wave-executor.

::

    WaveExecutorError
     ├── GraphError (also ValueError)
     │    ├── UnknownDependencyError      a dependency names a task that does not exist
     │    └── WaveCircularDependencyError the graph has a cycle; nothing ran
     ├── CircuitBreakerOpenError          a call was refused by an open circuit
     ├── CircuitKeyError                  a task's circuit key could not be found
     └── IllegalTransitionError           a status changed in a way its state machine forbids

``GraphError`` subclasses ``ValueError`` so that code written for 0.3.0, which
caught ``ValueError`` for bad graphs, keeps working.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import ClassVar

__all__ = [
    "CircuitBreakerOpenError",
    "CircuitKeyError",
    "GraphError",
    "IllegalTransitionError",
    "UnknownDependencyError",
    "WaveCircularDependencyError",
    "WaveExecutorError",
]


class WaveExecutorError(Exception):
    """Base of every error this library raises on purpose."""


class GraphError(WaveExecutorError, ValueError):
    """The task graph given to an executor is not valid; nothing was run."""


class UnknownDependencyError(GraphError):
    """A task depends on (or dependencies are given for) a task that is not defined."""

    _WHAT: ClassVar[dict[str, str]] = {
        "dependency": "task {task_id!r} depends on {missing!r}",
        "key": "dependencies are given for task {missing!r}",
        "cost": "a priority cost is given for task {missing!r}",
    }

    def __init__(self, task_id: Hashable, missing: Hashable, *, role: str = "dependency") -> None:
        self.task_id = task_id
        self.missing = missing
        what = self._WHAT[role].format(task_id=task_id, missing=missing)
        super().__init__(f"{what}, which is not defined in tasks")


class WaveCircularDependencyError(GraphError):
    """The graph has at least one cycle.

    ``cycle_members`` holds the tasks that lie on a cycle (not those merely
    downstream of one); ``cycle`` is one cycle as a path that starts and ends
    on the same task, which is what the message shows.
    """

    def __init__(self, cycle_members: Iterable[Hashable], cycle: Sequence[Hashable] = ()) -> None:
        self.cycle_members: set[Hashable] = set(cycle_members)
        self.cycle: list[Hashable] = list(cycle)
        members = ", ".join(sorted(map(str, self.cycle_members)))
        if self.cycle:
            path = " -> ".join(map(str, self.cycle))
            message = f"Circular dependency detected: {path} (tasks on cycles: {members})"
        else:
            message = f"Circular dependency detected involving: {members}"
        super().__init__(message)


class CircuitBreakerOpenError(WaveExecutorError):
    """The circuit for ``key`` is open: the call was refused without being made."""

    def __init__(
        self, key: Hashable, retry_after: float | None = None, state: str = "open"
    ) -> None:
        self.key = key
        self.retry_after = retry_after
        self.state = state
        why = "is open"
        if state == "half_open":
            why = "is half-open and its one probe is in flight"
        hint = f"; next probe allowed in {retry_after:.1f}s" if retry_after else ""
        super().__init__(f"circuit {key!r} {why}: call refused{hint}")


class CircuitKeyError(WaveExecutorError):
    """A task's circuit key could not be found: the key function raised, or the key is unhashable.

    The task fails with this error (not retried: every attempt would fail
    alike); the rest of the run goes on.
    """

    def __init__(self, task_id: Hashable, why: str) -> None:
        self.task_id = task_id
        super().__init__(f"task {task_id!r} has no usable circuit breaker key: {why}")


class IllegalTransitionError(WaveExecutorError, RuntimeError):
    """A status changed in a way its transition table forbids (a bug, never user error)."""
