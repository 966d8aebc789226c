"""SQLiteStore: commits, the writer thread, schema and migrations, bad files, leases."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from wave_executor.store import (
    AttemptRecord,
    ForeignDatabaseError,
    PickleSerializer,
    RunLockedError,
    SchemaVersionError,
    SerializerMismatchError,
    SQLiteStore,
    StoreCorruptError,
    StoreWriteError,
    TaskRecord,
    schema,
)
from wave_executor.store.leases import HOSTNAME

T0 = 1_700_000_000.0


def ok(key: str, output: Any = None, status: str = "success") -> TaskRecord:
    return TaskRecord(key, status, "fp", output, None, T0, T0 + 1, 0)


@contextlib.contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection, as another process or a person would use."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def count(path: Path, sql: str, *params: Any) -> int:
    with raw(path) as conn:
        return int(conn.execute(sql, params).fetchone()[0])


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("wave-executor store writer")]


# -- commits ----------------------------------------------------------------------


async def test_flush_returns_once_everything_recorded_is_committed(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db, flush_interval=60, batch_size=1_000_000)  # never on its own
    await store.begin_run("r", "e", total_tasks=2)
    # Hold the writer thread inside a command of its own while recording: left
    # free, it may still be in the commit loop that answered begin_run and take
    # the rows at once.
    inside, release = threading.Event(), threading.Event()

    def hold(conn: object) -> None:
        inside.set()
        release.wait(30)

    held = store._writer.submit(hold)
    assert await asyncio.to_thread(inside.wait, 30)
    store.record_outcome("r", ok("a", 1))
    store.record_attempt("r", AttemptRecord("a", 1, "success", None, T0, T0 + 1))
    assert count(db, "SELECT count(*) FROM outcomes") == 0  # buffered, not yet written
    release.set()
    await asyncio.wrap_future(held)
    await store.flush()
    assert count(db, "SELECT count(*) FROM v_tasks WHERE run_id = 'r'") == 1
    assert count(db, "SELECT count(*) FROM v_attempts WHERE run_id = 'r'") == 1
    await store.close()


async def test_records_are_committed_every_flush_interval(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db, flush_interval=0.01)
    await store.begin_run("r", "e", total_tasks=1)
    store.record_outcome("r", ok("a", 1))
    await eventually(lambda: count(db, "SELECT count(*) FROM outcomes") == 1)
    await store.close()


async def test_a_full_batch_is_committed_without_waiting_for_the_interval(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db, flush_interval=60, batch_size=5)
    await store.begin_run("r", "e", total_tasks=5)
    for i in range(5):
        store.record_outcome("r", ok(f"t{i}", i))
    await eventually(lambda: count(db, "SELECT count(*) FROM outcomes") == 5)
    await store.close()


async def test_many_records_in_many_batches(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db, batch_size=333)
    await store.begin_run("r", "e", total_tasks=5_000)
    for i in range(5_000):  # odd batch and statement sizes: every path of the insert
        store.record_attempt("r", AttemptRecord(f"t{i}", 1, "success", None, T0, T0))
        store.record_outcome("r", ok(f"t{i}", {"i": i}))
    successes = await store.load_successes("r")
    assert len(successes) == 5_000 and successes["t4321"] == ("fp", {"i": 4321})
    tasks = await store.run_tasks("r")
    assert [t.task_key for t in tasks[:3]] == ["t0", "t1", "t2"]  # in recording order
    assert all(t.attempts == 1 for t in tasks)
    await store.close()


async def test_recording_never_waits_for_the_database(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db, busy_timeout=5.0, flush_interval=0.005)
    await store.begin_run("r", "e", total_tasks=100)
    with raw(db) as other:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        started = time.perf_counter()
        for i in range(100):
            store.record_outcome("r", ok(f"t{i}", i))
        assert time.perf_counter() - started < 0.5  # no I/O on this thread
        await asyncio.sleep(0.02)  # the writer is now waiting for the lock
        other.execute("COMMIT")
    await store.flush()
    assert len(await store.load_successes("r")) == 100
    await store.close()


async def test_a_row_sqlite_refuses_is_dropped_not_the_batch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    await store.begin_run("r", "e", total_tasks=3)
    store.record_outcome("r", ok("a", 1))
    bad = TaskRecord("b", "failed", "fp", None, object(), T0, T0)  # type: ignore[arg-type]
    store.record_outcome("r", bad)
    store.record_outcome("r", ok("c", 3))
    with caplog.at_level(logging.ERROR, logger="wave_executor.store"):
        await store.flush()
    assert set(await store.load_successes("r")) == {"a", "c"}
    assert "dropped the record of task 'b'" in caplog.text
    await store.close()


async def test_a_failed_commit_breaks_the_store_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db)
    await store.begin_run("r", "e", total_tasks=1)
    with raw(db) as other:
        other.execute("PRAGMA foreign_keys = OFF")
        other.execute("DROP TABLE outcomes")  # the database changes under us
    store.record_outcome("r", ok("a", 1))
    with (
        caplog.at_level(logging.ERROR, logger="wave_executor.store"),
        pytest.raises(StoreWriteError, match="could not commit 1 outcomes"),
    ):
        await store.flush()
    with pytest.raises(StoreWriteError):
        store.record_outcome("r", ok("b", 1))
    with pytest.raises(StoreWriteError):
        await store.flush()
    await store.close()
    assert writer_threads() == []


# -- lifecycle ----------------------------------------------------------------------


async def test_close_stops_the_writer_thread(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    store = SQLiteStore(tmp_path / "s.db")
    assert len(writer_threads()) == 1
    await store.begin_run("r", "e", total_tasks=1)
    store.record_outcome("r", ok("a", 1))
    await store.close()
    assert writer_threads() == []
    assert not (set(threading.enumerate()) - before - _executor_threads())
    reopened = SQLiteStore(tmp_path / "s.db")
    assert await reopened.load_successes("r") == {"a": ("fp", 1)}  # close committed it
    await reopened.close()


def _executor_threads() -> set[threading.Thread]:
    """asyncio.to_thread's pool belongs to the loop, not to the store."""
    return {t for t in threading.enumerate() if t.name.startswith("asyncio_")}


async def test_a_store_closed_without_end_run_leaves_the_run_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db)
    await store.begin_run("r", "e1", total_tasks=1)
    await store.close()
    store = SQLiteStore(db)
    info = await store.get_run("r")
    assert info is not None and info.status == "interrupted"
    await store.begin_run("r", "e2", total_tasks=1)  # not locked: the lease was released
    await store.close()
    with raw(db) as conn:
        rows = conn.execute("SELECT execution_id, status FROM executions ORDER BY id").fetchall()
    assert rows == [("e1", "interrupted"), ("e2", "interrupted")]


async def test_open_does_not_block_the_loop_and_memory_paths_are_refused(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "s.db", batch_size=10)
    assert repr(store).startswith("SQLiteStore(") and "JsonSerializer" in repr(store)
    await store.close()
    with pytest.raises(ValueError, match="MemoryStore"):
        SQLiteStore(":memory:")
    with pytest.raises(ValueError, match="batch_size"):
        SQLiteStore(tmp_path / "t.db", batch_size=0)


async def test_resumed_runs_compact_replaced_outcomes(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db)
    await store.begin_run("r", "e1", total_tasks=2)
    store.record_outcome("r", ok("a", status="failed"))
    store.record_outcome("r", ok("b", 2))
    await store.end_run("r", "e1", "failed")
    await store.begin_run("r", "e2", total_tasks=2)
    store.record_outcome("r", ok("a", 1))
    await store.flush()
    assert count(db, "SELECT count(*) FROM outcomes") == 3  # the log, until the end
    assert len(await store.run_tasks("r")) == 2  # but reads see the latest only
    await store.end_run("r", "e2", "completed")
    assert count(db, "SELECT count(*) FROM outcomes") == 2
    assert await store.load_successes("r") == {"a": ("fp", 1), "b": ("fp", 2)}
    await store.close()


async def test_two_stores_in_one_process_share_a_file(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    one, two = SQLiteStore(db, batch_size=7), SQLiteStore(db, batch_size=5)
    await one.begin_run("r1", "e1", total_tasks=200)
    await two.begin_run("r2", "e2", total_tasks=200)
    for i in range(200):
        one.record_outcome("r1", ok(f"t{i}", i))
        two.record_outcome("r2", ok(f"t{i}", -i))
    await asyncio.gather(one.flush(), two.flush())
    with pytest.raises(RunLockedError):
        await two.begin_run("r1", "e3", total_tasks=1)
    assert len(await two.load_successes("r1")) == 200
    assert (await one.load_successes("r2"))["t7"] == ("fp", -7)
    await one.close()
    await two.close()


# -- serializers ----------------------------------------------------------------------


async def test_the_serializer_is_recorded_and_a_mismatch_refused(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db, serializer=PickleSerializer())
    await store.begin_run("r", "e", total_tasks=1)
    store.record_outcome("r", ok("a", {1: {2}}))
    await store.close()
    with pytest.raises(SerializerMismatchError, match="'pickle' serializer, not 'json'"):
        SQLiteStore(db)
    assert writer_threads() == []
    store = SQLiteStore(db, serializer=PickleSerializer())
    assert await store.load_successes("r") == {"a": ("fp", {1: {2}})}
    await store.close()


# -- schema, migrations, bad files ----------------------------------------------------


async def test_a_new_database_has_the_current_schema(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    await SQLiteStore(db).close()
    with raw(db) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == schema.APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        serializer = conn.execute("SELECT value FROM store_meta WHERE key = 'serializer'")
        assert serializer.fetchone()[0] == "json"


async def test_an_older_schema_is_migrated_keeping_its_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db)  # version 1, with a run in it
    await store.begin_run("r", "e", total_tasks=1)
    store.record_outcome("r", ok("a", {"kept": True}))
    await store.end_run("r", "e", "completed")
    await store.close()

    v2 = "ALTER TABLE runs ADD COLUMN note TEXT; CREATE INDEX runs_by_status ON runs (status)"
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, v2))
    store = SQLiteStore(db)
    assert await store.load_successes("r") == {"a": ("fp", {"kept": True})}
    await store.close()
    with raw(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert "note" in [c[1] for c in conn.execute("PRAGMA table_info(runs)")]


async def test_a_version_0_database_of_ours_is_brought_up_to_date(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with raw(db) as conn:  # marked as ours, but nothing created yet
        conn.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
    store = SQLiteStore(db)
    await store.begin_run("r", "e", total_tasks=0)
    await store.close()
    assert count(db, "PRAGMA user_version") == len(schema.MIGRATIONS)


async def test_a_failing_migration_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "s.db"
    await SQLiteStore(db).close()
    broken = "CREATE TABLE half_done (x); CREATE TABLE runs (x)"  # the second step fails
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, broken))
    with pytest.raises(Exception, match="already exists"):
        SQLiteStore(db)
    with raw(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "half_done" not in tables


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    await SQLiteStore(db).close()
    with raw(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(SchemaVersionError, match=r"schema version 99.*upgrade wave-executor"):
        SQLiteStore(db)


def test_a_foreign_sqlite_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with raw(db) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
        conn.execute("INSERT INTO users VALUES ('ada')")
    before = digest(db)
    with pytest.raises(ForeignDatabaseError, match=r"another application.*not modified"):
        SQLiteStore(db)
    assert digest(db) == before
    assert not Path(str(db) + "-wal").exists()

    other = tmp_path / "other.db"
    with raw(other) as conn:
        conn.execute("PRAGMA application_id = 1234")
    with pytest.raises(ForeignDatabaseError, match="application_id 0x4d2"):
        SQLiteStore(other)


def test_a_file_that_is_not_sqlite_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    before = digest(path)
    with pytest.raises(StoreCorruptError, match="not a SQLite database"):
        SQLiteStore(path)
    assert digest(path) == before


async def test_a_damaged_database_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db)
    await store.begin_run("r", "e", total_tasks=1)
    store.record_outcome("r", ok("a", "x" * 10_000))
    await store.end_run("r", "e", "completed")
    await store.close()  # the last connection checkpoints the WAL into the file
    data = bytearray(db.read_bytes())
    data[100:4096] = bytes(range(256)) * 15 + bytes(range(256))[: 4096 - 100 - 256 * 15]
    db.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptError, match="corrupt"):
        SQLiteStore(db)
    assert writer_threads() == []


async def test_a_truncated_database_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db)
    await store.begin_run("r", "e", total_tasks=300)
    for i in range(300):
        store.record_outcome("r", ok(f"t{i}", "y" * 500))
    await store.end_run("r", "e", "completed")
    await store.close()
    db.write_bytes(db.read_bytes()[: 4096 * 6])
    with pytest.raises(StoreCorruptError):
        await open_and_load(db)


async def open_and_load(db: Path) -> None:
    store = SQLiteStore(db)
    try:
        await store.load_successes("r")
    finally:
        await store.close()


# -- leases -------------------------------------------------------------------------


def _foreign_lease(db: Path, run_id: str, *, host: str, pid: int, expires_at: float) -> None:
    with raw(db) as conn:
        conn.execute(
            "UPDATE leases SET hostname = ?, pid = ?, expires_at = ?, execution_id = 'theirs' "
            "WHERE run = (SELECT id FROM runs WHERE run_id = ?)",
            (host, pid, expires_at, run_id),
        )


async def test_a_lease_on_another_host_holds_until_it_expires(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db)
    await store.begin_run("r", "mine", total_tasks=0)
    _foreign_lease(db, "r", host="elsewhere", pid=1, expires_at=time.time() + 60)
    with pytest.raises(RunLockedError, match=r"pid 1 on elsewhere; lease expires in (5\d|60)\."):
        await store.begin_run("r", "another", total_tasks=0)
    _foreign_lease(db, "r", host="elsewhere", pid=1, expires_at=time.time() - 1)
    await store.begin_run("r", "another", total_tasks=0)  # expired: taken over
    await store.close()


def dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


async def test_a_lease_whose_process_died_is_free_at_once(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db)
    await store.begin_run("r", "mine", total_tasks=0)
    _foreign_lease(db, "r", host=HOSTNAME, pid=dead_pid(), expires_at=time.time() + 60)
    await store.begin_run("r", "next", total_tasks=0)
    await store.close()


async def test_leases_are_renewed_while_the_process_lives(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db, lease_seconds=0.06, flush_interval=0.01)
    await store.begin_run("r", "e", total_tasks=0)
    first = count(db, "SELECT CAST(expires_at * 1000 AS INTEGER) FROM leases")
    await eventually(
        lambda: count(db, "SELECT CAST(expires_at * 1000 AS INTEGER) FROM leases") > first
    )
    await store.close()


async def test_a_run_whose_lease_was_taken_over_is_not_ended_by_the_loser(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db)
    await store.begin_run("r", "e1", total_tasks=0)
    _foreign_lease(db, "r", host="elsewhere", pid=1, expires_at=time.time() + 60)
    with caplog.at_level(logging.WARNING, logger="wave_executor.store"):
        await store.end_run("r", "e1", "completed")
    assert "without holding the run" in caplog.text
    info = await store.get_run("r")
    assert info is not None and info.status == "running"  # left to the new holder
    await store.close()


# -- the docs -----------------------------------------------------------------------

DOC = Path(__file__).resolve().parent.parent / "docs" / "store.md"


async def test_the_sql_examples_of_the_docs_run(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db)
    await store.begin_run("nightly-2024-06-01", "e", total_tasks=2)
    store.record_attempt("nightly-2024-06-01", AttemptRecord("a", 1, "failed", "x", T0, T0 + 1))
    store.record_outcome("nightly-2024-06-01", ok("a", {"answer": 42}))
    await store.end_run("nightly-2024-06-01", "e", "completed")
    await store.close()
    text = DOC.read_text()
    blocks = text.split("```sql\n")[1:]
    statements = [s for b in blocks for s in b.split("```")[0].split(";") if s.strip()]
    assert len(statements) == 3
    with raw(db) as conn:
        results = [conn.execute(s).fetchall() for s in statements]
    assert results[0] == [("a", "success", 1.0, None)]
    assert results[1] == [("a", '{"answer":42}')]
    assert results[2] == [("nightly-2024-06-01", "a", "e", 1, "failed", "x", T0, T0 + 1, 1.0)]


def test_the_documented_errors_exist() -> None:
    import wave_executor.store as public

    tree = DOC.read_text().split("## Errors")[1]
    names = [w for w in tree.replace("─", " ").split() if w.endswith("Error")]
    assert len(names) >= 11
    for name in names:
        if name != "WaveExecutorError":
            assert issubclass(getattr(public, name), public.StoreError), name
