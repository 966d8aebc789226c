"""The RunStore contract, checked against both stores (MemoryStore and SQLiteStore)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from wave_executor.store import (
    AttemptRecord,
    MemoryStore,
    OutputSerializationError,
    PickleSerializer,
    RunLockedError,
    RunNotActiveError,
    RunStore,
    SerializationError,
    SQLiteStore,
    StoreClosedError,
    TaskRecord,
)

T0 = 1_700_000_000.0


def outcome(key: str, status: str = "success", output: Any = None, **kw: Any) -> TaskRecord:
    fields: dict[str, Any] = {
        "fingerprint": "fp-" + key,
        "error": None if status == "success" else "boom",
        "started_at": T0,
        "ended_at": T0 + 1.5,
        "retries": 0,
    }
    fields.update(kw)
    return TaskRecord(key, status, output=output, **fields)


def attempt(key: str, number: int, status: str = "success") -> AttemptRecord:
    error = None if status == "success" else f"attempt {number} failed"
    return AttemptRecord(key, number, status, error, T0 + number, T0 + number + 0.5)


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunStore]:
    s = make(request.param, tmp_path)
    yield s
    await s.close()


def make(kind: str, tmp_path: Path, **options: Any) -> RunStore:
    if kind == "memory":
        return MemoryStore(**options)
    return SQLiteStore(tmp_path / "runs.db", **options)


KINDS = pytest.mark.parametrize("kind", ["memory", "sqlite"])


async def test_both_stores_satisfy_the_protocol(store: RunStore) -> None:
    assert isinstance(store, RunStore)


async def test_outcomes_and_outputs_round_trip(store: RunStore) -> None:
    await store.begin_run("r", "e1", total_tasks=3, meta={"graph": "demo"})
    payload = {"text": "héllo", "n": [1, 2.5, None, True], "nested": {"k": "v"}}
    store.record_outcome("r", outcome("a", output=payload))
    store.record_outcome("r", outcome("b", output="plain"))
    store.record_outcome("r", outcome("c", "failed", output=None))
    await store.flush()
    successes = await store.load_successes("r")
    assert successes == {"a": ("fp-a", payload), "b": ("fp-b", "plain")}
    assert await store.load_successes("no such run") == {}


async def test_loaded_outputs_are_copies(store: RunStore) -> None:
    await store.begin_run("r", "e1", total_tasks=1)
    payload = {"items": [1, 2]}
    store.record_outcome("r", outcome("a", output=payload))
    payload["items"].append(3)  # the caller changes its object after recording
    first = (await store.load_successes("r"))["a"][1]
    assert first == {"items": [1, 2]}
    first["items"].append(99)  # and whoever loaded it changes theirs
    assert (await store.load_successes("r"))["a"][1] == {"items": [1, 2]}


async def test_the_latest_outcome_of_a_task_wins(store: RunStore) -> None:
    await store.begin_run("r", "e1", total_tasks=2)
    store.record_outcome("r", outcome("a", "failed"))
    store.record_outcome("r", outcome("b", "success", output=1))
    await store.end_run("r", "e1", "failed")
    assert await store.load_successes("r") == {"b": ("fp-b", 1)}

    await store.begin_run("r", "e2", total_tasks=2)
    store.record_outcome("r", outcome("a", "success", output=2, retries=1))
    await store.end_run("r", "e2", "completed")
    assert await store.load_successes("r") == {"a": ("fp-a", 2), "b": ("fp-b", 1)}
    tasks = {t.task_key: t for t in await store.run_tasks("r")}
    assert len(tasks) == 2
    assert tasks["a"].status == "success" and tasks["a"].error is None
    assert tasks["a"].retries == 1 and tasks["a"].execution_id == "e2"
    assert tasks["b"].execution_id == "e1"

    # and a later failure replaces an earlier success (its spec had changed)
    await store.begin_run("r", "e3", total_tasks=2)
    store.record_outcome("r", outcome("b", "failed", fingerprint="fp-new"))
    await store.end_run("r", "e3", "failed")
    assert await store.load_successes("r") == {"a": ("fp-a", 2)}
    assert len(await store.run_tasks("r")) == 2


async def test_a_fingerprint_may_be_none(store: RunStore) -> None:
    await store.begin_run("r", "e1", total_tasks=1)
    store.record_outcome("r", outcome("a", output=1, fingerprint=None))
    assert await store.load_successes("r") == {"a": (None, 1)}


async def test_an_output_that_cannot_be_serialized_is_a_clear_error(store: RunStore) -> None:
    await store.begin_run("run-9", "e1", total_tasks=2)

    class Opaque:
        pass

    with pytest.raises(OutputSerializationError) as info:
        store.record_outcome("run-9", outcome("t-bad", output={"x": Opaque()}))
    message = str(info.value)
    assert "'t-bad'" in message and "'run-9'" in message and "json" in message
    assert "Opaque" in message  # the type at fault, from the encoder
    assert info.value.task_key == "t-bad" and info.value.type_name == "dict"
    assert isinstance(info.value, TypeError)  # it refines TypeError
    store.record_outcome("run-9", outcome("t-good", output=1))  # the store is still fine
    assert await store.load_successes("run-9") == {"t-good": ("fp-t-good", 1)}


@KINDS
async def test_pickle_keeps_what_json_cannot(kind: str, tmp_path: Path) -> None:
    store = make(kind, tmp_path, serializer=PickleSerializer())
    await store.begin_run("r", "e1", total_tasks=1)
    value = {1: (b"raw", {2, 3}), "when": datetime(2024, 1, 2, tzinfo=UTC)}
    store.record_outcome("r", outcome("a", output=value))
    assert await store.load_successes("r") == {"a": ("fp-a", value)}
    with pytest.raises(OutputSerializationError, match="pickle"):
        store.record_outcome("r", outcome("b", output=lambda: None))
    await store.close()


async def test_memory_store_can_copy_without_a_serializer() -> None:
    store = MemoryStore(serializer=None)
    await store.begin_run("r", "e1", total_tasks=1)
    value = {1: {2, 3}}
    store.record_outcome("r", outcome("a", output=value))
    value[1].add(4)
    assert (await store.load_successes("r"))["a"][1] == {1: {2, 3}}
    await store.close()


async def test_task_keys_must_be_strings(store: RunStore) -> None:
    await store.begin_run("r", "e1", total_tasks=1)
    with pytest.raises(TypeError, match="task key must be a str, not int"):
        store.record_outcome("r", TaskRecord(7, "success", None, 1, None, T0, T0))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="task key must be a str"):
        store.record_attempt("r", attempt(("a", 1), 1))  # type: ignore[arg-type]


async def test_recording_needs_a_begun_run(store: RunStore) -> None:
    with pytest.raises(RunNotActiveError, match="begin_run"):
        store.record_outcome("nope", outcome("a"))
    await store.begin_run("r", "e1", total_tasks=1)
    await store.end_run("r", "e1", "completed")
    with pytest.raises(RunNotActiveError):
        store.record_attempt("r", attempt("a", 1))


async def test_a_second_execution_of_a_held_run_is_refused(store: RunStore) -> None:
    await store.begin_run("r", "e1", total_tasks=1)
    await store.begin_run("r", "e1", total_tasks=1)  # the holder may begin again
    with pytest.raises(RunLockedError) as info:
        await store.begin_run("r", "e2", total_tasks=1)
    assert info.value.run_id == "r"
    assert info.value.holder is not None and info.value.holder.execution_id == "e1"
    assert "'r'" in str(info.value) and "e1" in str(info.value)
    with pytest.raises(RunLockedError, match="cannot delete"):
        await store.delete_run("r")
    await store.end_run("r", "e1", "completed")
    await store.begin_run("r", "e2", total_tasks=1)  # free once ended


async def test_runs_are_listed_with_counts_and_statuses(store: RunStore) -> None:
    await store.begin_run("old", "e1", total_tasks=3, meta={"who": "cron"})
    store.record_outcome("old", outcome("a"))
    store.record_outcome("old", outcome("b", "failed"))
    store.record_outcome("old", outcome("c", "timeout"))
    await store.end_run("old", "e1", "failed")
    await asyncio.sleep(0.002)  # distinct creation times, for the order
    await store.begin_run("new", "e2", total_tasks=2)
    store.record_outcome("new", outcome("a"))
    store.record_outcome("new", outcome("b", "skipped"))

    runs = await store.list_runs()
    assert [r.run_id for r in runs] == ["new", "old"]  # newest first
    new, old = runs
    assert (new.status, new.finished_at, new.total_tasks) == ("running", None, 2)
    assert (new.succeeded, new.failed, new.skipped, new.recorded) == (1, 0, 1, 2)
    assert (old.status, old.succeeded, old.failed, old.executions) == ("failed", 1, 2, 1)
    assert old.meta == {"who": "cron"}
    assert old.finished_at is not None and old.created_at <= old.updated_at <= old.finished_at
    assert [r.run_id for r in await store.list_runs(limit=1)] == ["new"]
    assert await store.get_run("old") == old
    assert await store.get_run("missing") is None

    await store.end_run("new", "e2", "completed")
    await store.begin_run("old", "e3", total_tasks=3)  # a resume counts as an execution
    info = await store.get_run("old")
    assert info is not None and (info.status, info.executions, info.finished_at) == (
        "running",
        2,
        None,
    )
    assert info.meta == {"who": "cron"}  # kept when a resume gives none


async def test_run_tasks_report_status_attempts_timings_and_errors(store: RunStore) -> None:
    await store.begin_run("r", "e1", total_tasks=2)
    store.record_attempt("r", attempt("a", 1, "failed"))
    store.record_attempt("r", attempt("a", 2, "timeout"))
    store.record_outcome("r", outcome("a", "timeout", retries=1))
    store.record_attempt("r", attempt("b", 1))
    store.record_outcome("r", outcome("b", output={"v": 1}))

    tasks = await store.run_tasks("r")
    assert [t.task_key for t in tasks] == ["a", "b"]
    a, b = tasks
    assert (a.status, a.error, a.retries, a.attempts) == ("timeout", "boom", 1, 2)
    assert (a.started_at, a.ended_at, a.duration) == (T0, T0 + 1.5, 1.5)
    assert a.output is None and b.output is None  # outputs only on request
    assert b.attempts == 1
    with_outputs = await store.run_tasks("r", with_outputs=True)
    assert with_outputs[1].output == {"v": 1}
    assert [t.task_key for t in await store.run_tasks("r", status="timeout")] == ["a"]
    assert await store.run_tasks("missing") == []

    attempts = await store.task_attempts("r", "a")
    assert [(x.attempt, x.status, x.error) for x in attempts] == [
        (1, "failed", "attempt 1 failed"),
        (2, "timeout", "attempt 2 failed"),
    ]
    assert attempts[0].started_at == T0 + 1 and attempts[0].execution_id == "e1"
    assert await store.task_attempts("r", "zzz") == []


async def test_attempts_accumulate_over_executions(store: RunStore) -> None:
    await store.begin_run("r", "e1", total_tasks=1)
    store.record_attempt("r", attempt("a", 1, "failed"))
    store.record_outcome("r", outcome("a", "failed"))
    await store.end_run("r", "e1", "failed")
    await store.begin_run("r", "e2", total_tasks=1)
    store.record_attempt("r", attempt("a", 1))
    store.record_outcome("r", outcome("a"))
    await store.end_run("r", "e2", "completed")
    attempts = await store.task_attempts("r", "a")
    assert [(x.execution_id, x.attempt, x.status) for x in attempts] == [
        ("e1", 1, "failed"),
        ("e2", 1, "success"),
    ]
    (task,) = await store.run_tasks("r")
    assert task.attempts == 2


async def test_statuses_may_be_str_enums(store: RunStore) -> None:
    from wave_executor._core.status import TaskStatus

    await store.begin_run("r", "e1", total_tasks=1)
    store.record_outcome("r", outcome("a", TaskStatus.SUCCESS, output=1))
    store.record_attempt("r", attempt("a", 1, TaskStatus.SUCCESS))
    (task,) = await store.run_tasks("r")
    assert type(task.status) is str and task.status == "success"
    assert await store.load_successes("r") == {"a": ("fp-a", 1)}


async def test_delete_a_run(store: RunStore) -> None:
    await store.begin_run("r", "e1", total_tasks=1)
    store.record_attempt("r", attempt("a", 1))
    store.record_outcome("r", outcome("a", output=1))
    await store.end_run("r", "e1", "completed")
    assert await store.delete_run("r") is True
    assert await store.delete_run("r") is False
    assert await store.get_run("r") is None
    assert await store.run_tasks("r") == [] and await store.task_attempts("r", "a") == []
    assert await store.load_successes("r") == {}
    await store.begin_run("r", "e2", total_tasks=1)  # a new run of the same id starts empty
    assert await store.load_successes("r") == {}


async def test_delete_runs_finished_before_a_time(store: RunStore) -> None:
    for run_id in ("a", "b"):
        await store.begin_run(run_id, "e-" + run_id, total_tasks=0)
        await store.end_run(run_id, "e-" + run_id, "completed")
    await store.begin_run("held", "e-held", total_tasks=0)
    await store.begin_run("crashed", "e-crashed", total_tasks=0)
    future = datetime.now(UTC) + timedelta(hours=1)
    past = datetime.now(UTC) - timedelta(hours=1)
    assert await store.delete_runs(finished_before=past) == 0
    assert await store.delete_runs(finished_before=future) == 2
    assert {r.run_id for r in await store.list_runs()} == {"held", "crashed"}
    # runs that never finished go only when asked, and never while held
    assert await store.delete_runs(finished_before=future, include_unfinished=True) == 0
    await store.end_run("crashed", "e-crashed", "failed")
    assert await store.delete_runs(finished_before=future) == 1
    assert [r.run_id for r in await store.list_runs()] == ["held"]


async def test_reconciler_checkpoints_round_trip_as_copies(store: RunStore) -> None:
    spec: dict[str, Any] = {"spec": {"cmd": "serve"}, "restart_policy": "always"}
    state = {"status": "running", "restart_count": 2}
    await store.save_reconciler_state("rec", "web", spec, state, {"db", "cache"})
    await store.save_reconciler_state("rec", "db", {"spec": {}}, {"status": "success"}, [])
    await store.save_reconciler_state("other", "web", {"spec": 1}, None, ())
    spec["spec"]["cmd"] = "changed after saving"

    specs, states, deps = await store.load_reconciler_state("rec")
    assert specs == {
        "web": {"spec": {"cmd": "serve"}, "restart_policy": "always"},
        "db": {"spec": {}},
    }
    assert states["web"] == {"status": "running", "restart_count": 2}
    assert deps == {"web": {"cache", "db"}, "db": set()}
    specs["web"]["spec"]["cmd"] = "changed after loading"
    again, _, _ = await store.load_reconciler_state("rec")
    assert again["web"]["spec"]["cmd"] == "serve"

    # saving again replaces the task's checkpoint
    await store.save_reconciler_state("rec", "db", {"spec": 2}, {"status": "failed"}, ["web"])
    specs, states, deps = await store.load_reconciler_state("rec")
    assert specs["db"] == {"spec": 2} and states["db"] == {"status": "failed"}
    assert deps["db"] == {"web"}
    assert await store.load_reconciler_state("nobody") == ({}, {}, {})


async def test_removed_reconciler_tasks_stay_removed(store: RunStore) -> None:
    await store.save_reconciler_state("rec", "a", {"spec": 1}, {"status": "success"}, [])
    await store.save_reconciler_state("rec", "b", {"spec": 2}, {"status": "success"}, [])
    await store.save_reconciler_state("rec", "c", {"spec": 3}, {"status": "success"}, [])
    await store.delete_reconciler_task("rec", "a")
    await store.save_reconciler_state("rec", "b", None, {"status": "stopped"}, [])  # 0.3.0 way
    await store.delete_reconciler_state("rec", "missing")  # type: ignore[attr-defined]
    specs, states, deps = await store.load_reconciler_state("rec")
    assert set(specs) == set(states) == set(deps) == {"c"}


async def test_a_checkpoint_the_serializer_cannot_keep_is_a_clear_error(store: RunStore) -> None:
    with pytest.raises(SerializationError, match=r"task 'web' of reconciler 'rec'"):
        await store.save_reconciler_state("rec", "web", {"spec": object()}, None, [])
    with pytest.raises(TypeError, match="dependency id must be a str"):
        await store.save_reconciler_state("rec", "web", {"spec": 1}, None, [1])
    assert await store.load_reconciler_state("rec") == ({}, {}, {})


async def test_run_meta_must_be_json(store: RunStore) -> None:
    with pytest.raises(SerializationError, match="meta of run 'r'"):
        await store.begin_run("r", "e1", total_tasks=0, meta={"when": datetime.now(UTC)})


async def test_close_interrupts_runs_never_ended_and_refuses_further_use(
    kind_store: tuple[str, RunStore],
) -> None:
    _, store = kind_store
    await store.begin_run("r", "e1", total_tasks=1)
    store.record_outcome("r", outcome("a", output=1))
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreClosedError):
        store.record_outcome("r", outcome("b"))
    with pytest.raises(StoreClosedError):
        await store.list_runs()
    with pytest.raises(StoreClosedError):
        await store.begin_run("r2", "e2", total_tasks=0)


@pytest.fixture(params=["memory", "sqlite"])
async def kind_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, RunStore]]:
    s = make(request.param, tmp_path)
    yield request.param, s
    await s.close()


async def test_stores_are_async_context_managers(tmp_path: Path) -> None:
    async with MemoryStore() as memory:
        await memory.begin_run("r", "e", total_tasks=0)
    async with SQLiteStore(tmp_path / "x.db") as sqlite:
        await sqlite.begin_run("r", "e", total_tasks=0)
    async with SQLiteStore(tmp_path / "x.db") as again:
        info = await again.get_run("r")
        assert info is not None and info.status == "interrupted"  # closed without end_run
