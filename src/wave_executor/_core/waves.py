"""Level-mode records (0.3.0 shapes): one wave, its definition, a whole run.

The level-based executor that fills them is planned; the records exist now
so 0.3.0 code that imports or builds them keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wave_executor._core.config import WaveConfig
from wave_executor._core.records import TaskResult, utc_now
from wave_executor._core.status import TaskStatus

__all__ = ["ExecutionContext", "WaveDefinition", "WaveResult"]


def _ms(start: datetime, end: datetime | None) -> float:
    return 0.0 if end is None else (end - start).total_seconds() * 1000.0


@dataclass
class WaveResult:
    """The outcome of one wave (one dependency level)."""

    wave_id: str
    wave_index: int
    task_results: dict[str, TaskResult] = field(default_factory=dict)
    merged_output: Any = None
    started_at: datetime = field(default_factory=utc_now)
    completed_at: datetime | None = None

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
    def total_tasks(self) -> int:
        return len(self.task_results)

    @property
    def success_rate(self) -> float:
        return self.success_count / self.total_tasks if self.task_results else 0.0

    @property
    def duration_ms(self) -> float:
        return _ms(self.started_at, self.completed_at)

    @property
    def failed_tasks(self) -> list[TaskResult]:
        bad = (TaskStatus.FAILED, TaskStatus.TIMEOUT)
        return [r for r in self.task_results.values() if r.status in bad]

    def to_dict(self) -> dict[str, Any]:
        return {
            "wave_id": self.wave_id,
            "wave_index": self.wave_index,
            "task_results": {k: r.to_dict() for k, r in self.task_results.items()},
            "merged_output": self.merged_output,
            "success_count": self.success_count,
            "failure_count": self.failure_count,
            "timeout_count": self.timeout_count,
            "skipped_count": self.skipped_count,
            "total_tasks": self.total_tasks,
            "success_rate": self.success_rate,
            "duration_ms": round(self.duration_ms, 2),
            "started_at": self.started_at.isoformat(),
            "completed_at": None if self.completed_at is None else self.completed_at.isoformat(),
        }


@dataclass
class WaveDefinition:
    """The tasks of one wave, before it runs."""

    wave_id: str
    wave_index: int
    tasks: dict[str, Any] = field(default_factory=dict)
    task_ids: set[str] = field(default_factory=set)
    dependencies_resolved: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "wave_id": self.wave_id,
            "wave_index": self.wave_index,
            "task_ids": sorted(self.task_ids),
            "task_count": len(self.tasks),
            "dependencies_resolved": self.dependencies_resolved,
        }


@dataclass
class ExecutionContext:
    """A whole level-mode run: its waves and their results."""

    execution_id: str
    waves: list[WaveDefinition] = field(default_factory=list)
    wave_results: dict[str, WaveResult] = field(default_factory=dict)
    config: WaveConfig = field(default_factory=WaveConfig)
    current_wave_index: int = 0
    started_at: datetime = field(default_factory=utc_now)
    completed_at: datetime | None = None
    cancelled: bool = False
    checkpoint_results: dict[str, dict[str, TaskResult]] = field(default_factory=dict)

    @property
    def total_waves(self) -> int:
        return len(self.waves)

    @property
    def completed_waves(self) -> int:
        return len(self.wave_results)

    @property
    def progress(self) -> float:
        return self.completed_waves / self.total_waves if self.waves else 0.0

    @property
    def total_tasks(self) -> int:
        return sum(r.total_tasks for r in self.wave_results.values())

    @property
    def total_successful(self) -> int:
        return sum(r.success_count for r in self.wave_results.values())

    @property
    def total_failed(self) -> int:
        return sum(r.failure_count + r.timeout_count for r in self.wave_results.values())

    @property
    def overall_success_rate(self) -> float:
        total = self.total_tasks
        return self.total_successful / total if total else 0.0

    @property
    def duration_ms(self) -> float:
        return _ms(self.started_at, self.completed_at)
