"""The writes of a SQLite store besides the record stream, run on its writer thread.

Each function takes the writer's connection and does one thing in one
IMMEDIATE transaction. ``held`` is the writer's map of the leases this
store holds (run_id -> execution_id), which the writer renews.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterable

from wave_executor._core.logs import get_logger
from wave_executor.store.errors import RunLockedError
from wave_executor.store.leases import HOSTNAME, holder_alive, live_holder, read_holder, take
from wave_executor.store.schema import transaction

__all__ = [
    "begin_run",
    "delete_checkpoint",
    "delete_run",
    "delete_runs",
    "end_run",
    "reclaim",
    "release_all",
    "save_checkpoint",
    "vacuum",
]

log = get_logger("store")

#: ``PRAGMA auto_vacuum`` values: 0 none, 1 full, 2 incremental.
_INCREMENTAL = 2

_COMPACT = (
    "DELETE FROM outcomes WHERE run = (SELECT id FROM runs WHERE run_id = ?) AND id NOT IN "
    "(SELECT max(id) FROM outcomes WHERE run = (SELECT id FROM runs WHERE run_id = ?) "
    "GROUP BY task_key)"
)


def begin_run(
    conn: sqlite3.Connection,
    held: dict[str, tuple[int, str]],
    *,
    run_id: str,
    execution_id: str,
    total_tasks: int,
    meta: str | None,
    lease_seconds: float,
) -> tuple[int, int, bool]:
    """Claim the run; return the row ids (run, execution) that records carry, and
    whether the run already has outcomes (so this execution may rerun tasks)."""
    now = time.time()
    with transaction(conn):
        holder = live_holder(conn, run_id, execution_id, now)
        if holder is not None:
            raise RunLockedError(run_id, holder)
        conn.execute(
            "INSERT INTO runs (run_id, status, created_at, updated_at, total_tasks, meta) "
            "VALUES (?, 'running', ?, ?, ?, coalesce(?, '{}')) ON CONFLICT (run_id) DO UPDATE "
            "SET status = 'running', updated_at = excluded.updated_at, finished_at = NULL, "
            "total_tasks = excluded.total_tasks, meta = coalesce(?, meta)",
            (run_id, now, now, total_tasks, meta, meta),
        )
        run = conn.execute("SELECT id FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0]
        # An execution that began and never ended died with its process.
        conn.execute(
            "UPDATE executions SET status = 'interrupted', ended_at = ? "
            "WHERE run = ? AND ended_at IS NULL AND execution_id != ?",
            (now, run, execution_id),
        )
        take(conn, run, execution_id, now, lease_seconds)
        conn.execute(
            "INSERT OR IGNORE INTO executions (run, execution_id, pid, hostname, started_at, "
            "status) VALUES (?, ?, ?, ?, ?, 'running')",
            (run, execution_id, os.getpid(), HOSTNAME, now),
        )
        execution = conn.execute(
            "SELECT id FROM executions WHERE run = ? AND execution_id = ?", (run, execution_id)
        ).fetchone()[0]
        resumed = conn.execute("SELECT 1 FROM outcomes WHERE run = ? LIMIT 1", (run,)).fetchone()
    held[run_id] = (run, execution_id)
    return run, execution, resumed is not None


def end_run(
    conn: sqlite3.Connection,
    held: dict[str, tuple[int, str]],
    *,
    run_id: str,
    execution_id: str,
    status: str,
    compact: bool,
) -> None:
    """Release the run; with ``compact``, drop outcome rows that later ones replaced."""
    now = time.time()
    with transaction(conn):
        holder = read_holder(conn, run_id)
        conn.execute(
            "UPDATE executions SET status = ?, ended_at = ? WHERE execution_id = ? "
            "AND run = (SELECT id FROM runs WHERE run_id = ?)",
            (status, now, execution_id, run_id),
        )
        ours = holder is not None and holder.execution_id == execution_id
        if ours:
            conn.execute(
                "UPDATE runs SET status = ?, finished_at = ?, updated_at = ? WHERE run_id = ?",
                (status, now, now, run_id),
            )
            conn.execute(
                "DELETE FROM leases WHERE run = (SELECT id FROM runs WHERE run_id = ?)", (run_id,)
            )
            if compact:
                conn.execute(_COMPACT, (run_id, run_id))
    held.pop(run_id, None)
    if not ours:
        log.warning(
            "run %r: execution %s ended (%s) without holding the run (its lease was lost, "
            "or it never began); the run's status was not changed",
            run_id,
            execution_id,
            status,
        )


def release_all(conn: sqlite3.Connection, held: dict[str, tuple[int, str]]) -> None:
    """On close: runs still held were never ended, so they are interrupted."""
    if not held:
        return
    now = time.time()
    with transaction(conn):
        for run, execution_id in held.values():
            cur = conn.execute(
                "DELETE FROM leases WHERE run = ? AND execution_id = ?", (run, execution_id)
            )
            if cur.rowcount:
                conn.execute(
                    "UPDATE runs SET status = 'interrupted', updated_at = ? WHERE id = ?",
                    (now, run),
                )
            conn.execute(
                "UPDATE executions SET status = 'interrupted', ended_at = ? "
                "WHERE run = ? AND execution_id = ?",
                (now, run, execution_id),
            )
    held.clear()


def delete_run(conn: sqlite3.Connection, run_id: str) -> bool:
    with transaction(conn):
        holder = read_holder(conn, run_id)
        if holder is not None and holder_alive(holder, time.time()):
            raise RunLockedError(run_id, holder, action="delete")
        deleted = conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount > 0
    if deleted:
        reclaim(conn)
    return deleted


def delete_runs(conn: sqlite3.Connection, cutoff: float, include_unfinished: bool) -> int:
    """Delete runs that finished before ``cutoff`` (with ``include_unfinished``, also
    runs that never finished and were last touched before it), unless still held."""
    sql = "SELECT run_id FROM runs WHERE finished_at < ?"
    if include_unfinished:
        sql += " OR (finished_at IS NULL AND updated_at < ?)"
    params = (cutoff, cutoff) if include_unfinished else (cutoff,)
    now = time.time()
    with transaction(conn):
        doomed = []
        for (run_id,) in conn.execute(sql, params).fetchall():
            holder = read_holder(conn, run_id)
            if holder is None or not holder_alive(holder, now):
                doomed.append((run_id,))
        conn.executemany("DELETE FROM runs WHERE run_id = ?", doomed)
    if doomed:
        reclaim(conn)
    return len(doomed)


def reclaim(conn: sqlite3.Connection) -> None:
    """Give the pages a delete freed back to the filesystem, if the file allows it.

    Only a file with ``auto_vacuum = INCREMENTAL`` can (see ``vacuum`` for
    older ones). In WAL mode the file shrinks when the WAL is checkpointed,
    so a passive checkpoint follows (it never waits for readers). Best
    effort: the delete is already committed, and pages left free are
    reused by later writes anyway.
    """
    try:
        if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != _INCREMENTAL:
            return
        # executescript steps the pragma to the end; execute() would free one page.
        conn.executescript("PRAGMA incremental_vacuum;")
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error as exc:
        log.warning("could not give freed space back to the filesystem: %s", exc)


def vacuum(conn: sqlite3.Connection, path: str) -> int:
    """``VACUUM``, then truncate the WAL; return the bytes the files shrank by.

    Setting ``auto_vacuum`` first makes the rewrite also convert a file that
    was created without incremental auto-vacuum (the only way to change it).
    """
    before = _size_on_disk(path)
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("VACUUM")
    busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    if busy:
        log.info("%s: readers kept the WAL from being truncated after VACUUM", path)
    return max(0, before - _size_on_disk(path))


def _size_on_disk(path: str) -> int:
    total = 0
    for name in (path, path + "-wal"):
        with contextlib.suppress(OSError):
            total += os.path.getsize(name)
    return total


def save_checkpoint(
    conn: sqlite3.Connection,
    reconciler_id: str,
    task_id: str,
    spec: bytes,
    state: bytes,
    deps: str,
) -> None:
    with transaction(conn):
        conn.execute(
            "INSERT OR REPLACE INTO reconciler_tasks (reconciler_id, task_id, spec, state, deps, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            (reconciler_id, task_id, spec, state, deps, time.time()),
        )


def delete_checkpoint(
    conn: sqlite3.Connection, reconciler_id: str, task_ids: Iterable[str]
) -> None:
    with transaction(conn):
        conn.executemany(
            "DELETE FROM reconciler_tasks WHERE reconciler_id = ? AND task_id = ?",
            [(reconciler_id, t) for t in task_ids],
        )
