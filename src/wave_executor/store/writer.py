"""The writer thread: one thread and one connection for every write of a store.

Callers on the event loop never touch the database. ``record_*`` append a
row tuple to a deque (thread-safe, a fraction of a microsecond); the thread
wakes every ``flush_interval`` seconds, or as soon as ``batch_size`` rows
wait, or when a command arrives, and commits rows with ``executemany``, up
to ``batch_size`` of each kind per transaction.

Commands (begin a run, end it, delete, save a checkpoint, flush) are
functions run on the thread with its connection, in the order submitted;
each returns its result through a ``concurrent.futures.Future`` that the
store awaits with ``asyncio.wrap_future``. Before a command runs, every row
already buffered is committed, so a flush (a command that does nothing)
returns once everything recorded before it is on disk, and nothing a
command does can overtake rows recorded earlier.

Back-pressure: the rows recorded but not yet committed (buffered, or in
the batch being committed) are bounded by ``max_pending`` rows and
``max_pending_bytes`` of serialized outputs. A recorder that finds the
buffer full blocks in ``wait_for_room`` until the thread has committed a
batch, so a run cannot outpace the disk by more than the bound, in memory
or in what a crash loses. The thread never waits for a recorder (it only takes
rows and notifies), so a blocked recorder cannot deadlock it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from itertools import chain
from typing import Any, TypeVar

from wave_executor._core.logs import get_logger
from wave_executor.store.errors import StoreCorruptError, StoreError, StoreWriteError
from wave_executor.store.leases import renew
from wave_executor.store.schema import is_corruption, transaction

__all__ = ["Command", "Writer", "as_store_error"]

log = get_logger("store")

T = TypeVar("T")
Command = Callable[[sqlite3.Connection], Any]

_INSERT_OUTCOME = (
    "INSERT INTO outcomes (run, task_key, status, fingerprint, output, error, started_at, "
    "ended_at, retries, execution) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_ATTEMPT = (
    "INSERT INTO attempts (run, task_key, execution, attempt, status, error, "
    "started_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_BUSY_RETRIES = 3
#: Errors that belong to one row (a value SQLite cannot bind, a vanished run).
_BAD_ROW = (
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    sqlite3.IntegrityError,
    TypeError,
    ValueError,
    OverflowError,
)


def as_store_error(exc: sqlite3.Error, path: str) -> StoreError:
    """A sqlite3 error as the store error a caller can act on."""
    if isinstance(exc, sqlite3.DatabaseError) and is_corruption(exc):
        return StoreCorruptError(f"{path} is corrupt: {exc}")
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_BUSY":
        return StoreError(
            f"{path} stayed locked by another connection longer than the busy timeout: {exc}"
        )
    return StoreError(f"{path}: {exc}")


def _take(rows: deque[tuple[Any, ...]], limit: int) -> list[tuple[Any, ...]]:
    taken: list[tuple[Any, ...]] = []
    pop = rows.popleft
    try:
        for _ in range(limit):
            taken.append(pop())
    except IndexError:
        pass
    return taken


class _MultiRowInsert:
    """``INSERT ... VALUES (...), (...), ...``: up to a hundred rows per statement.

    ``executemany`` steps once per row, and sqlite3 releases the GIL around
    every step; with a busy event loop in the other thread, getting the GIL
    back can take a whole switch interval (5 ms), so the writer would crawl
    while the run goes on and leave all its work for the end. One step per
    hundred rows makes that hand-over a hundred times rarer (and SQLite
    parses and plans one statement instead of a hundred).
    """

    def __init__(self, conn: sqlite3.Connection, sql: str) -> None:
        self._one = sql
        head, _, values = sql.partition(" VALUES ")
        columns = values.count("?")
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._per_statement = max(1, min(100, limit // columns))
        self._many = head + " VALUES " + ", ".join([values] * self._per_statement)

    def insert(self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        step = self._per_statement
        whole = len(rows) - len(rows) % step
        for start in range(0, whole, step):
            conn.execute(self._many, list(chain.from_iterable(rows[start : start + step])))
        if whole < len(rows):
            conn.executemany(self._one, rows[whole:])


class Writer:
    """Owns the write connection and the thread that uses it."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: str,
        *,
        batch_size: int,
        flush_interval: float,
        lease_seconds: float,
        max_pending: int,
        max_pending_bytes: int,
    ) -> None:
        self.outcomes: deque[tuple[Any, ...]] = deque()
        self.attempts: deque[tuple[Any, ...]] = deque()
        #: run_id -> (row id, execution_id) of the leases this store holds (writer thread only).
        self.held: dict[str, tuple[int, str]] = {}
        #: Set once a batch could not be committed; the store is broken from then on.
        self.failure: StoreWriteError | None = None
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        #: Rows (and output bytes) ever buffered, counted by the recorder, and ever
        #: committed or dropped, counted by the thread: each counter has one writer,
        #: so none needs a lock, and their difference is exact (a deque's length is
        #: not: rows leave it before their batch is committed).
        self.rows_in = 0
        self.rows_out = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self._room = threading.Condition()
        self._conn = conn
        self._path = path
        self._lease_seconds = lease_seconds
        self._interval = min(flush_interval, lease_seconds / 3)
        self._commands: deque[tuple[Command | None, Future[Any]]] = deque()
        self._wake = threading.Event()
        self._stopped: Future[None] | None = None
        self._last_renewal = time.time()
        self._outcome_rows = _MultiRowInsert(conn, _INSERT_OUTCOME)
        self._attempt_rows = _MultiRowInsert(conn, _INSERT_ATTEMPT)
        self._thread = threading.Thread(
            target=self._run, name=f"wave-executor store writer ({path})", daemon=True
        )
        self._thread.start()

    # -- the caller's side ----------------------------------------------------

    def poke(self) -> None:
        """Commit now rather than at the next tick (a full batch is waiting)."""
        self._wake.set()

    @property
    def pending(self) -> int:
        """Rows recorded and not yet committed or dropped."""
        return self.rows_in - self.rows_out

    def full(self, size: int) -> bool:
        """Whether one more row with ``size`` output bytes would overflow the bound.

        An empty buffer always has room, so an output larger than
        ``max_pending_bytes`` is still recorded (alone) instead of waiting forever.
        """
        pending = self.rows_in - self.rows_out
        return pending > 0 and (
            pending >= self.max_pending
            or self.bytes_in - self.bytes_out + size > self.max_pending_bytes
        )

    def wait_for_room(self, size: int) -> None:
        """Block the recording thread until a row of ``size`` bytes fits (back-pressure).

        Every committed batch notifies; the timeout is only a safety net that
        also re-wakes the thread. Returns at once when the thread is gone or
        the store broken (the caller then raises), so it can never hang.
        """
        self.poke()
        with self._room:
            while self.full(size):
                if self.failure is not None or self._stopped is not None or not self.alive:
                    return
                if not self._room.wait(0.1):
                    self.poke()

    def broken(self) -> StoreWriteError:
        """A fresh error saying why the store is broken (each raise gets its own)."""
        assert self.failure is not None
        error = StoreWriteError(str(self.failure))
        error.__cause__ = self.failure.__cause__
        return error

    def submit(self, command: Command | None) -> Future[Any]:
        """Run ``command(conn)`` on the thread after the rows buffered so far."""
        future: Future[Any] = Future()
        if self.failure is not None:
            future.set_exception(self.broken())
            return future
        self._commands.append((command, future))
        self._wake.set()
        return future

    def stop(self) -> Future[Any]:
        """Commit what is buffered, close the connection and end the thread."""
        future: Future[Any] = Future()
        self._commands.append((_STOP, future))
        self._wake.set()
        return future

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the thread -------------------------------------------------------------

    def _run(self) -> None:
        try:
            while self._stopped is None:
                self._wake.wait(self._interval)
                self._wake.clear()
                self._drain()
                self._renew_leases()
        except BaseException as exc:  # pragma: no cover - a bug; say so and fail loudly
            self.failure = StoreWriteError(f"the writer thread of {self._path} died: {exc!r}")
            log.exception("the writer thread of %s died", self._path)
        finally:
            self._conn.close()
            self._made_room()  # recorders waiting for room see that the thread is gone
            self._fail_pending(StoreWriteError(f"{self._path}: the store was closed"))
            if self._stopped is not None:
                self._stopped.set_result(None)

    def _drain(self) -> None:
        while True:
            self._commit_rows()
            try:
                command, future = self._commands.popleft()
            except IndexError:
                return
            if command is _STOP:
                self._stopped = future
                self._commit_rows()
                return
            if not future.set_running_or_notify_cancel():
                continue
            self._commit_rows()
            if self.failure is not None:
                future.set_exception(self.broken())
                continue
            try:
                result = None if command is None else command(self._conn)
            except sqlite3.Error as exc:
                future.set_exception(as_store_error(exc, self._path))
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

    def _commit_rows(self) -> None:
        """Commit the rows buffered now (not those that arrive meanwhile: a
        caller recording faster than we commit must not starve a flush)."""
        left_o, left_a = len(self.outcomes), len(self.attempts)
        while left_o or left_a:
            outcomes = _take(self.outcomes, min(left_o, self.batch_size))
            attempts = _take(self.attempts, min(left_a, self.batch_size))
            left_o -= len(outcomes)
            left_a -= len(attempts)
            try:
                if self.failure is None:  # broken: drop rows rather than pile them up
                    self._with_retries(outcomes, attempts)
            except sqlite3.Error as exc:
                self.failure = StoreWriteError(
                    f"could not commit {len(outcomes)} outcomes and {len(attempts)} attempts "
                    f"to {self._path}: {as_store_error(exc, self._path)}; "
                    "records from now on are not saved"
                )
                self.failure.__cause__ = exc
                log.error("%s", self.failure)
            finally:
                self.bytes_out += sum([len(row[4]) for row in outcomes])
                self.rows_out += len(outcomes) + len(attempts)
                self._made_room()

    def _made_room(self) -> None:
        with self._room:
            self._room.notify_all()

    def _write(self, outcomes: list[tuple[Any, ...]], attempts: list[tuple[Any, ...]]) -> None:
        runs = {row[0] for row in outcomes}
        runs.update(row[0] for row in attempts)
        now = time.time()
        try:
            with transaction(self._conn) as conn:
                self._outcome_rows.insert(conn, outcomes)
                self._attempt_rows.insert(conn, attempts)
                conn.executemany(
                    "UPDATE runs SET updated_at = ? WHERE id = ?", [(now, r) for r in runs]
                )
        except _BAD_ROW:
            self._write_each(outcomes, attempts)

    def _write_each(self, outcomes: list[tuple[Any, ...]], attempts: list[tuple[Any, ...]]) -> None:
        """One row at a time, dropping (and logging) the rows SQLite refuses.

        A value of the wrong type, or a row whose run was deleted by another
        process, must cost that row, not the batch or the store.
        """
        with transaction(self._conn) as conn:
            for sql, rows in ((_INSERT_OUTCOME, outcomes), (_INSERT_ATTEMPT, attempts)):
                for row in rows:
                    try:
                        conn.execute(sql, row)
                    except _BAD_ROW as exc:
                        log.error(
                            "%s: dropped the record of task %r (run row %r): %s",
                            self._path,
                            row[1],
                            row[0],
                            exc,
                        )

    def _with_retries(
        self, outcomes: list[tuple[Any, ...]], attempts: list[tuple[Any, ...]]
    ) -> None:
        """Write a batch; another process holding the lock past the timeout gets retries."""
        for attempt in range(_BUSY_RETRIES + 1):
            try:
                self._write(outcomes, attempts)
                return
            except sqlite3.OperationalError as exc:
                busy = getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED")
                if not busy or attempt == _BUSY_RETRIES:
                    raise
                log.warning("%s is busy; retrying the commit (%s)", self._path, exc)

    def _renew_leases(self) -> None:
        now = time.time()
        if not self.held or now - self._last_renewal < self._lease_seconds / 3:
            return
        self._last_renewal = now
        try:
            with transaction(self._conn) as conn:
                lost = renew(conn, self.held, now, self._lease_seconds)
        except sqlite3.Error as exc:
            log.warning("could not renew run leases in %s (will retry): %s", self._path, exc)
            return
        for run_id in lost:
            log.warning(
                "the lease on run %r (%s) was lost: another execution took it over",
                run_id,
                self._path,
            )
            self.held.pop(run_id, None)

    def _fail_pending(self, error: StoreError) -> None:
        while self._commands:
            command, future = self._commands.popleft()
            if command is _STOP:
                future.set_result(None)
            elif future.set_running_or_notify_cancel():
                future.set_exception(error)


def _stop(conn: sqlite3.Connection) -> None:  # pragma: no cover - a marker, never called
    raise AssertionError


_STOP: Command = _stop
