"""Task status as a state machine (in the style of h11's ``_state``).

Statuses are ``StrEnum`` members so ``result.status == "success"`` keeps
working for 0.3.0 code. The plan stores them as small integer codes (their
position in ``TaskStatus``) for compactness; ``check_transition`` is the one
place that decides which moves are legal.
"""

from __future__ import annotations

from enum import StrEnum

from wave_executor.errors import IllegalTransitionError

__all__ = ["TERMINAL", "TaskStatus", "check_transition", "code_of", "status_of"]


class TaskStatus(StrEnum):
    """Where a task of a DAG run is. The last five are terminal."""

    PENDING = "pending"  # waiting for dependencies
    READY = "ready"  # dependencies met, waiting for a slot
    RUNNING = "running"  # an attempt is in progress
    BACKOFF = "backoff"  # waiting to retry after a failed attempt
    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"  # a dependency did not succeed
    CANCELLED = "cancelled"  # the run was stopped before the task could finish


_ORDER: tuple[TaskStatus, ...] = tuple(TaskStatus)
TERMINAL: frozenset[TaskStatus] = frozenset(
    {
        TaskStatus.SUCCESS,
        TaskStatus.FAILED,
        TaskStatus.TIMEOUT,
        TaskStatus.SKIPPED,
        TaskStatus.CANCELLED,
    }
)

_S = TaskStatus
_ALLOWED: dict[TaskStatus, frozenset[TaskStatus]] = {
    _S.PENDING: frozenset({_S.READY, _S.SKIPPED, _S.CANCELLED, _S.TIMEOUT}),
    _S.READY: frozenset({_S.RUNNING, _S.CANCELLED, _S.TIMEOUT}),
    _S.RUNNING: frozenset({_S.SUCCESS, _S.FAILED, _S.TIMEOUT, _S.BACKOFF, _S.CANCELLED}),
    _S.BACKOFF: frozenset({_S.READY, _S.CANCELLED, _S.TIMEOUT}),
    _S.SUCCESS: frozenset(),
    _S.FAILED: frozenset(),
    _S.TIMEOUT: frozenset(),
    _S.SKIPPED: frozenset(),
    _S.CANCELLED: frozenset(),
}

# Flattened table, indexed by ``from_code * N + to_code``, for the hot path.
_N = len(_ORDER)
_TABLE = bytes(1 if dst in _ALLOWED[src] else 0 for src in _ORDER for dst in _ORDER)


def code_of(status: TaskStatus) -> int:
    """The compact integer code the plan stores for ``status``."""
    return _ORDER.index(status)


def status_of(code: int) -> TaskStatus:
    """The status for a compact code."""
    return _ORDER[code]


def check_transition(src: int, dst: int) -> None:
    """Raise ``IllegalTransitionError`` unless ``src -> dst`` is in the table."""
    if not _TABLE[src * _N + dst]:
        raise IllegalTransitionError(
            f"illegal task status transition {_ORDER[src].value} -> {_ORDER[dst].value}"
        )
