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

Reading every result must stay cheap too. A ``TaskResult`` is made here
without calling its ``__init__`` (a Python frame and ten arguments per
record): a blank one from ``object.__new__``, then ten plain slot stores,
the two times as epoch floats into the raw ``_started_at``/``_completed_at``
slots, which ``started_at``/``completed_at`` turn into datetimes when read
(``records._lazy_wall_time``). ``items()``/``values()`` walk the columns
side by side instead of looking every id up again. ``statuses()``,
``outputs()`` and ``durations_ms()`` give whole columns as dicts without
making any ``TaskResult``.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, ItemsView, Iterator, Mapping, ValuesView
from datetime import UTC, datetime
from itertools import compress, repeat
from operator import mul, sub
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
#: The terminal codes as bytes: deleting them from the status column (one pass in C)
#: leaves the tasks that have no result yet.
_TERMINAL_BYTES = bytes(sorted(_TERMINAL_CODES))
#: A blank ``TaskResult`` (no ``__init__`` run): the table fills its slots itself. Typed
#: ``Any`` because it also fills the raw time slots, which are not fields.
_blank: Callable[[type[TaskResult]], Any] = object.__new__
#: Code -> ``str(status)``, as ``TaskResult.to_dict`` writes it.
_STATUS_TEXT = tuple(str(s) for s in _STATUS_OF)
_SKIPPED_CODE = code_of(TaskStatus.SKIPPED)
_RULE_NOT_MET = SkipReason.RULE_NOT_MET.value
_UPSTREAM_FAILED = SkipReason.UPSTREAM_FAILED.value


def _isoformat(t: float, seconds: dict[int, str]) -> str:
    """``datetime.fromtimestamp(t, UTC).isoformat()``, formatted faster in bulk.

    Formatting the date and time is most of the cost, and a run's tasks share few
    whole seconds: ``seconds`` keeps that part by whole second. It is only reused
    when the microseconds are not 0: then ``t`` was not rounded up into the next
    second, so its whole second is ``int(t)`` (for ``t >= 0``).
    """
    when = datetime.fromtimestamp(t, UTC)
    micro = when.microsecond
    if not micro or t < 0:
        return when.isoformat()
    second = int(t)
    head = seconds.get(second)
    if head is None:
        head = seconds[second] = when.isoformat()[:19]
    return head + "." + format(micro, "06d") + "+00:00"


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
        ids, codes, make = self._ids, self._status, self._make
        return {ids[i]: make(i) for i in self.expansions.get(parent, ()) if _IS_TERMINAL[codes[i]]}

    def ids_of(self, indices: list[int]) -> list[Any]:
        return [self._ids[i] for i in indices]

    def output_of(self, i: int) -> Any:
        return self._outputs[i]

    # -- reading -------------------------------------------------------------

    def count(self, status: TaskStatus) -> int:
        return self._status.count(code_of(status))

    def count_rule_not_met(self) -> int:
        return sum(1 for r in self.skip_reasons.values() if r == _RULE_NOT_MET)

    def wall_time(self, t: float) -> datetime:
        return self._clock.wall(t)

    def _complete(self) -> bool:
        """Has every task a result? (The usual case once a run has ended.)"""
        codes = self._status
        return len(codes) == len(self._ids) and not codes.translate(None, _TERMINAL_BYTES)

    def _terminal(self) -> Iterator[int]:
        """Indices of the tasks that have a result, in id order."""
        return compress(range(len(self._ids)), map(_IS_TERMINAL.__getitem__, self._status))

    def _make(self, i: int) -> TaskResult:
        """A new ``TaskResult`` of task ``i`` (which has one), filled as ``_walk`` does."""
        code, start, end = self._status[i], self._start[i], self._end[i]
        errors, retries, offset = self._errors, self._retries, self._offset
        r = _blank(TaskResult)
        r.task_id = self._ids[i]
        r.wave_id = self.wave_id
        r.status = _STATUS_OF[code]
        r.output = self._outputs[i]
        r.error = errors.get(i) if errors else None
        r.duration_ms = (end - start) * 1000.0
        r.retry_count = retries.get(i, 0) if retries else 0
        r._started_at = start + offset  # epoch floats: made datetimes when read
        r._completed_at = end + offset
        r.skip_reason = (
            self.skip_reasons.get(i, _UPSTREAM_FAILED) if code == _SKIPPED_CODE else None
        )
        made: TaskResult = r
        return made

    def _walk(self) -> Iterator[TaskResult]:
        """A new ``TaskResult`` of every task with a result, in id order.

        ``_make`` inlined over the columns zipped side by side: no index lookups and
        no call per record. A run where every task ended without an error, a retry or
        a skip (the usual one) takes a loop without those lookups.
        """
        if (
            not self._errors
            and not self._retries
            and _SKIPPED_CODE not in self._status
            and self._complete()
        ):
            return self._walk_plain()
        return self._walk_any()

    def _walk_plain(self) -> Iterator[TaskResult]:
        wave_id, offset, status_of_code = self.wave_id, self._offset, _STATUS_OF
        blanks = map(_blank, repeat(TaskResult))
        columns = (self._ids, self._status, self._outputs, self._start, self._end)
        rows = zip(*columns, blanks, strict=False)  # ``blanks`` never ends; the ids do first
        for task_id, code, output, start, end, r in rows:
            r.task_id = task_id
            r.wave_id = wave_id
            r.status = status_of_code[code]
            r.output = output
            r.error = None
            r.duration_ms = (end - start) * 1000.0
            r.retry_count = 0
            r._started_at = start + offset
            r._completed_at = end + offset
            r.skip_reason = None
            yield r

    def _rows(self) -> Iterator[tuple[int, Any, int, Any, float, float]]:
        """``(index, id, code, output, start, end)`` of every task with a result, in id order."""
        rows: Iterator[tuple[int, Any, int, Any, float, float]] = zip(  # aligned prefixes
            range(len(self._ids)), self._ids, self._status, self._outputs, self._start, self._end,
            strict=False,
        )  # fmt: skip
        if not self._complete():
            rows = compress(rows, map(_IS_TERMINAL.__getitem__, self._status))
        return rows

    def _walk_any(self) -> Iterator[TaskResult]:
        rows = self._rows()
        wave_id, offset, errors, retries = self.wave_id, self._offset, self._errors, self._retries
        reasons, blank, cls, status_of_code = self.skip_reasons, _blank, TaskResult, _STATUS_OF
        skipped, upstream_failed = _SKIPPED_CODE, _UPSTREAM_FAILED
        for i, task_id, code, output, start, end in rows:
            r = blank(cls)
            r.task_id = task_id
            r.wave_id = wave_id
            r.status = status_of_code[code]
            r.output = output
            r.error = errors.get(i) if errors else None
            r.duration_ms = (end - start) * 1000.0
            r.retry_count = retries.get(i, 0) if retries else 0
            r._started_at = start + offset
            r._completed_at = end + offset
            r.skip_reason = reasons.get(i, upstream_failed) if code == skipped else None
            yield r

    def __getitem__(self, task_id: Any) -> TaskResult:
        i = self._index[task_id]
        if not _IS_TERMINAL[self._status[i]]:
            raise KeyError(task_id)
        return self._make(i)

    def get(self, task_id: Any, default: Any = None) -> Any:
        """``Mapping.get``, without raising and catching a ``KeyError`` for a missing id."""
        i = self._index.get(task_id)
        if i is None or not _IS_TERMINAL[self._status[i]]:
            return default
        return self._make(i)

    def __iter__(self) -> Iterator[Any]:
        if self._complete():
            return iter(self._ids)
        return compress(self._ids, map(_IS_TERMINAL.__getitem__, self._status))

    def __len__(self) -> int:
        codes = self._status
        return len(codes) - len(codes.translate(None, _TERMINAL_BYTES))

    def __contains__(self, task_id: object) -> bool:
        i = self._index.get(task_id)
        return i is not None and _IS_TERMINAL[self._status[i]]

    def items(self) -> ItemsView[Any, TaskResult]:
        return _Items(self)

    def values(self) -> ValuesView[TaskResult]:
        return _Values(self)

    # -- whole columns -------------------------------------------------------

    def statuses(self) -> dict[Any, TaskStatus]:
        """Task id -> status, for every task with a result; no ``TaskResult`` is made."""
        codes = self._status
        if self._complete():
            if codes and codes.count(codes[0]) == len(codes):  # one status (all succeeded)
                return dict.fromkeys(self._ids, _STATUS_OF[codes[0]])
            out = dict(zip(self._ids, map(_STATUS_OF.__getitem__, codes), strict=True))
        else:
            out = {self._ids[i]: _STATUS_OF[codes[i]] for i in self._terminal()}
        return out

    def outputs(self) -> dict[Any, Any]:
        """Task id -> output (None for most unsuccessful tasks), like ``statuses()``."""
        if self._complete():
            out = dict(zip(self._ids, self._outputs, strict=True))
        else:
            out = {self._ids[i]: self._outputs[i] for i in self._terminal()}
        return out

    def durations_ms(self) -> dict[Any, float]:
        """Task id -> ``duration_ms`` (the same floats), like ``statuses()``."""
        durations = map(mul, map(sub, self._end, self._start), repeat(1000.0))
        if self._complete():
            return dict(zip(self._ids, durations, strict=False))
        keep = list(map(_IS_TERMINAL.__getitem__, self._status))
        return dict(zip(compress(self._ids, keep), compress(durations, keep), strict=False))

    def to_dicts(self) -> dict[str, dict[str, Any]]:
        """``{str(id): result.to_dict()}`` of every task with a result, without the records."""
        rows = self._rows()
        wave_id, offset, errors, retries = self.wave_id, self._offset, self._errors, self._retries
        reasons, text_of_code = self.skip_reasons, _STATUS_TEXT
        seconds: dict[int, str] = {}
        out: dict[str, dict[str, Any]] = {}
        for i, task_id, code, output, start, end in rows:
            row = {
                "task_id": task_id,
                "wave_id": wave_id,
                "status": text_of_code[code],
                "output": output,
                "error": errors.get(i) if errors else None,
                "duration_ms": round((end - start) * 1000.0, 2),
                "retry_count": retries.get(i, 0) if retries else 0,
                "started_at": _isoformat(start + offset, seconds),
                "completed_at": _isoformat(end + offset, seconds),
            }
            if code == _SKIPPED_CODE:
                row["skip_reason"] = reasons.get(i, _UPSTREAM_FAILED)
            out[str(task_id)] = row
        return out

    def ids_with(self, status: TaskStatus) -> list[Any]:
        """Ids of the tasks whose status is ``status``, in id order."""
        return list(compress(self._ids, map(code_of(status).__eq__, self._status)))

    def __repr__(self) -> str:
        return f"<TaskResultTable: {len(self)} results>"


class _Items(ItemsView[Any, TaskResult]):
    """``items()`` that walks the columns instead of looking each id up."""

    __slots__ = ()
    _mapping: TaskResultTable

    def __iter__(self) -> Iterator[tuple[Any, TaskResult]]:
        table = self._mapping
        return zip(iter(table), table._walk(), strict=False)  # same order, same filter


class _Values(ValuesView[TaskResult]):
    __slots__ = ()
    _mapping: TaskResultTable

    def __iter__(self) -> Iterator[TaskResult]:
        return self._mapping._walk()
