"""Result records: what a run tells its caller (0.3.0 shapes, JSON-ready).

Wall-clock datetimes here are for display; every duration was measured on
a monotonic clock by the runtime.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wave_executor._core.critical_path import longest_path
from wave_executor._core.fan_out import ChildId
from wave_executor._core.status import TaskStatus

__all__ = [
    "DAGExecutionResult",
    "EscalationReport",
    "TaskResult",
    "WaveSignal",
    "utc_now",
]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class _Factory:
    """The ``started_at`` default: "now", as ``field(default_factory=utc_now)`` shows it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<factory>"


_NOW: Any = _Factory()


@dataclass(slots=True, init=False)
class TaskResult:
    """The outcome of one task. ``status`` compares equal to 0.3.0's strings.

    ``skip_reason`` tells a skipped task's two kinds apart: ``"upstream_failed"``
    (a failure above it; counts against the run) or ``"rule_not_met"`` (its
    trigger rule asked for something that did not happen, like an idle
    ``one_failed`` handler; not a failure). None for every other status.
    """

    task_id: Any
    wave_id: str
    status: str
    output: Any = None
    error: str | None = None
    duration_ms: float = 0.0
    retry_count: int = 0
    started_at: datetime = field(default_factory=utc_now)
    completed_at: datetime | None = None
    skip_reason: str | None = None

    # Written out, not generated: the dataclass ``__init__`` stores the two times through
    # their lazy properties (a Python-level setter each); this one stores them straight
    # into their slots, under the aliases ``_started_at``/``_completed_at`` (see below).
    # Same signature, defaults and behaviour as the generated one.
    def __init__(
        self,
        task_id: Any,
        wave_id: str,
        status: str,
        output: Any = None,
        error: str | None = None,
        duration_ms: float = 0.0,
        retry_count: int = 0,
        started_at: datetime = _NOW,
        completed_at: datetime | None = None,
        skip_reason: str | None = None,
    ) -> None:
        slots: Any = self  # the aliases are not fields: untyped on purpose
        self.task_id = task_id
        self.wave_id = wave_id
        self.status = status
        self.output = output
        self.error = error
        self.duration_ms = duration_ms
        self.retry_count = retry_count
        slots._started_at = utc_now() if started_at is _NOW else started_at
        slots._completed_at = completed_at
        self.skip_reason = skip_reason

    def to_dict(self) -> dict[str, Any]:
        """0.3.0's keys; a skipped task's dict adds ``skip_reason``."""
        out = {
            "task_id": self.task_id,
            "wave_id": self.wave_id,
            "status": str(self.status),
            "output": self.output,
            "error": self.error,
            "duration_ms": round(self.duration_ms, 2),
            "retry_count": self.retry_count,
            "started_at": _iso(self.started_at),
            "completed_at": _iso(self.completed_at),
        }
        if self.skip_reason is not None:
            out["skip_reason"] = self.skip_reason
        return out


def _lazy_wall_time(slot: Any) -> property:
    """The ``started_at``/``completed_at`` slot of ``TaskResult``, made lazy.

    A results table stores a float there (seconds since the epoch); the
    first read turns it into an aware UTC ``datetime`` and keeps that, so a
    run that returns many results builds no datetime nobody looks at. A
    ``datetime`` (or ``None``) stored by anybody else reads back as it is.
    Writes go straight to the slot (a C call: results are made in bulk).
    """
    read, write = slot.__get__, slot.__set__

    def get(obj: Any) -> Any:
        value = read(obj)
        if value.__class__ is float:
            value = datetime.fromtimestamp(value, UTC)
            write(obj, value)
        return value

    return property(get, write, slot.__delete__, slot.__doc__)


for _name in ("started_at", "completed_at"):
    _slot = TaskResult.__dict__[_name]
    # The raw slot stays reachable as ``_started_at``/``_completed_at``: storing there is a
    # plain slot store (what ``__init__`` and the results table use), while the public name
    # becomes the lazy property. Neither alias is a field, nor in ``__slots__``.
    setattr(TaskResult, "_" + _name, _slot)
    setattr(TaskResult, _name, _lazy_wall_time(_slot))
del _name, _slot


@dataclass(slots=True)
class EscalationReport:
    """Why a task gave up, for a human (or an agent) deciding what to do next."""

    task_id: Any
    execution_id: str
    attempt_count: int
    failure_history: list[str]
    root_cause: str
    resolution_options: list[str]
    circuit_state: str
    escalated_at: datetime = field(default_factory=utc_now)
    #: Every attempt in order: error, type, timed_out, overload, circuit_open,
    #: duration_ms and the delay that followed it.
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "execution_id": self.execution_id,
            "attempt_count": self.attempt_count,
            "failure_history": list(self.failure_history),
            "root_cause": self.root_cause,
            "resolution_options": list(self.resolution_options),
            "circuit_state": self.circuit_state,
            "escalated_at": _iso(self.escalated_at),
            "attempts": [dict(a) for a in self.attempts],
        }


@dataclass
class DAGExecutionResult:
    """Everything one ``DAGExecutor.execute()`` produced.

    ``succeeded`` applies the run's success policy: every task succeeded, or,
    with ``allow_partial_success``, at least ``min_success_rate`` of *all*
    tasks did (skipped and cancelled tasks count as not successful). Tasks
    skipped because their trigger rule was not met (``total_skipped_by_rule``)
    are left out of both counts.
    ``stopped_reason`` says why a run ended early: ``"stop_on_first_error"``
    or ``"total_timeout"`` (None when it ran to the end).
    """

    execution_id: str
    #: Filled by the run; code written for 0.3.0 may also build a result by
    #: hand (``DAGExecutionResult(execution_id=...)``) and add results later.
    task_results: Mapping[Any, TaskResult] = field(default_factory=dict)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    completed_at: datetime | None = None
    allow_partial_success: bool = True
    min_success_rate: float = 0.7
    stopped_reason: str | None = None
    duration_s: float | None = None
    #: The durable run this execution belongs to (``execute(..., store=...)``).
    run_id: str | None = None
    #: Ids of the tasks a resumed durable run did not call because their stored
    #: success was reused (empty otherwise). Each also has a "success" result
    #: (its stored output, ``duration_ms`` 0.0) and a ``TASK_COMPLETED`` event
    #: with ``restored=True``; ``to_dict()`` gives their number.
    restored: list[Any] = field(default_factory=list)

    def _count(self, status: TaskStatus) -> int:
        results = self.task_results
        count = getattr(results, "count", None)  # a TaskResultTable counts in C
        if count is not None:
            return int(count(status))
        return sum(1 for r in results.values() if r.status == status)

    def statuses(self) -> dict[Any, TaskStatus]:
        """Task id -> status of every task, as one dict.

        Cheaper than reading ``task_results`` one by one: the run's results
        table answers from its status column, without a ``TaskResult``.
        """
        results = self.task_results
        bulk = getattr(results, "statuses", None)
        if bulk is not None:
            statuses: dict[Any, TaskStatus] = bulk()
            return statuses
        return {t: TaskStatus(r.status) for t, r in results.items()}

    def outputs(self) -> dict[Any, Any]:
        """Task id -> ``output`` of every task (as ``TaskResult.output`` has it), as one dict."""
        results = self.task_results
        bulk = getattr(results, "outputs", None)
        if bulk is not None:
            outputs: dict[Any, Any] = bulk()
            return outputs
        return {t: r.output for t, r in results.items()}

    def children(self, parent: Any) -> dict[Any, TaskResult]:
        """The results of ``parent``'s fan-out children (``execute(fan_out=...)``),
        keyed by their ``ChildId``, in item order; empty for any other task."""
        results = self.task_results
        bulk = getattr(results, "children", None)
        if bulk is not None:
            children: dict[Any, TaskResult] = bulk(parent)
            return children
        return {t: r for t, r in results.items() if isinstance(t, ChildId) and t.parent == parent}

    @property
    def total_tasks(self) -> int:
        return len(self.task_results)

    @property
    def total_successful(self) -> int:
        return self._count(TaskStatus.SUCCESS)

    @property
    def total_failed(self) -> int:
        return self._count(TaskStatus.FAILED)

    @property
    def total_skipped(self) -> int:
        return self._count(TaskStatus.SKIPPED)

    @property
    def total_skipped_by_rule(self) -> int:
        """Skipped tasks whose trigger rule was not met (``skip_reason == "rule_not_met"``)."""
        results = self.task_results
        count = getattr(results, "count_rule_not_met", None)
        if count is not None:
            return int(count())
        return sum(1 for r in results.values() if r.skip_reason == "rule_not_met")

    @property
    def total_timeout(self) -> int:
        return self._count(TaskStatus.TIMEOUT)

    @property
    def total_cancelled(self) -> int:
        return self._count(TaskStatus.CANCELLED)

    @property
    def cancelled(self) -> list[Any]:
        """Ids of the tasks that were cancelled because the run stopped early."""
        if not self.total_cancelled:
            return []
        results = self.task_results
        bulk = getattr(results, "ids_with", None)  # a TaskResultTable reads its status column
        if bulk is not None:
            ids: list[Any] = bulk(TaskStatus.CANCELLED)
            return ids
        return [t for t, r in results.items() if r.status == TaskStatus.CANCELLED]

    @property
    def overall_success_rate(self) -> float:
        """Successes over tasks that were not skipped (0.3.0's definition); 0.0 if none."""
        attempted = self.total_tasks - self.total_skipped
        return self.total_successful / attempted if attempted else 0.0

    @property
    def succeeded(self) -> bool:
        """Did the run meet its success policy? (See the class docstring.)"""
        total = self.total_tasks - self.total_skipped_by_rule
        if total == 0:
            return True
        ok = self.total_successful
        if ok == total:
            return True
        return self.allow_partial_success and ok / total >= self.min_success_rate

    @property
    def duration_ms(self) -> float:
        if self.duration_s is not None:
            return self.duration_s * 1000.0
        if self.completed_at is None:
            return 0.0
        return (self.completed_at - self.started_at).total_seconds() * 1000.0

    def get_critical_path(
        self, dependencies: Mapping[Any, Iterable[Any]] | None = None
    ) -> list[Any]:
        """The dependency chain with the longest summed duration, root first.

        A fan-out parent's duration spans its children; on the path it is
        followed by its slowest child (``P``, then ``P[k]``).
        """
        results = self.task_results
        bulk = getattr(results, "durations_ms", None)  # a TaskResultTable: from its columns
        durations: dict[Any, float] = (
            bulk() if bulk is not None else {t: r.duration_ms for t, r in results.items()}
        )
        return longest_path(durations, dependencies or {})

    def to_dict(self) -> dict[str, Any]:
        results = self.task_results
        bulk = getattr(results, "to_dicts", None)  # a TaskResultTable: from its columns
        task_dicts: dict[str, dict[str, Any]] = (
            bulk() if bulk is not None else {str(t): r.to_dict() for t, r in results.items()}
        )
        return {
            "execution_id": self.execution_id,
            "total_tasks": self.total_tasks,
            "total_successful": self.total_successful,
            "total_failed": self.total_failed,
            "total_skipped": self.total_skipped,
            "total_timeout": self.total_timeout,
            "total_cancelled": self.total_cancelled,
            "overall_success_rate": round(self.overall_success_rate, 3),
            "succeeded": self.succeeded,
            "stopped_reason": self.stopped_reason,
            "run_id": self.run_id,
            "restored": len(self.restored),
            "duration_ms": round(self.duration_ms, 2),
            "started_at": _iso(self.started_at),
            "completed_at": _iso(self.completed_at),
            "task_results": task_dicts,
        }


@dataclass
class WaveSignal:
    """A signal about a wave's state (kept for 0.3.0 imports)."""

    signal_type: str
    wave_id: str
    data: dict[str, Any]
    timestamp: datetime | None = None

    def __post_init__(self) -> None:
        if self.timestamp is None:
            self.timestamp = utc_now()
