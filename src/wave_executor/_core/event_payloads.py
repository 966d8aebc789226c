"""The payloads of events, as ``TypedDict``s: what a callback can rely on.

Every event also carries the envelope ``event_type``, ``execution_id``,
``task_id`` (None for run-level events) and ``timestamp`` (ISO 8601, UTC).
``docs/events.md`` lists every event with its payload.
"""

from __future__ import annotations

from typing import Any, NotRequired, Protocol, TypedDict

__all__ = [
    "EventEnvelope",
    "RunTotals",
    "TaskCompletedPayload",
    "TaskFailedPayload",
    "TaskRetryingPayload",
    "TaskSkippedPayload",
    "run_totals",
]


class EventEnvelope(TypedDict):
    event_type: str
    execution_id: str
    task_id: Any
    timestamp: str
    #: Only on events of fan-out children (``task_id`` is a ``ChildId``): its parent.
    parent_id: NotRequired[Any]


class RunTotals(TypedDict):
    """Counts at the end of a run (``EXECUTION_COMPLETED``)."""

    total_tasks: int
    total_successful: int
    total_failed: int
    total_skipped: int
    total_timeout: int
    total_cancelled: int


class TaskCompletedPayload(TypedDict, total=False):
    status: str
    duration_ms: float
    #: True on a task of a resumed durable run whose stored success was reused
    #: instead of calling it (``duration_ms`` is then 0.0); absent otherwise.
    restored: bool
    children: int  # only on a fan-out parent: how many children it gathered


class TaskRetryingPayload(TypedDict):
    attempt: int
    delay_s: float
    error: str


class TaskFailedPayload(TypedDict, total=False):
    status: str  # "failed", "timeout" or "cancelled"
    error: str
    started: bool  # only for tasks cut off by the run's end: had it started?
    failed_children: list[Any]  # only on a fan-out parent: its children that did not succeed


class TaskSkippedPayload(TypedDict):
    failed_deps: list[Any]


class _Counted(Protocol):
    @property
    def total_tasks(self) -> int: ...
    @property
    def total_successful(self) -> int: ...
    @property
    def total_skipped(self) -> int: ...
    @property
    def total_timeout(self) -> int: ...
    @property
    def total_cancelled(self) -> int: ...


def run_totals(result: _Counted, failed: int) -> RunTotals:
    """The totals of a finished run (``failed``: failures not counted as timeouts)."""
    return RunTotals(
        total_tasks=result.total_tasks,
        total_successful=result.total_successful,
        total_failed=failed,
        total_skipped=result.total_skipped,
        total_timeout=result.total_timeout,
        total_cancelled=result.total_cancelled,
    )
