"""Results by column: what a reader gets is what eager ``TaskResult`` objects gave."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import gc
import json
import pickle
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wave_executor import DAGExecutor, RetryPolicy, TaskResult, WaveConfig
from wave_executor._core.critical_path import longest_path
from wave_executor._core.fan_out import ChildId
from wave_executor._core.result_table import TaskResultTable, _isoformat
from wave_executor._core.run_clock import RunClock
from wave_executor._core.status import TERMINAL, TaskStatus, code_of
from wave_executor._core.triggers import SkipReason
from wave_executor.store import MemoryStore
from wave_executor.testing import run_virtual


def make_table() -> TaskResultTable:
    ids = ["a", "b", "c", "d"]
    codes = bytearray(
        code_of(s)
        for s in (TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.PENDING, TaskStatus.SKIPPED)
    )
    clock = RunClock(100.0, 1_700_000_000.0)
    table = TaskResultTable(ids, {t: i for i, t in enumerate(ids)}, codes, clock)
    table.record(0, 100.5, 100.75, {"x": 1})
    table.record(1, 101.0, 103.0, "report", "boom", retries=2)
    table.record(3, 104.0, 104.0, None, "skipped: upstream")
    return table


def eager(task_id: Any, status: TaskStatus, output: Any, error: str | None,
          start: float, end: float, retries: int) -> TaskResult:  # fmt: skip
    """The record as the table built it before it went lazy."""
    wall = 1_700_000_000.0 - 100.0
    return TaskResult(
        task_id=task_id,
        wave_id="dag",
        status=status,
        output=output,
        error=error,
        duration_ms=(end - start) * 1000.0,
        retry_count=retries,
        started_at=datetime.fromtimestamp(wall + start, UTC),
        completed_at=datetime.fromtimestamp(wall + end, UTC),
        skip_reason="upstream_failed" if status == TaskStatus.SKIPPED else None,
    )


EXPECTED = {
    "a": eager("a", TaskStatus.SUCCESS, {"x": 1}, None, 100.5, 100.75, 0),
    "b": eager("b", TaskStatus.FAILED, "report", "boom", 101.0, 103.0, 2),
    "d": eager("d", TaskStatus.SKIPPED, None, "skipped: upstream", 104.0, 104.0, 0),
}


def test_every_way_of_reading_gives_the_eager_records() -> None:
    table = make_table()
    assert list(table) == ["a", "b", "d"]
    assert len(table) == 3
    assert "c" not in table and "zz" not in table and "a" in table
    assert {t: table[t] for t in table} == EXPECTED
    assert dict(table.items()) == EXPECTED
    assert list(table.values()) == list(EXPECTED.values())
    assert dict(table) == EXPECTED
    with pytest.raises(KeyError):
        table["c"]  # no result yet


def test_bulk_columns_match_the_records() -> None:
    table = make_table()
    assert table.statuses() == {t: r.status for t, r in EXPECTED.items()}
    assert table.outputs() == {t: r.output for t, r in EXPECTED.items()}
    assert all(type(s) is TaskStatus for s in table.statuses().values())


def test_times_read_as_aware_datetimes_and_survive_copies() -> None:
    r = make_table()["b"]
    assert r.started_at == datetime.fromtimestamp(1_700_000_001.0, UTC)
    assert r.completed_at is not None and r.completed_at.tzinfo is UTC
    assert r.to_dict() == EXPECTED["b"].to_dict()
    assert repr(r) == repr(EXPECTED["b"])
    for clone in (pickle.loads(pickle.dumps(make_table()["b"])), copy.copy(make_table()["b"])):
        assert clone == EXPECTED["b"]
        assert isinstance(clone.started_at, datetime)
    assert dataclasses.asdict(make_table()["a"]) == dataclasses.asdict(EXPECTED["a"])
    assert dataclasses.replace(make_table()["a"], output=2).started_at == EXPECTED["a"].started_at


def test_a_record_is_a_plain_mutable_task_result() -> None:
    table = make_table()
    r = table["a"]
    assert type(r) is TaskResult
    when = datetime(2020, 1, 1, tzinfo=UTC)
    r.started_at = when
    r.completed_at = None
    r.output = "changed"
    assert (r.started_at, r.completed_at, r.output) == (when, None, "changed")
    assert table["a"] == EXPECTED["a"]  # the table is read-only: a new record each read
    assert table["a"] is not table["a"]
    built = TaskResult("t", "w", "success")
    assert isinstance(built.started_at, datetime) and built.completed_at is None


async def test_a_run_answers_in_bulk_as_its_records_do() -> None:
    async def body(task_id: str, spec: Any) -> Any:
        if task_id == "bad":
            raise ValueError("no")
        return task_id.upper()

    config = WaveConfig(retry_policy=RetryPolicy(max_retries=1, backoff_factor=0))
    deps = {"after": ["bad"], "c": ["a"]}
    tasks = dict.fromkeys(["a", "bad", "after", "c"])
    result = await DAGExecutor(config).execute(tasks, deps, body)
    records = dict(result.task_results.items())
    assert result.statuses() == {t: r.status for t, r in records.items()}
    assert result.outputs() == {t: r.output for t, r in records.items()}
    assert result.statuses() == {
        "a": "success", "bad": "failed", "after": "skipped", "c": "success",
    }  # fmt: skip
    assert records["bad"].retry_count == 1 and records["c"].output == "C"
    assert records == {t: result.task_results[t] for t in result.task_results}


# -- every way of reading, against records built by hand ------------------------------------

ALL_STATUSES = list(TaskStatus)
WALL0 = 1_700_000_000.0  # the clock's wall time at monotonic 100.0


def by_hand(table: TaskResultTable, i: int) -> TaskResult:
    """Task ``i``'s record built with the public constructor from what the run wrote."""
    start, end = table._start[i], table._end[i]
    offset = table._offset  # monotonic -> epoch seconds
    status = TaskStatus(ALL_STATUSES[table._status[i]])
    reason = None
    if status == TaskStatus.SKIPPED:
        reason = table.skip_reasons.get(i, "upstream_failed")
    return TaskResult(
        table._ids[i],
        table.wave_id,
        status,
        table._outputs[i],
        table._errors.get(i),
        (end - start) * 1000.0,
        table._retries.get(i, 0),
        datetime.fromtimestamp(start + offset, UTC),
        datetime.fromtimestamp(end + offset, UTC),
        reason,
    )


@st.composite
def tables(draw: st.DrawFn) -> TaskResultTable:
    """Any mix of statuses (some without a result yet), errors, retries and skip reasons;
    often a finished all-success run, the case with a loop of its own."""
    n = draw(st.integers(0, 12))
    plain = draw(st.booleans())
    codes = [
        code_of(TaskStatus.SUCCESS) if plain else draw(st.integers(0, len(ALL_STATUSES) - 1))
        for _ in range(n)
    ]
    ids: list[Any] = [f"t{i}" if i % 3 else i for i in range(n)]
    table = TaskResultTable(
        ids, {t: i for i, t in enumerate(ids)}, bytearray(codes), RunClock(100.0, WALL0),
        draw(st.sampled_from(["dag", "wave-7"])),
    )  # fmt: skip
    times = st.floats(100.0, 5000.0, allow_nan=False)
    reasons: dict[int, SkipReason] = {}
    for i in range(n):
        start = draw(times)
        end = start + draw(st.floats(0.0, 100.0, allow_nan=False))
        output = draw(st.sampled_from([None, 0, "out", ("tuple", i)]))
        error = None if plain else draw(st.sampled_from([None, "boom"]))
        retries = 0 if plain else draw(st.integers(0, 2))
        table.record(i, start, end, output, error, retries)
        if codes[i] == code_of(TaskStatus.SKIPPED) and draw(st.booleans()):
            reasons[i] = draw(st.sampled_from(list(SkipReason)))
    table.skip_reasons = reasons
    return table


@settings(max_examples=150, deadline=None)
@given(tables())
def test_every_way_of_reading_equals_records_built_by_hand(table: TaskResultTable) -> None:
    ended = [i for i, c in enumerate(table._status) if ALL_STATUSES[c] in TERMINAL]
    expected = {table._ids[i]: by_hand(table, i) for i in ended}
    assert list(table) == list(expected) and len(table) == len(expected)
    assert dict(table.items()) == expected and list(table.items()) == list(expected.items())
    assert list(table.values()) == list(expected.values())
    assert {t: table[t] for t in table} == expected
    for t in table._ids:
        assert (t in table) == (t in expected)
        assert table.get(t) == expected.get(t)
        assert table.get(t, "none") == expected.get(t, "none")
        if t not in expected:
            with pytest.raises(KeyError):
                table[t]
    assert table.get("missing") is None and "missing" not in table
    records = [*table.values(), *(table[t] for t in table), *(r for _, r in table.items())]
    assert all(type(r) is TaskResult for r in records)
    for r in records:  # equal, and of the same types field by field
        want = expected[r.task_id]
        fields = [f.name for f in dataclasses.fields(TaskResult)]
        assert [type(getattr(r, f)) for f in fields] == [type(getattr(want, f)) for f in fields]
    for t in table._ids:
        if isinstance(t, int) and t in expected:  # an equal key finds the task's own id
            assert type(table[float(t)].task_id) is int and type(table.get(float(t))) is TaskResult
    assert table.statuses() == {t: r.status for t, r in expected.items()}
    assert table.outputs() == {t: r.output for t, r in expected.items()}
    assert table.durations_ms() == {t: r.duration_ms for t, r in expected.items()}
    for status in TERMINAL:
        assert table.ids_with(status) == [t for t, r in expected.items() if r.status == status]
    dicts = {str(t): r.to_dict() for t, r in expected.items()}
    assert table.to_dicts() == dicts
    assert json.dumps(table.to_dicts()) == json.dumps(dicts)  # the same keys in the same order


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.floats(0.0, 4e9, allow_nan=False),
        st.integers(0, 4_000_000_000).map(lambda s: s + 0.9999995),  # rounds up a second
        st.integers(0, 4_000_000_000).map(lambda s: s + 0.0000004),
        st.integers(-1_000_000, 1_000_000).map(float),
        st.floats(-1e6, 0.0, allow_nan=False),
    ),
    st.floats(0.0, 2.0, allow_nan=False),
)
def test_bulk_timestamps_format_as_datetime_does(t: float, later: float) -> None:
    seconds: dict[int, str] = {}
    for when in (t, t + later, t, t + 1.0):  # the second ones reuse what the first kept
        assert _isoformat(when, seconds) == datetime.fromtimestamp(when, UTC).isoformat()


def test_the_table_keeps_no_record_alive() -> None:
    table = make_table()

    def alive() -> int:
        return sum(type(o) is TaskResult for o in gc.get_objects())

    before = alive()
    kept = list(table.values())
    assert alive() == before + 3
    del kept
    dict(table.items())
    [table[t] for t in table]
    assert alive() == before


# -- real runs: every status, restored results, fan-out children -----------------------------


def check_every_read(result: Any, deps: dict[Any, list[Any]]) -> dict[Any, TaskResult]:
    """All the ways of reading ``result`` agree with records built by hand from its table."""
    table = result.task_results
    assert isinstance(table, TaskResultTable)
    ended = [i for i, c in enumerate(table._status) if ALL_STATUSES[c] in TERMINAL]
    expected = {table._ids[i]: by_hand(table, i) for i in ended}
    assert list(table.items()) == list(expected.items())
    assert list(table.values()) == list(expected.values())
    assert {t: table[t] for t in table} == {t: table.get(t) for t in table} == expected
    assert result.statuses() == {t: r.status for t, r in expected.items()}
    assert result.outputs() == {t: r.output for t, r in expected.items()}
    dicts = {str(t): r.to_dict() for t, r in expected.items()}
    assert json.dumps(result.to_dict()["task_results"], default=repr) == json.dumps(
        dicts, default=repr
    )
    assert result.cancelled == [t for t, r in expected.items() if r.status == "cancelled"]
    durations = {t: r.duration_ms for t, r in expected.items()}
    assert result.get_critical_path(deps) == longest_path(durations, deps)
    for status in TERMINAL:
        assert result._count(status) == sum(r.status == status for r in expected.values())
    return expected


def test_a_run_with_every_status_reads_the_same_every_way() -> None:
    attempts: dict[str, int] = {}

    async def body(task_id: str, spec: Any) -> Any:
        attempts[task_id] = attempts.get(task_id, 0) + 1
        if task_id == "slow":
            await asyncio.sleep(10.0)
        await asyncio.sleep(0.5)
        if task_id == "bad" or (task_id == "flaky" and attempts[task_id] == 1):
            raise ValueError(f"{task_id} broke")
        return [1, 2] if task_id == "split" else task_id.upper()

    deps: dict[Any, list[Any]] = {
        "after_bad": ["bad"], "handler": ["ok"], "split": ["ok"], "slow": ["ok"],
    }  # fmt: skip
    config = WaveConfig(
        retry_policy=RetryPolicy(max_retries=1, backoff_factor=0),
        default_task_timeout=2.0,
        circuit_breaker_enabled=False,
    )
    tasks = dict.fromkeys(["ok", "flaky", "bad", "after_bad", "handler", "split", "slow"])

    async def main() -> Any:
        return await DAGExecutor(config).execute(
            tasks, deps, body, trigger_rules={"handler": "one_failed"}, fan_out={"split": square}
        )

    result, _ = run_virtual(main())
    records = check_every_read(result, deps)
    assert {t: (r.status, r.skip_reason, r.retry_count) for t, r in records.items()} == {
        "ok": ("success", None, 0),
        "flaky": ("success", None, 1),
        "bad": ("failed", None, 1),
        "after_bad": ("skipped", "upstream_failed", 0),
        "handler": ("skipped", "rule_not_met", 0),
        "split": ("success", None, 0),
        "slow": ("timeout", None, 0),
        ChildId("split", 0): ("success", None, 0),
        ChildId("split", 1): ("success", None, 0),
    }
    assert type(records["handler"].skip_reason) is SkipReason
    assert records["bad"].error is not None and "bad broke" in records["bad"].error
    assert result.children("split") == {t: r for t, r in records.items() if isinstance(t, ChildId)}


def test_a_stopped_run_and_a_resumed_one_read_the_same_every_way() -> None:
    async def body(task_id: str, spec: Any) -> Any:
        await asyncio.sleep(5.0 if task_id == "slow" else 1.0)
        if task_id == "bad":
            raise ValueError("no")
        return task_id

    deps: dict[Any, list[Any]] = {"after_slow": ["slow"], "after_bad": ["bad"]}
    tasks = dict.fromkeys(["slow", "bad", "after_slow", "after_bad", "ok"])
    stop = WaveConfig(stop_on_first_error=True, max_retries=0)
    result, _ = run_virtual(DAGExecutor(stop).execute(tasks, deps, body))
    records = check_every_read(result, deps)
    assert records["slow"].status == "cancelled" and "slow" in result.cancelled
    assert result.total_cancelled == len(result.cancelled) >= 1

    store = MemoryStore()
    keep = WaveConfig(max_retries=0)
    first, _ = run_virtual(DAGExecutor(keep).execute(tasks, deps, body, store=store, run_id="r"))
    check_every_read(first, deps)
    second, _ = run_virtual(DAGExecutor(keep).execute(tasks, deps, body, store=store, run_id="r"))
    records = check_every_read(second, deps)
    assert second.restored and all(records[t].status == "success" for t in second.restored)
    assert all(records[t].duration_ms == 0.0 for t in second.restored)


async def square(child: ChildId, item: int) -> int:
    return item * item
