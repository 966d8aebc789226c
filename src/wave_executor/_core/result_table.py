"""Task results of one run, stored by column.

A million-task run would spend more time and memory building ``TaskResult``
objects and their two datetimes than scheduling. Instead the run writes a
few numbers per task into flat arrays (the statuses are the plan's own
status codes), and a ``TaskResult`` is made when somebody looks at one. To
its reader the table is a read-only ``Mapping`` of task id to
``TaskResult``, like 0.3.0's dict, except that every read makes a new
object (equal to the last): the table does not keep them, because a
hundred thousand kept objects make the cyclic garbage collector walk the
heap again and again, which doubled the cost of reading every result.
Changing a ``TaskResult`` changes that object only.

Reading every result must stay cheap too: a ``TaskResult`` is made with
positional arguments and its two times as floats, which its
``started_at``/``completed_at`` turn into datetimes when read
(``records._lazy_wall_time``); ``items()``/``values()`` walk the columns instead
of looking every id up again. ``statuses()`` and ``outputs()`` give whole
columns as dicts without making any ``TaskResult``.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, ItemsView, Iterator, Mapping, ValuesView
from datetime import datetime
from itertools import compress
from typing import Any

from wave_executor._core.records import TaskResult
from wave_executor._core.run_clock import RunClock
from wave_executor._core.status import TERMINAL, TaskStatus, code_of, status_of
from wave_executor._core.triggers import SkipReason

__all__ = ["TaskResultTable"]

_TERMINAL_CODES = frozenset(code_of(s) for s in TERMINAL)
#: Code -> status, and code -> "is terminal", as tuples indexed in C.
_STATUS_OF = tuple(status_of(c) for c in range(len(TaskStatus)))
_IS_TERMINAL = tuple(c in _TERMINAL_CODES for c in range(len(TaskStatus)))
#: ``TaskResult`` as the table calls it: the two times go in as epoch floats, which the
#: record turns into datetimes when they are read (``records._lazy_wall_time``).
_new_result: Callable[..., TaskResult] = TaskResult
_SKIPPED_CODE = code_of(TaskStatus.SKIPPED)
_RULE_NOT_MET = SkipReason.RULE_NOT_MET.value
_UPSTREAM_FAILED = SkipReason.UPSTREAM_FAILED.value


class TaskResultTable(Mapping[Any, TaskResult]):
    """Results by column; a ``TaskResult`` is built on each access."""

    __slots__ = (
        "_clock",
        "_end",
        "_errors",
        "_ids",
        "_index",
        "_offset",
        "_outputs",
        "_retries",
        "_start",
        "_status",
        "expansions",
        "restored",
        "skip_reasons",
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
        #: Tasks whose stored success was reused instead of running them (resumed runs).
        self.restored: list[int] = []
        #: Why skipped tasks were skipped, when a trigger rule decided it; a skipped
        #: task missing here was skipped because an upstream failed.
        self.skip_reasons: Mapping[int, str] = {}
        #: Fan-out parent id -> the indices of its children (runs with ``fan_out``).
        self.expansions: dict[Any, range] = {}
        self._clock = clock
        self._offset = clock.wall0 - clock.mono0  # monotonic -> epoch seconds
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

    def grow(self, parent: Any, children: range) -> None:
        """Make room for a fan-out parent's children (the ids are the graph's, shared)."""
        count = len(children)
        self._start.extend(array("d", [0.0]) * count)
        self._end.extend(array("d", [0.0]) * count)
        self._outputs.extend([None] * count)
        self.expansions[parent] = children

    def children(self, parent: Any) -> dict[Any, TaskResult]:
        """Child id -> result of ``parent``'s fan-out children that ended, in item order."""
        ids = self._ids
        return {ids[i]: self._make(i) for i in self.expansions.get(parent, ()) if self._has(i)}

    def ids_of(self, indices: list[int]) -> list[Any]:
        return [self._ids[i] for i in indices]

    def output_of(self, i: int) -> Any:
        return self._outputs[i]

    # -- reading -------------------------------------------------------------

    def count(self, status: TaskStatus) -> int:
        return self._status.count(code_of(status))

    def count_rule_not_met(self) -> int:
        return sum(1 for r in self.skip_reasons.values() if r == _RULE_NOT_MET)

    def _skip_reason(self, i: int) -> str | None:
        if self._status[i] != _SKIPPED_CODE:
            return None
        return self.skip_reasons.get(i, _UPSTREAM_FAILED)

    def wall_time(self, t: float) -> datetime:
        return self._clock.wall(t)

    def _has(self, i: int) -> bool:
        return self._status[i] in _TERMINAL_CODES

    def _make(self, i: int) -> TaskResult:
        """A new ``TaskResult`` of task ``i`` (which has one)."""
        start, end = self._start[i], self._end[i]
        offset = self._offset
        return _new_result(
            self._ids[i],
            self.wave_id,
            _STATUS_OF[self._status[i]],
            self._outputs[i],
            self._errors.get(i) if self._errors else None,
            (end - start) * 1000.0,
            self._retries.get(i, 0) if self._retries else 0,
            start + offset,  # floats: TaskResult makes the datetimes when read
            end + offset,
            self._skip_reason(i),
        )

    def __getitem__(self, task_id: Any) -> TaskResult:
        i = self._index[task_id]
        if not self._has(i):
            raise KeyError(task_id)
        return self._make(i)

    def _terminal(self) -> Iterator[int]:
        """Indices of the tasks that have a result, in id order."""
        return compress(range(len(self._ids)), map(_IS_TERMINAL.__getitem__, self._status))

    def _results(self) -> Iterator[TaskResult]:
        return map(self._make, self._terminal())

    def _pairs(self) -> Iterator[tuple[Any, TaskResult]]:
        """``(id, TaskResult)`` of every task with a result: ``_make``, inlined."""
        ids, wave_id, codes, outputs = self._ids, self.wave_id, self._status, self._outputs
        starts, ends, offset = self._start, self._end, self._offset
        errors, retries = self._errors, self._retries
        new, status_of_code = _new_result, _STATUS_OF
        reasons = self.skip_reasons
        for i in self._terminal():
            start, end = starts[i], ends[i]
            task_id = ids[i]
            yield (
                task_id,
                new(
                    task_id,
                    wave_id,
                    status_of_code[codes[i]],
                    outputs[i],
                    errors.get(i) if errors else None,
                    (end - start) * 1000.0,
                    retries.get(i, 0) if retries else 0,
                    start + offset,
                    end + offset,
                    reasons.get(i, _UPSTREAM_FAILED) if codes[i] == _SKIPPED_CODE else None,
                ),
            )

    def __iter__(self) -> Iterator[Any]:
        return compress(self._ids, map(_IS_TERMINAL.__getitem__, self._status))

    def __len__(self) -> int:
        return sum(self._status.count(code) for code in _TERMINAL_CODES)

    def __contains__(self, task_id: object) -> bool:
        i = self._index.get(task_id)
        return i is not None and self._has(i)

    def items(self) -> ItemsView[Any, TaskResult]:
        return _Items(self)

    def values(self) -> ValuesView[TaskResult]:
        return _Values(self)

    # -- whole columns -------------------------------------------------------

    def statuses(self) -> dict[Any, TaskStatus]:
        """Task id -> status, for every task with a result; no ``TaskResult`` is made."""
        if len(self) == len(self._ids):
            out = dict(zip(self._ids, map(_STATUS_OF.__getitem__, self._status), strict=True))
        else:
            out = {self._ids[i]: _STATUS_OF[self._status[i]] for i in self._terminal()}
        return out

    def outputs(self) -> dict[Any, Any]:
        """Task id -> output (None for most unsuccessful tasks), like ``statuses()``."""
        if len(self) == len(self._ids):
            out = dict(zip(self._ids, self._outputs, strict=True))
        else:
            out = {self._ids[i]: self._outputs[i] for i in self._terminal()}
        return out

    def __repr__(self) -> str:
        return f"<TaskResultTable: {len(self)} results>"


class _Items(ItemsView[Any, TaskResult]):
    """``items()`` that walks the columns instead of looking each id up."""

    __slots__ = ()
    _mapping: TaskResultTable

    def __iter__(self) -> Iterator[tuple[Any, TaskResult]]:
        return self._mapping._pairs()


class _Values(ValuesView[TaskResult]):
    __slots__ = ()
    _mapping: TaskResultTable

    def __iter__(self) -> Iterator[TaskResult]:
        return self._mapping._results()
