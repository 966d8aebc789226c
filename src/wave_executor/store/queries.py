"""The reads of a SQLite store: plain functions of a connection, run off the loop.

Each is called inside one read transaction, so a query that takes several
statements sees a single snapshot even while another process writes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from wave_executor._core.store_protocol import AttemptRecord, LeaseHolder, RunInfo, TaskRecord
from wave_executor.store.errors import StoreCorruptError
from wave_executor.store.leases import holder_alive

__all__ = [
    "get_run",
    "list_runs",
    "load_checkpoints",
    "load_successes",
    "run_tasks",
    "task_attempts",
]

#: The row ids of the latest outcome of each task of run ``?``.
_LATEST = "SELECT max(id) AS id FROM outcomes WHERE run = ? GROUP BY task_key"

_RUNS = (
    "SELECT r.run_id, r.status, r.created_at, r.updated_at, r.finished_at, r.total_tasks, "
    "r.meta, (SELECT count(*) FROM executions e WHERE e.run = r.id), "
    "l.execution_id, l.pid, l.hostname, l.expires_at, r.id "
    "FROM runs r LEFT JOIN leases l ON l.run = r.id"
)


def _run_info(conn: sqlite3.Connection, row: tuple[Any, ...], now: float) -> RunInfo:
    run_id, status = row[0], row[1]
    if status == "running":
        holder = None if row[8] is None else LeaseHolder(run_id, *row[8:12])
        if holder is None or not holder_alive(holder, now):
            status = "interrupted"
    counts = dict(
        conn.execute(
            "SELECT o.status, count(*) FROM outcomes o JOIN (" + _LATEST + ") l ON l.id = o.id "
            "GROUP BY o.status",
            (row[12],),
        ).fetchall()
    )
    return RunInfo(
        run_id=run_id,
        status=status,
        created_at=row[2],
        updated_at=row[3],
        finished_at=row[4],
        total_tasks=row[5],
        succeeded=counts.get("success", 0),
        failed=counts.get("failed", 0) + counts.get("timeout", 0),
        executions=row[7],
        skipped=counts.get("skipped", 0),
        recorded=sum(counts.values()),
        meta=json.loads(row[6]),
    )


def list_runs(conn: sqlite3.Connection, limit: int | None) -> list[RunInfo]:
    rows = conn.execute(
        _RUNS + " ORDER BY r.created_at DESC, r.run_id LIMIT ?",
        (-1 if limit is None else limit,),
    ).fetchall()
    now = time.time()
    return [_run_info(conn, row, now) for row in rows]


def get_run(conn: sqlite3.Connection, run_id: str) -> RunInfo | None:
    row = conn.execute(_RUNS + " WHERE r.run_id = ?", (run_id,)).fetchone()
    return None if row is None else _run_info(conn, row, time.time())


def _loads(loads: Any, data: bytes | None, what: str) -> Any:
    if data is None:
        return None
    try:
        return loads(data)
    except Exception as exc:
        raise StoreCorruptError(f"cannot read back {what}: {exc!r}") from exc


def _run_pk(conn: sqlite3.Connection, run_id: str) -> int | None:
    row = conn.execute("SELECT id FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return None if row is None else int(row[0])


def run_tasks(
    conn: sqlite3.Connection,
    run_id: str,
    status: str | None,
    loads: Any | None,
) -> list[TaskRecord]:
    """``loads`` None: leave outputs out (they can be large); else decode them with it."""
    run = _run_pk(conn, run_id)
    if run is None:
        return []
    attempts = dict(
        conn.execute(
            "SELECT task_key, count(*) FROM attempts WHERE run = ? GROUP BY task_key", (run,)
        ).fetchall()
    )
    output = "o.output" if loads is not None else "NULL"
    sql = (
        "SELECT o.task_key, o.status, o.fingerprint, " + output + ", o.error, o.started_at, "
        "o.ended_at, o.retries, e.execution_id FROM outcomes o JOIN (" + _LATEST + ") l "
        "ON l.id = o.id LEFT JOIN executions e ON e.id = o.execution"
    )
    params: tuple[Any, ...] = (run,)
    if status is not None:
        sql += " WHERE o.status = ?"
        params += (status,)
    records = []
    for row in conn.execute(sql + " ORDER BY o.id", params).fetchall():  # see load_successes
        value = None
        if loads is not None:
            value = _loads(loads, row[3], f"the output of task {row[0]!r} in run {run_id!r}")
        records.append(
            TaskRecord(
                task_key=row[0],
                status=row[1],
                fingerprint=row[2],
                output=value,
                error=row[4],
                started_at=row[5],
                ended_at=row[6],
                retries=row[7],
                execution_id=row[8],
                attempts=attempts.get(row[0], 0),
            )
        )
    return records


def task_attempts(conn: sqlite3.Connection, run_id: str, task_key: str) -> list[AttemptRecord]:
    rows = conn.execute(
        "SELECT a.task_key, a.attempt, a.status, a.error, a.started_at, a.ended_at, "
        "e.execution_id FROM attempts a LEFT JOIN executions e ON e.id = a.execution "
        "WHERE a.run = (SELECT id FROM runs WHERE run_id = ?) AND a.task_key = ? "
        "ORDER BY a.id",
        (run_id, task_key),
    )
    return [AttemptRecord(*row) for row in rows]


def load_successes(
    conn: sqlite3.Connection, run_id: str, loads: Any
) -> dict[str, tuple[str | None, Any]]:
    run = _run_pk(conn, run_id)
    if run is None:
        return {}
    # fetchall before decoding: a cursor left half-read by a value that fails to
    # decode (and kept alive by the traceback) would hold this read snapshot open.
    rows = conn.execute(
        "SELECT o.task_key, o.fingerprint, o.output FROM outcomes o JOIN (" + _LATEST + ") l "
        "ON l.id = o.id WHERE o.status = 'success'",
        (run,),
    ).fetchall()
    return {
        key: (fp, _loads(loads, data, f"the output of task {key!r} in run {run_id!r}"))
        for key, fp, data in rows
    }


def load_checkpoints(
    conn: sqlite3.Connection, reconciler_id: str, loads: Any
) -> tuple[dict[str, Any], dict[str, Any], dict[str, set[str]]]:
    specs: dict[str, Any] = {}
    states: dict[str, Any] = {}
    deps: dict[str, set[str]] = {}
    rows = conn.execute(
        "SELECT task_id, spec, state, deps FROM reconciler_tasks WHERE reconciler_id = ? "
        "ORDER BY rowid",
        (reconciler_id,),
    ).fetchall()  # see load_successes
    for task_id, spec, state, dep_list in rows:
        what = f"the checkpoint of task {task_id!r} of reconciler {reconciler_id!r}"
        specs[task_id] = _loads(loads, spec, what)
        states[task_id] = _loads(loads, state, what)
        deps[task_id] = set(json.loads(dep_list))
    return specs, states, deps
