"""``TaskResult`` behaves as the plain generated dataclass it was, written-out ``__init__`` and all.

``Generated`` below is the same class left to ``@dataclass(slots=True)``: every check
compares against it rather than against remembered values.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from wave_executor import TaskResult
from wave_executor._core.records import utc_now


@dataclass(slots=True)
class Generated:
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


WHEN = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
ARGS: tuple[Any, ...] = (
    "t",
    "dag",
    "failed",
    {"x": 1},
    "boom",
    12.5,
    2,
    WHEN,
    WHEN + timedelta(seconds=1),
    None,
)


def twin(r: TaskResult) -> Generated:
    return Generated(*(getattr(r, f.name) for f in dataclasses.fields(r)))


def test_the_constructor_has_the_generated_signature() -> None:
    ours, theirs = inspect.signature(TaskResult), inspect.signature(Generated)
    empty = inspect.Signature.empty
    assert str(ours.replace(return_annotation=empty)) == str(
        theirs.replace(return_annotation=empty)
    )
    assert [(p.name, p.kind, p.annotation) for p in ours.parameters.values()] == [
        (p.name, p.kind, p.annotation) for p in theirs.parameters.values()
    ]
    assert [f.name for f in dataclasses.fields(TaskResult)] == [
        f.name for f in dataclasses.fields(Generated)
    ]
    assert TaskResult.__slots__ == Generated.__slots__
    assert TaskResult.__match_args__ == Generated.__match_args__
    assert TaskResult.__hash__ is None  # mutable dataclass, as before


@pytest.mark.parametrize("count", range(3, 11))
def test_positional_and_keyword_arguments_and_defaults(count: int) -> None:
    names = [f.name for f in dataclasses.fields(TaskResult)]
    positional = TaskResult(*ARGS[:count])
    keyword = TaskResult(**dict(zip(names[:count], ARGS[:count], strict=True)))
    expected = Generated(*ARGS[:count])
    for r in (positional, keyword):
        if count <= 7:  # started_at defaulted to "now": compare it apart
            assert abs(r.started_at - expected.started_at) < timedelta(seconds=5)
            assert r.started_at.tzinfo is UTC
            r.started_at = expected.started_at
        assert twin(r) == expected
        assert repr(r) == repr(expected).replace("Generated(", "TaskResult(", 1)


def test_none_and_floats_given_for_the_times() -> None:
    none: Any = None
    start, end, later = 1.5, 2.25, 3.0  # epoch seconds, as a results table stores them
    r = TaskResult("t", "w", "success", started_at=none)
    times: tuple[Any, Any] = (r.started_at, r.completed_at)
    assert times == (None, None)
    r = TaskResult("t", "w", "success", started_at=cast(Any, start), completed_at=cast(Any, end))
    assert r.started_at == datetime.fromtimestamp(start, UTC) and r.started_at.tzinfo is UTC
    assert r.completed_at == datetime.fromtimestamp(end, UTC)
    r.completed_at = cast(Any, later)
    assert r.completed_at == datetime.fromtimestamp(later, UTC)
    assert twin(r) == Generated(
        "t", "w", "success", None, None, 0.0, 0, r.started_at, r.completed_at
    )
    with pytest.raises(TypeError):
        TaskResult("t", "w")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        TaskResult("t", "w", "s", bogus=1)  # type: ignore[call-arg]


def test_equality_copies_pickles_and_dataclass_helpers() -> None:
    r = TaskResult(*ARGS)
    g = Generated(*ARGS)
    assert r == TaskResult(*ARGS) and r != dataclasses.replace(r, skip_reason="rule_not_met")
    assert dataclasses.asdict(r) == dataclasses.asdict(g)
    assert dataclasses.astuple(r) == dataclasses.astuple(g)
    changed = dataclasses.replace(r, output=2)
    assert type(changed) is TaskResult and changed.output == 2 and changed.started_at == WHEN
    clones = [copy.copy(r), copy.deepcopy(r)]
    clones += [pickle.loads(pickle.dumps(r, protocol)) for protocol in range(2, 6)]
    for clone in clones:
        assert type(clone) is TaskResult and clone == r and clone is not r
    assert r.to_dict() == {
        "task_id": "t", "wave_id": "dag", "status": "failed", "output": {"x": 1},
        "error": "boom", "duration_ms": 12.5, "retry_count": 2,
        "started_at": WHEN.isoformat(), "completed_at": (WHEN + timedelta(seconds=1)).isoformat(),
    }  # fmt: skip
    match r:
        case TaskResult("t", "dag", status):
            assert status == "failed"
        case _:
            pytest.fail("positional pattern did not match")


def test_setting_a_field_changes_that_object_only() -> None:
    a, b = TaskResult(*ARGS), TaskResult(*ARGS)
    a.status = "success"
    a.started_at = WHEN + timedelta(days=1)
    a.completed_at = None
    assert (b.status, b.started_at, b.completed_at) == ("failed", WHEN, ARGS[8])
    assert (a.started_at, a.completed_at) == (WHEN + timedelta(days=1), None)
    with pytest.raises(AttributeError):
        a.extra = 1  # type: ignore[attr-defined]
    del a.output
    with pytest.raises(AttributeError):
        a.output  # noqa: B018
