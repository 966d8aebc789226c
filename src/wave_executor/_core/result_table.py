"""Task results of one run, stored by column.

A million-task run would spend more time and memory building ``TaskResult``
objects and their two datetimes than scheduling. Instead the run writes a
few numbers per task into flat arrays (the statuses are the plan's own
status codes), and ``TaskResult`` objects are made when somebody looks at
one, then kept, so changes made to them stick. To its reader the table is a
read-only ``Mapping`` of task id to ``TaskResult``, like 0.3.0's dict.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from wave_executor._core.records import TaskResult
from wave_executor._core.run_clock import RunClock
from wave_executor._core.status import TERMINAL, TaskStatus, code_of, status_of

__all__ = ["TaskResultTable"]

_TERMINAL_CODES = frozenset(code_of(s) for s in TERMINAL)


class TaskResultTable(Mapping[Any, TaskResult]):
    """Results by column; a ``TaskResult`` is built on first access."""

    __slots__ = (
        "_cache",
        "_clock",
        "_end",
        "_errors",
        "_ids",
        "_index",
        "_outputs",
        "_retries",
        "_start",
        "_status",
        "restored",
        "wave_id",
    )

    def __init__(
        self,
        ids: list[Any],
        index: Mapping[Any, int],
        statuses: bytearray,
        clock: RunClock,
        wave_id: str = "dag",
    ) -> None:
        n = len(ids)
        self._ids = ids
        self._index = index
        self._status = statuses
        self._start = array("d", [0.0]) * n
        self._end = array("d", [0.0]) * n
        self._outputs: list[Any] = [None] * n
        self._errors: dict[int, str] = {}
        self._retries: dict[int, int] = {}
        self._cache: dict[int, TaskResult] = {}
        #: Tasks whose stored success was reused instead of running them (resumed runs).
        self.restored: list[int] = []
        self._clock = clock
        self.wave_id = wave_id

    # -- writing (the run) ---------------------------------------------------

    def record(
        self,
        i: int,
        start: float,
        end: float,
        output: Any = None,
        error: str | None = None,
        retries: int = 0,
    ) -> None:
        """Times are on the run's monotonic clock; the status is the plan's."""
        self._start[i] = start
        self._end[i] = end
        if output is not None:
            self._outputs[i] = output
        if error is not None:
            self._errors[i] = error
        if retries:
            self._retries[i] = retries

    def ids_of(self, indices: list[int]) -> list[Any]:
        return [self._ids[i] for i in indices]

    def output_of(self, i: int) -> Any:
        return self._outputs[i]

    # -- reading -------------------------------------------------------------

    def count(self, status: TaskStatus) -> int:
        return self._status.count(code_of(status))

    def wall_time(self, t: float) -> datetime:
        return self._clock.wall(t)

    def _has(self, i: int) -> bool:
        return self._status[i] in _TERMINAL_CODES

    def __getitem__(self, task_id: Any) -> TaskResult:
        i = self._index[task_id]
        cached = self._cache.get(i)
        if cached is not None:
            return cached
        if not self._has(i):
            raise KeyError(task_id)
        start, end = self._start[i], self._end[i]
        result = TaskResult(
            task_id=task_id,
            wave_id=self.wave_id,
            status=status_of(self._status[i]),
            output=self._outputs[i],
            error=self._errors.get(i),
            duration_ms=(end - start) * 1000.0,
            retry_count=self._retries.get(i, 0),
            started_at=self.wall_time(start),
            completed_at=self.wall_time(end),
        )
        self._cache[i] = result
        return result

    def __iter__(self) -> Iterator[Any]:
        status, terminal = self._status, _TERMINAL_CODES
        return (task_id for i, task_id in enumerate(self._ids) if status[i] in terminal)

    def __len__(self) -> int:
        return sum(self._status.count(code) for code in _TERMINAL_CODES)

    def __contains__(self, task_id: object) -> bool:
        i = self._index.get(task_id)
        return i is not None and self._has(i)

    def __repr__(self) -> str:
        return f"<TaskResultTable: {len(self)} results>"
