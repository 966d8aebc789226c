"""The SQLite schema, its migrations, and opening a database file safely.

Outcomes and attempts are append-only logs (a row id, an index on the
run): a batch of inserts then only ever touches the right edge of each
B-tree, whatever the task keys are, which is what lets one thread commit
a 100k-task run as fast as it runs. A task's outcome is its latest row;
older rows of a task (a failure a rerun replaced) are compacted away when
an execution that reran tasks ends.

The schema version lives in ``PRAGMA user_version``; ``MIGRATIONS[i]``
takes a database from version ``i`` to ``i + 1``, so a new file runs them
all and an older one runs the ones it lacks, each in one transaction.
``PRAGMA application_id`` marks the file as ours: a SQLite file with
another id, or with tables but no id, belongs to someone else and is
refused without being modified.

A new file gets ``auto_vacuum = INCREMENTAL`` before anything is created
in it (the only moment it can be set without rewriting the file), so that
deleting runs can give space back. It is a property of the file, not of
the schema: files created before keep ``NONE`` at the same schema version,
and ``SQLiteStore.vacuum()`` converts them (a migration cannot: ``VACUUM``
does not run inside a transaction, and rewriting a big file on open would
be a nasty surprise).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from wave_executor.store.errors import (
    ForeignDatabaseError,
    SchemaVersionError,
    SerializerMismatchError,
    StoreCorruptError,
    StoreError,
)

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "connect",
    "is_corruption",
    "open_database",
    "transaction",
]

#: "WAVE" in ASCII: the ``application_id`` of every wave-executor store.
APPLICATION_ID = 0x57415645

_SQLITE_HEADER = b"SQLite format 3\x00"
_WAL_SIZE_LIMIT = 64 * 1024 * 1024

_V1 = """
CREATE TABLE store_meta (
    key          TEXT PRIMARY KEY,
    value        TEXT NOT NULL
);
CREATE TABLE runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id       TEXT NOT NULL UNIQUE,
    status       TEXT NOT NULL,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    finished_at  REAL,
    total_tasks  INTEGER NOT NULL DEFAULT 0,
    meta         TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX runs_by_created ON runs (created_at);
CREATE TABLE executions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    run          INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    execution_id TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    hostname     TEXT NOT NULL,
    started_at   REAL NOT NULL,
    ended_at     REAL,
    status       TEXT NOT NULL,
    UNIQUE (run, execution_id)
);
CREATE TABLE leases (
    run          INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    execution_id TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    hostname     TEXT NOT NULL,
    acquired_at  REAL NOT NULL,
    expires_at   REAL NOT NULL
);
CREATE TABLE outcomes (
    id           INTEGER PRIMARY KEY,
    run          INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task_key     TEXT NOT NULL,
    status       TEXT NOT NULL,
    fingerprint  TEXT,
    output       BLOB,
    error        TEXT,
    started_at   REAL,
    ended_at     REAL,
    retries      INTEGER NOT NULL DEFAULT 0,
    execution    INTEGER
);
CREATE INDEX outcomes_by_run ON outcomes (run);
CREATE TABLE attempts (
    id           INTEGER PRIMARY KEY,
    run          INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task_key     TEXT NOT NULL,
    execution    INTEGER NOT NULL,
    attempt      INTEGER NOT NULL,
    status       TEXT NOT NULL,
    error        TEXT,
    started_at   REAL NOT NULL,
    ended_at     REAL NOT NULL
);
CREATE INDEX attempts_by_run ON attempts (run);
CREATE TABLE reconciler_tasks (
    reconciler_id TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    spec          BLOB NOT NULL,
    state         BLOB NOT NULL,
    deps          TEXT NOT NULL,
    updated_at    REAL NOT NULL,
    PRIMARY KEY (reconciler_id, task_id)
);
CREATE VIEW v_tasks AS
    SELECT r.run_id, o.task_key, o.status, o.fingerprint, o.output, o.error, o.started_at,
           o.ended_at, o.ended_at - o.started_at AS duration, o.retries, e.execution_id
    FROM outcomes o JOIN runs r ON r.id = o.run LEFT JOIN executions e ON e.id = o.execution
    WHERE o.id IN (SELECT max(id) FROM outcomes GROUP BY run, task_key);
CREATE VIEW v_attempts AS
    SELECT r.run_id, a.task_key, e.execution_id, a.attempt, a.status, a.error, a.started_at,
           a.ended_at, a.ended_at - a.started_at AS duration
    FROM attempts a JOIN runs r ON r.id = a.run LEFT JOIN executions e ON e.id = a.execution
"""

#: ``MIGRATIONS[i]`` upgrades a database from version ``i`` to ``i + 1``.
#: Append only: a released step is never edited.
MIGRATIONS: Sequence[str] = (_V1,)


def is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """Whether SQLite says the file is damaged or not a database at all."""
    name = getattr(exc, "sqlite_errorname", "")
    return name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or "malformed" in str(exc)


def connect(
    path: str, busy_timeout: float, *, check_same_thread: bool = True
) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN ourselves), foreign keys on."""
    conn = sqlite3.connect(
        path,
        timeout=busy_timeout,
        isolation_level=None,
        check_same_thread=check_same_thread,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on any error).

    IMMEDIATE takes the write lock up front, so the busy timeout applies
    at BEGIN; a deferred transaction that reads and then writes could fail
    with SQLITE_BUSY at once when another process committed in between.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _check_header(path: str) -> None:
    """Refuse, before SQLite sees it, a non-empty file that is not SQLite."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc
    if head and head != _SQLITE_HEADER:
        raise StoreCorruptError(
            f"{path} is not a SQLite database (it does not start with the SQLite header); "
            "refusing to use it as a wave-executor store"
        )


def _state(conn: sqlite3.Connection) -> tuple[int, int, int]:
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    return app_id, version, objects


def _refuse_foreign(path: str, app_id: int, objects: int) -> None:
    if app_id == APPLICATION_ID or (app_id == 0 and objects == 0):
        return
    whose = f"application_id {app_id:#x}" if app_id else "tables but no application_id"
    raise ForeignDatabaseError(
        f"{path} is a SQLite database of another application ({whose}); "
        "it was not modified. Use a new file for the wave-executor store."
    )


def migrate(conn: sqlite3.Connection, path: str, migrations: Sequence[str]) -> int:
    """Bring the schema up to ``len(migrations)``; return the version found.

    Runs inside one IMMEDIATE transaction, re-reading the version there, so
    two processes opening a new file at once create it exactly once.
    """
    with transaction(conn):
        app_id, version, objects = _state(conn)
        _refuse_foreign(path, app_id, objects)
        latest = len(migrations)
        if version > latest:
            raise SchemaVersionError(
                f"{path} has schema version {version}, but this wave-executor "
                f"knows versions up to {latest}: upgrade wave-executor to open it"
            )
        for step in range(version, latest):
            for statement in migrations[step].split(";"):
                if statement.strip():
                    conn.execute(statement)
        if version < latest:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {latest}")
    return version


def _check_serializer(conn: sqlite3.Connection, path: str, name: str) -> None:
    with transaction(conn):
        conn.execute(
            "INSERT OR IGNORE INTO store_meta (key, value) VALUES ('serializer', ?), "
            "('created_at', ?)",
            (name, repr(time.time())),
        )
        stored = conn.execute("SELECT value FROM store_meta WHERE key = 'serializer'").fetchone()
    if stored[0] != name:
        raise SerializerMismatchError(path, stored[0], name)


def open_database(
    path: str | os.PathLike[str],
    *,
    serializer: str,
    busy_timeout: float,
    migrations: Sequence[str] | None = None,
) -> sqlite3.Connection:
    """Open (creating or migrating) a store database; the connection is the writer's.

    Order matters: nothing is written (not even the WAL switch) until the
    file is known to be empty or ours.
    """
    where = str(Path(path))
    _check_header(where)
    try:
        conn = connect(where, busy_timeout, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {where}: {exc}") from exc
    try:
        app_id, _, objects = _state(conn)
        _refuse_foreign(where, app_id, objects)
        if objects == 0:  # before the WAL switch, which writes the file's first page
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{where}: SQLite refused WAL mode (journal_mode is {mode})")
        conn.execute("PRAGMA synchronous = NORMAL")
        # A checkpoint that empties the WAL also cuts the file back to this size, so
        # one big transaction (a VACUUM, a huge batch) does not leave a huge WAL behind.
        conn.execute(f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT}")
        migrate(conn, where, MIGRATIONS if migrations is None else migrations)
        _check_serializer(conn, where, serializer)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if is_corruption(exc):
            raise StoreCorruptError(f"{where} is corrupt or not a database: {exc}") from exc
        raise StoreError(f"cannot open {where}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn
