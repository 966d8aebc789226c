"""Results by column: what a reader gets is what eager ``TaskResult`` objects gave."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from datetime import UTC, datetime
from typing import Any

import pytest

from wave_executor import DAGExecutor, RetryPolicy, TaskResult, WaveConfig
from wave_executor._core.result_table import TaskResultTable
from wave_executor._core.run_clock import RunClock
from wave_executor._core.status import TaskStatus, code_of


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
