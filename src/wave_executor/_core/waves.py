"""Level-mode records (0.3.0 shapes): one wave, its definition, a whole run.

``LevelExecutor`` (``_runtime/levels.py``) fills them. The 0.3.0 fields keep
their meaning; the fields after them are ours (``duration_s``, ``executed``,
``timed_out``, ``stopped_reason``) and only add information.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wave_executor._core.config import WaveConfig
from wave_executor._core.meta_records import jsonable
from wave_executor._core.records import TaskResult, utc_now
from wave_executor._core.status import TaskStatus

__all__ = ["ExecutionContext", "WaveDefinition", "WaveResult", "unmet_policy"]


def _ms(start: datetime, end: datetime | None, seconds: float | None = None) -> float:
    """Milliseconds: the monotonic measure when there is one, else the datetimes'."""
    if seconds is not None:
        return seconds * 1000.0
    return 0.0 if end is None else (end - start).total_seconds() * 1000.0


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass
class WaveResult:
    """The outcome of one wave (one dependency level).

    ``executed`` is False for a wave that never started because the run
    stopped first (its tasks are all ``"skipped"``); ``timed_out`` is True
    when ``per_wave_timeout`` cut the wave off. ``duration_s`` is the wave's
    duration on the loop's monotonic clock (``duration_ms`` uses it).
    """

    wave_id: str
    wave_index: int
    task_results: dict[Any, TaskResult] = field(default_factory=dict)
    merged_output: Any = None
    started_at: datetime = field(default_factory=utc_now)
    completed_at: datetime | None = None
    duration_s: float | None = None
    executed: bool = True
    timed_out: bool = False

    def _count(self, status: TaskStatus) -> int:
        return sum(1 for r in self.task_results.values() if r.status == status)

    @property
    def success_count(self) -> int:
        return self._count(TaskStatus.SUCCESS)

    @property
    def failure_count(self) -> int:
        return self._count(TaskStatus.FAILED)

    @property
    def timeout_count(self) -> int:
        return self._count(TaskStatus.TIMEOUT)

    @property
    def skipped_count(self) -> int:
        return self._count(TaskStatus.SKIPPED)

    @property
    def cancelled_count(self) -> int:
        """Tasks cut short by ``stop_on_first_error``."""
        return self._count(TaskStatus.CANCELLED)

    @property
    def total_tasks(self) -> int:
        return len(self.task_results)

    @property
    def skipped_by_rule_count(self) -> int:
        """Skipped tasks whose trigger rule was not met (not failures)."""
        return sum(1 for r in self.task_results.values() if r.skip_reason == "rule_not_met")

    @property
    def success_rate(self) -> float:
        """Successes over the wave's tasks (0.3.0's definition), leaving out those
        skipped because their trigger rule was not met; 0.0 if none."""
        counted = self.total_tasks - self.skipped_by_rule_count
        return self.success_count / counted if counted else 0.0

    @property
    def attempted_success_rate(self) -> float:
        """Successes over the tasks that were not skipped; 1.0 when all were.

        The success gate uses this rate: a task skipped because an earlier
        wave failed was already counted against that wave.
        """
        attempted = self.total_tasks - self.skipped_count
        return self.success_count / attempted if attempted else 1.0

    @property
    def duration_ms(self) -> float:
        return _ms(self.started_at, self.completed_at, self.duration_s)

    @property
    def outputs(self) -> dict[Any, Any]:
        """Outputs of the wave's successful tasks, in task order."""
        ok = TaskStatus.SUCCESS
        return {t: r.output for t, r in self.task_results.items() if r.status == ok}

    @property
    def failed_tasks(self) -> list[TaskResult]:
        bad = (TaskStatus.FAILED, TaskStatus.TIMEOUT)
        return [r for r in self.task_results.values() if r.status in bad]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as ``ExecutionContext.to_dict()``."""
        return {
            "wave_id": self.wave_id,
            "wave_index": self.wave_index,
            "task_results": {str(k): jsonable(r.to_dict()) for k, r in self.task_results.items()},
            "merged_output": jsonable(self.merged_output),
            "success_count": self.success_count,
            "failure_count": self.failure_count,
            "timeout_count": self.timeout_count,
            "skipped_count": self.skipped_count,
            "cancelled_count": self.cancelled_count,
            "total_tasks": self.total_tasks,
            "success_rate": self.success_rate,
            "duration_ms": round(self.duration_ms, 2),
            "started_at": self.started_at.isoformat(),
            "completed_at": _iso(self.completed_at),
            "executed": self.executed,
            "timed_out": self.timed_out,
        }


def _sorted_ids(ids: set[Any]) -> list[Any]:
    """Sorted, as 0.3.0 listed them; by ``repr`` when the ids do not compare."""
    try:
        return sorted(ids)
    except TypeError:
        return sorted(ids, key=repr)


def unmet_policy(wave: WaveResult, config: WaveConfig) -> str | None:
    """The success-policy gate a wave fails (None: it passes).

    ``"allow_partial_success"`` when partial success is not allowed and an
    attempted task did not succeed; ``"min_success_rate"`` when the wave's
    ``attempted_success_rate`` is below ``min_success_rate``.
    """
    rate = wave.attempted_success_rate
    if not config.allow_partial_success and rate < 1.0:
        return "allow_partial_success"
    if rate < config.min_success_rate:
        return "min_success_rate"
    return None


@dataclass
class WaveDefinition:
    """The tasks of one wave, before it runs.

    ``dependencies_resolved`` turns True when the wave starts: every task of
    the earlier waves has ended by then (the barrier).
    """

    wave_id: str
    wave_index: int
    tasks: dict[Any, Any] = field(default_factory=dict)
    task_ids: set[Any] = field(default_factory=set)
    dependencies_resolved: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as ``ExecutionContext.to_dict()``."""
        return {
            "wave_id": self.wave_id,
            "wave_index": self.wave_index,
            "task_ids": jsonable(_sorted_ids(self.task_ids)),
            "task_count": len(self.tasks),
            "dependencies_resolved": self.dependencies_resolved,
        }


@dataclass
class ExecutionContext:
    """A whole level-mode run: its waves and their results.

    ``waves`` lists every wave up front; ``wave_results`` gets one entry per
    wave, in order, as waves end; a wave that never started because the run
    stopped is added with ``executed=False`` and all its tasks skipped, so
    every task has a result. ``stopped_reason`` says why later waves did not
    run: ``"stop_on_first_error"``, ``"total_timeout"``,
    ``"allow_partial_success"`` or ``"min_success_rate"`` (None when every
    wave ran); ``cancelled`` is True exactly when it is set.
    """

    execution_id: str
    waves: list[WaveDefinition] = field(default_factory=list)
    wave_results: dict[str, WaveResult] = field(default_factory=dict)
    config: WaveConfig = field(default_factory=WaveConfig)
    current_wave_index: int = 0
    started_at: datetime = field(default_factory=utc_now)
    completed_at: datetime | None = None
    cancelled: bool = False
    #: wave id -> its task results at its barrier, for the waves that ran
    #: (the records of ``wave_results``; 0.3.0 declared the field, never filled it).
    checkpoint_results: dict[str, dict[Any, TaskResult]] = field(default_factory=dict)
    stopped_reason: str | None = None
    duration_s: float | None = None

    @property
    def total_waves(self) -> int:
        return len(self.waves)

    @property
    def completed_waves(self) -> int:
        """Waves that ran to their end (waves skipped by a stop do not count)."""
        return sum(1 for r in self.wave_results.values() if r.executed)

    @property
    def progress(self) -> float:
        return self.completed_waves / self.total_waves if self.waves else 0.0

    @property
    def task_results(self) -> dict[Any, TaskResult]:
        """Every task's result across the waves, wave by wave, in task order."""
        merged: dict[Any, TaskResult] = {}
        for wave in self.wave_results.values():
            merged.update(wave.task_results)
        return merged

    @property
    def outputs(self) -> dict[Any, Any]:
        """Outputs of every successful task across the waves."""
        merged: dict[Any, Any] = {}
        for wave in self.wave_results.values():
            merged.update(wave.outputs)
        return merged

    def _total(self, status: TaskStatus) -> int:
        return sum(w._count(status) for w in self.wave_results.values())

    @property
    def total_tasks(self) -> int:
        return sum(r.total_tasks for r in self.wave_results.values())

    @property
    def total_successful(self) -> int:
        return self._total(TaskStatus.SUCCESS)

    @property
    def total_failed(self) -> int:
        """Failed and timed-out tasks (0.3.0's definition)."""
        return self._total(TaskStatus.FAILED) + self._total(TaskStatus.TIMEOUT)

    @property
    def total_timeout(self) -> int:
        return self._total(TaskStatus.TIMEOUT)

    @property
    def total_skipped(self) -> int:
        return self._total(TaskStatus.SKIPPED)

    @property
    def total_cancelled(self) -> int:
        return self._total(TaskStatus.CANCELLED)

    @property
    def total_skipped_by_rule(self) -> int:
        """Skipped tasks whose trigger rule was not met (not failures)."""
        return sum(w.skipped_by_rule_count for w in self.wave_results.values())

    @property
    def overall_success_rate(self) -> float:
        """Successes over all tasks (0.3.0's definition), leaving out those skipped
        because their trigger rule was not met; 0.0 if none."""
        total = self.total_tasks - self.total_skipped_by_rule
        return self.total_successful / total if total else 0.0

    @property
    def succeeded(self) -> bool:
        """Every wave ran and met the success policy of ``config``."""
        if self.stopped_reason is not None:
            return False
        results = self.wave_results.values()
        return all(r.executed and unmet_policy(r, self.config) is None for r in results)

    @property
    def duration_ms(self) -> float:
        return _ms(self.started_at, self.completed_at, self.duration_s)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``json.dumps()`` takes it, whatever the task ids and outputs.

        Task ids are strings (``str(id)``) where they are keys of
        ``task_results``; elsewhere, and inside outputs, ``jsonable`` applies:
        tuples and sets become lists, non-JSON dict keys strings, datetimes
        ISO strings, other objects their ``repr()``.
        """
        return {
            "execution_id": self.execution_id,
            "waves": [w.to_dict() for w in self.waves],
            "wave_results": {k: r.to_dict() for k, r in self.wave_results.items()},
            "current_wave_index": self.current_wave_index,
            "total_waves": self.total_waves,
            "completed_waves": self.completed_waves,
            "total_tasks": self.total_tasks,
            "total_successful": self.total_successful,
            "total_failed": self.total_failed,
            "total_timeout": self.total_timeout,
            "total_skipped": self.total_skipped,
            "total_cancelled": self.total_cancelled,
            "overall_success_rate": self.overall_success_rate,
            "cancelled": self.cancelled,
            "succeeded": self.succeeded,
            "stopped_reason": self.stopped_reason,
            "duration_ms": round(self.duration_ms, 2),
            "started_at": _iso(self.started_at),
            "completed_at": _iso(self.completed_at),
        }
