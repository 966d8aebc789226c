"""SQLiteStore limits: back-pressure on pending writes, and giving deleted space back."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from wave_executor import DAGExecutor, WaveConfig
from wave_executor.store import (
    AttemptRecord,
    MemoryStore,
    SQLiteStore,
    StoreWriteError,
    TaskRecord,
    schema,
)
from wave_executor.store.writer import Writer

T0 = 1_700_000_000.0


def ok(key: str, output: Any = None) -> TaskRecord:
    return TaskRecord(key, "success", "fp", output, None, T0, T0 + 1, 0)


def attempt(key: str) -> AttemptRecord:
    return AttemptRecord(key, 1, "success", None, T0, T0 + 1)


@contextlib.contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def pragma(path: Path, name: str) -> int:
    with raw(path) as conn:
        return int(conn.execute(f"PRAGMA {name}").fetchone()[0])


def finishes(coro: Coroutine[Any, Any, None], within: float = 60.0) -> None:
    """Run ``coro`` on a loop of its own thread: a deadlock fails the test instead of hanging."""
    errors: list[BaseException] = []

    def main() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), f"deadlocked: not finished within {within} s"
    if errors:
        raise errors[0]


class SlowWriter(Writer):
    """The real writer, slowed down per batch, watching the bound from its side too."""

    delay = 0.002

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.peak = 0
        self.batches = 0
        self.waits = 0
        super().__init__(*args, **kwargs)

    def _write(self, outcomes: list[tuple[Any, ...]], attempts: list[tuple[Any, ...]]) -> None:
        self.peak = max(self.peak, self.pending)
        self.batches += 1
        time.sleep(self.delay)  # a slow disk
        super()._write(outcomes, attempts)

    def wait_for_room(self, size: int) -> None:
        self.waits += 1
        super().wait_for_room(size)


class SlowStore(SQLiteStore):
    _writer_class = SlowWriter

    @property
    def writer(self) -> SlowWriter:
        writer = self._writer
        assert isinstance(writer, SlowWriter)
        return writer


# -- back-pressure ------------------------------------------------------------------


async def test_pending_records_never_exceed_the_bound_and_all_land(tmp_path: Path) -> None:
    store = SlowStore(tmp_path / "s.db", max_pending=25, batch_size=7, flush_interval=60)
    await store.begin_run("r", "e", total_tasks=400)
    peak = 0
    for i in range(400):  # far faster than 2 ms per 7 records
        store.record_attempt("r", attempt(f"t{i}"))
        peak = max(peak, store.pending)
        store.record_outcome("r", ok(f"t{i}", i))
        peak = max(peak, store.pending)
    assert peak <= 25 and store.writer.peak <= 25
    assert store.writer.waits > 0  # the writer really was the bottleneck
    successes = await store.load_successes("r")
    assert len(successes) == 400 and successes["t399"] == ("fp", 399)
    assert store.pending == 0
    assert len(await store.task_attempts("r", "t123")) == 1
    await store.close()


async def test_a_run_faster_than_the_disk_is_held_back_and_every_outcome_lands(
    tmp_path: Path,
) -> None:
    tasks = {f"t{i}": {"i": i} for i in range(300)}
    deps = {f"t{i}": [f"t{i - 1}"] if i % 10 else [] for i in range(300)}

    async def call(task_id: str, spec: Any) -> Any:
        return spec["i"]

    store = SlowStore(tmp_path / "s.db", max_pending=16, batch_size=4, flush_interval=60)
    config = WaveConfig(max_parallel_per_wave=10, max_retries=0, circuit_breaker_enabled=False)
    result = await DAGExecutor(config).execute(tasks, deps, call, store=store, run_id="r")
    assert result.total_successful == 300
    assert store.writer.peak <= 16 and store.writer.waits > 0
    recorded = await store.run_tasks("r", with_outputs=True)
    assert sorted(t.output for t in recorded) == list(range(300))
    run = await store.get_run("r")
    assert run is not None and run.succeeded == 300
    await store.close()


def test_a_bound_of_one_does_not_deadlock(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = SlowStore(tmp_path / "s.db", max_pending=1, batch_size=5, flush_interval=60)
        store.writer.delay = 0.0005
        tasks = {f"t{i}": i for i in range(100)}
        deps: dict[str, list[str]] = {f"t{i}": [] for i in range(100)}

        async def call(task_id: str, spec: Any) -> Any:
            return spec

        result = await DAGExecutor().execute(tasks, deps, call, store=store, run_id="r")
        assert result.total_successful == 100
        await store.begin_run("direct", "e", total_tasks=50)
        for i in range(50):
            store.record_attempt("direct", attempt(f"d{i}"))
            store.record_outcome("direct", ok(f"d{i}", i))
            assert store.pending <= 1
        await store.end_run("direct", "e", "completed")
        assert store.writer.peak <= 1
        assert len(await store.load_successes("r")) == 100
        assert len(await store.load_successes("direct")) == 50
        await store.close()

    finishes(scenario())


async def test_the_byte_bound_holds_and_a_bigger_output_still_goes_alone(tmp_path: Path) -> None:
    store = SlowStore(tmp_path / "s.db", max_pending_bytes=1_000, batch_size=50, flush_interval=60)
    writer = store.writer
    await store.begin_run("r", "e", total_tasks=61)
    for i in range(60):
        store.record_outcome("r", ok(f"t{i}", "x" * 298))  # 300 bytes of JSON each
        assert writer.bytes_in - writer.bytes_out <= 1_000
    assert writer.waits > 0
    store.record_outcome("r", ok("huge", "y" * 5_000))  # bigger than the bound: waits, then goes
    successes = await store.load_successes("r")
    assert len(successes) == 61 and successes["huge"][1] == "y" * 5_000
    await store.close()


def test_a_recorder_waiting_for_room_gets_the_error_of_a_broken_store(tmp_path: Path) -> None:
    class FailingWriter(SlowWriter):
        def _write(self, outcomes: list[tuple[Any, ...]], attempts: list[tuple[Any, ...]]) -> None:
            time.sleep(0.01)
            raise sqlite3.OperationalError("disk I/O error")

    class FailingStore(SQLiteStore):
        _writer_class = FailingWriter

    async def scenario() -> None:
        store = FailingStore(tmp_path / "s.db", max_pending=2, flush_interval=60)
        await store.begin_run("r", "e", total_tasks=3)
        store.record_outcome("r", ok("a"))
        store.record_outcome("r", ok("b"))
        with pytest.raises(StoreWriteError, match="could not commit"):
            store.record_outcome("r", ok("c"))  # waits for room; the commit fails instead
        await store.close()

    finishes(scenario())


@pytest.mark.parametrize("option", ["max_pending", "max_pending_bytes"])
def test_bounds_below_one_are_refused(tmp_path: Path, option: str) -> None:
    options: dict[str, Any] = {option: 0}
    with pytest.raises(ValueError, match=option):
        SQLiteStore(tmp_path / "s.db", **options)


# -- giving space back ----------------------------------------------------------------


async def fill(store: SQLiteStore, runs: list[str], tasks: int = 200) -> None:
    for run_id in runs:
        await store.begin_run(run_id, "e", total_tasks=tasks)
        for i in range(tasks):
            store.record_attempt(run_id, attempt(f"t{i}"))
            store.record_outcome(run_id, ok(f"t{i}", "z" * 2_000))
        await store.end_run(run_id, "e", "completed")


def old_file(path: Path) -> None:
    """A store file as versions before incremental auto-vacuum made it (schema v1)."""
    with raw(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(schema.MIGRATIONS[0])
        conn.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 1")
    assert pragma(path, "auto_vacuum") == 0


async def test_deleting_runs_gives_the_space_back(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db)
    assert pragma(db, "auto_vacuum") == 2  # incremental
    await fill(store, ["a", "b", "c", "d"])
    full_pages = pragma(db, "page_count")
    assert await store.delete_run("a")
    assert pragma(db, "freelist_count") == 0
    one_gone = pragma(db, "page_count")
    assert one_gone < full_pages * 0.85
    old = datetime.now(UTC) - timedelta(days=1)
    assert await store.delete_runs(finished_before=old) == 0  # nothing that old
    assert await store.delete_runs(finished_before=datetime.now(UTC) + timedelta(days=1)) == 3
    assert pragma(db, "freelist_count") == 0
    assert pragma(db, "page_count") < full_pages * 0.25
    size = db.stat().st_size
    assert size < full_pages * pragma(db, "page_size") * 0.5  # the file itself shrank
    await store.close()


async def test_vacuum_shrinks_and_converts_a_file_made_before(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    old_file(db)
    store = SQLiteStore(db)  # opens at the same schema version, unconverted
    assert pragma(db, "user_version") == len(schema.MIGRATIONS)
    assert pragma(db, "auto_vacuum") == 0
    await fill(store, ["a", "b", "c"])
    pages = pragma(db, "page_count")
    await store.delete_run("a")
    assert pragma(db, "freelist_count") > 0  # an old file cannot give pages back by itself
    assert pragma(db, "page_count") == pages
    given_back = await store.vacuum()
    assert given_back > 0
    assert pragma(db, "auto_vacuum") == 2 and pragma(db, "freelist_count") == 0
    assert pragma(db, "page_count") < pages * 0.8
    assert len(await store.load_successes("b")) == 200  # the data survived the rewrite
    shrunk = pragma(db, "page_count")
    await store.delete_run("b")  # converted: deletes now give space back by themselves
    assert pragma(db, "freelist_count") == 0 and pragma(db, "page_count") < shrunk * 0.7
    await store.close()


async def test_vacuum_during_a_run_keeps_its_records(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db, flush_interval=60)
    await fill(store, ["old"])
    await store.delete_run("old")
    await store.begin_run("r", "e", total_tasks=20)
    for i in range(10):
        store.record_outcome("r", ok(f"t{i}", i))  # buffered: committed before the VACUUM
    await store.vacuum()
    for i in range(10, 20):
        store.record_outcome("r", ok(f"t{i}", i))
    await store.end_run("r", "e", "completed")
    assert len(await store.load_successes("r")) == 20
    assert not (tmp_path / "s.db-wal").exists() or (tmp_path / "s.db-wal").stat().st_size < 2**20
    await store.close()


async def test_memory_store_vacuum_is_a_no_op() -> None:
    async with MemoryStore() as store:
        assert await store.vacuum() == 0
