"""``SQLiteStore``: durable runs and checkpoints in one SQLite file (stdlib sqlite3).

Threads: every write happens on the store's one writer thread (see
``writer``); reads run in ``asyncio.to_thread`` on a second, read-only
connection. The event loop only appends to buffers and awaits futures.

Durability: WAL with ``synchronous=NORMAL``. A committed transaction
survives the process being killed (it is in the WAL file, which the OS
keeps); only a power cut or an OS crash can lose the last few commits,
never corrupt the file. For resuming runs that is enough: an outcome that
was lost only means its task runs again. What a crash of the *process*
loses is what was buffered but not yet committed: about ``flush_interval``
seconds of records while the disk keeps up, and never more than
``max_pending`` records (``max_pending_bytes`` of outputs): when the buffer
is full, ``record_*`` wait for the writer (back-pressure) instead of letting
memory and the loss on a crash grow without limit.

Space: new files use ``auto_vacuum = INCREMENTAL``, so deleting runs gives
the freed pages back to the filesystem at once; ``vacuum()`` rewrites the
file (and converts a file made before that to incremental).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from wave_executor._core.checks import check_int, check_number
from wave_executor._core.store_protocol import (
    AttemptRecord,
    RunInfo,
    Serializer,
    TaskRecord,
)
from wave_executor.store import commands, queries
from wave_executor.store.errors import (
    OutputSerializationError,
    RunNotActiveError,
    SerializationError,
    StoreClosedError,
    StoreError,
    as_key,
)
from wave_executor.store.schema import connect, open_database
from wave_executor.store.serializers import JsonSerializer
from wave_executor.store.writer import Command, Writer, as_store_error

__all__ = ["SQLiteStore"]

T = TypeVar("T")

#: Records (attempts and outcomes) that may wait to be committed. Five default
#: batches: a writer that keeps up never comes near it (so no recorder waits),
#: and it caps the buffer at a few MB and what a crash loses at ~10k records.
DEFAULT_MAX_PENDING = 10_000
#: Serialized output bytes that may wait to be committed: the bound that
#: matters when outputs are large.
DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024


class SQLiteStore:
    """A ``RunStore`` in a SQLite database file, safe to share between processes.

    ``serializer`` encodes task outputs and checkpoints (JSON by default; see
    ``PickleSerializer`` before choosing pickle). ``busy_timeout`` is how
    long a write waits for another process's transaction. Records are
    committed ``batch_size`` at a time, or every ``flush_interval`` seconds,
    whichever comes first. At most ``max_pending`` records, and
    ``max_pending_bytes`` of serialized outputs, wait to be committed: a
    ``record_*`` call that finds the buffer full blocks until the writer has
    committed a batch (back-pressure; see docs/store.md). An execution's hold on its run expires
    ``lease_seconds`` after the last renewal (renewed every third of it
    while the process lives; freed at once on this host if its process died).

    Opening creates or migrates the database and starts the writer thread;
    ``await store.close()`` (or ``async with``) stops it. The store is not
    tied to an event loop: any loop (or several ``asyncio.run`` calls) may
    use it. Open one store per process; do not share one across ``fork``.
    """

    #: The writer thread's class: a seam for tests (a slowed writer), not an option.
    _writer_class: type[Writer] = Writer

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        serializer: Serializer | None = None,
        busy_timeout: float = 5.0,
        batch_size: int = 2000,
        flush_interval: float = 0.05,
        lease_seconds: float = 30.0,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
    ) -> None:
        for name, count in (
            ("batch_size", batch_size), ("max_pending", max_pending),
            ("max_pending_bytes", max_pending_bytes),
        ):  # fmt: skip
            check_int(name, count, 1)
        check_number("flush_interval", flush_interval, above=0, finite=True)
        check_number("lease_seconds", lease_seconds, above=0, finite=True)
        check_number("busy_timeout", busy_timeout, at_least=0, finite=True)
        self.path = os.fspath(path)
        if self.path in ("", ":memory:") or self.path.startswith("file::memory:"):
            raise ValueError(
                "SQLiteStore needs a file (each connection would get its own "
                "in-memory database); use MemoryStore for a store in memory"
            )
        if os.path.exists(self.path) and not os.path.isfile(self.path):
            # A FIFO would block the header read forever; a directory cannot be one.
            raise StoreError(f"{self.path} is not a regular file; a store needs a database file")
        self.serializer: Serializer = JsonSerializer() if serializer is None else serializer
        self._lease_seconds = lease_seconds
        conn = open_database(self.path, serializer=self.serializer.name, busy_timeout=busy_timeout)
        try:
            self._reader = connect(self.path, busy_timeout, check_same_thread=False)
            self._reader.execute("PRAGMA query_only = ON")
        except BaseException:
            conn.close()
            raise
        self._read_lock = threading.Lock()
        # run_id -> the (run, execution) row ids that record_* write into each row
        self._active: dict[str, tuple[int, int]] = {}
        # runs that had outcomes when begun: their end compacts replaced outcomes
        self._resumed: set[str] = set()
        self._closed = False
        self._writer = self._writer_class(
            conn,
            self.path,
            batch_size=batch_size,
            flush_interval=flush_interval,
            lease_seconds=lease_seconds,
            max_pending=max_pending,
            max_pending_bytes=max_pending_bytes,
        )
        atexit.register(self._close_at_exit)

    @classmethod
    async def open(cls, path: str | os.PathLike[str], **options: Any) -> SQLiteStore:
        """Open without blocking the event loop (creating or migrating can take a while)."""
        return await asyncio.to_thread(cls, path, **options)

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, serializer={self.serializer!r})"

    # -- plumbing ---------------------------------------------------------------

    async def _write(self, command: Command | None) -> Any:
        self._check_open()
        return await asyncio.wrap_future(self._writer.submit(command))

    async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        self._check_open()
        return await asyncio.to_thread(self._read_now, query)

    def _read_now(self, query: Callable[[sqlite3.Connection], T]) -> T:
        with self._read_lock:
            if self._closed:
                raise StoreClosedError(f"{self.path}: the store is closed")
            conn = self._reader
            try:
                conn.execute("BEGIN")
                try:
                    return query(conn)
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise as_store_error(exc, self.path) from exc

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"{self.path}: the store is closed")

    def _dumps(self, value: Any, what: str) -> bytes:
        try:
            return self.serializer.dumps(value)
        except Exception as exc:
            raise SerializationError(
                f"{what} cannot be stored with the {self.serializer.name} serializer: {exc}"
            ) from exc

    def _not_active(self, run_id: str) -> Exception:
        self._check_open()
        if self._writer.failure is not None:
            return self._writer.broken()
        return RunNotActiveError(run_id)

    # -- one execution of a run -------------------------------------------------

    async def begin_run(
        self,
        run_id: str,
        execution_id: str,
        *,
        total_tasks: int,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        run_id, execution_id = as_key(run_id, "run_id"), as_key(execution_id, "execution_id")
        meta_json = None
        if meta is not None:
            try:
                meta_json = json.dumps(dict(meta), sort_keys=True)
            except (TypeError, ValueError) as exc:
                raise SerializationError(f"the meta of run {run_id!r} is not JSON: {exc}") from exc
        held = self._writer.held
        self._check_open()
        claim = self._writer.submit(
            lambda conn: commands.begin_run(
                conn,
                held,
                run_id=run_id,
                execution_id=execution_id,
                total_tasks=total_tasks,
                meta=meta_json,
                lease_seconds=self._lease_seconds,
            )
        )
        try:
            run, execution, resumed = await asyncio.shield(asyncio.wrap_future(claim))
        except asyncio.CancelledError:
            # The writer claims the run whatever happens here. All or nothing: give
            # back a claim it makes (it runs commands in order, so it is done by then).
            def give_back(conn: sqlite3.Connection) -> None:
                if claim.done() and claim.exception() is None:
                    commands.end_run(
                        conn, held, run_id=run_id, execution_id=execution_id,
                        status="interrupted", compact=False,
                    )  # fmt: skip

            self._writer.submit(give_back)
            raise
        self._active[run_id] = (run, execution)
        if resumed:
            self._resumed.add(run_id)

    async def load_successes(self, run_id: str) -> dict[str, tuple[str | None, Any]]:
        await self.flush()
        loads = self.serializer.loads
        return await self._read(lambda conn: queries.load_successes(conn, run_id, loads))

    def record_attempt(self, run_id: str, rec: AttemptRecord) -> None:
        ids = self._active.get(run_id)
        if ids is None or self._writer.failure is not None:
            raise self._not_active(run_id)
        key = rec.task_key if type(rec.task_key) is str else as_key(rec.task_key)
        writer = self._writer
        rows = writer.attempts
        if writer.rows_in - writer.rows_out >= writer.max_pending:
            self._wait_for_room(0)
        rows.append(
            (ids[0], key, ids[1], rec.attempt, str(rec.status), rec.error,
             rec.started_at, rec.ended_at)
        )  # fmt: skip
        writer.rows_in += 1
        if len(rows) >= writer.batch_size:
            writer.poke()

    def record_outcome(self, run_id: str, rec: TaskRecord) -> None:
        ids = self._active.get(run_id)
        if ids is None or self._writer.failure is not None:
            raise self._not_active(run_id)
        key = rec.task_key if type(rec.task_key) is str else as_key(rec.task_key)
        try:
            data = self.serializer.dumps(rec.output)
            size = len(data)
        except Exception as exc:
            raise OutputSerializationError(
                run_id, key, rec.output, self.serializer.name, str(exc)
            ) from exc
        writer = self._writer
        rows = writer.outcomes
        if (
            writer.rows_in - writer.rows_out >= writer.max_pending
            or writer.bytes_in - writer.bytes_out + size > writer.max_pending_bytes
        ):
            self._wait_for_room(size)
        rows.append(
            (ids[0], key, str(rec.status), rec.fingerprint, data, rec.error,
             rec.started_at, rec.ended_at, rec.retries, ids[1])
        )  # fmt: skip
        writer.rows_in += 1
        writer.bytes_in += size
        if len(rows) >= writer.batch_size:
            writer.poke()

    def _wait_for_room(self, size: int) -> None:
        """The buffer is full: wait (blocking this thread) for the writer to commit.

        This is the back-pressure: the event loop stalls for as long as one
        batch takes to commit, which the writer does without the loop.
        """
        self._writer.wait_for_room(size)
        if self._writer.failure is not None:
            raise self._writer.broken()

    @property
    def pending(self) -> int:
        """Records recorded but not yet committed (at most ``max_pending``)."""
        return self._writer.pending

    async def flush(self) -> None:
        await self._write(None)

    async def end_run(self, run_id: str, execution_id: str, status: str) -> None:
        self._active.pop(run_id, None)
        compact = run_id in self._resumed
        self._resumed.discard(run_id)
        held = self._writer.held
        self._check_open()
        release = self._writer.submit(
            lambda conn: commands.end_run(
                conn,
                held,
                run_id=run_id,
                execution_id=execution_id,
                status=str(status),
                compact=compact,
            )
        )
        # shielded: a caller cancelled meanwhile must not keep the run from being released
        await asyncio.shield(asyncio.wrap_future(release))

    # -- queries for people -------------------------------------------------------

    async def list_runs(self, *, limit: int | None = None) -> list[RunInfo]:
        await self.flush()
        return await self._read(lambda conn: queries.list_runs(conn, limit))

    async def get_run(self, run_id: str) -> RunInfo | None:
        await self.flush()
        return await self._read(lambda conn: queries.get_run(conn, run_id))

    async def run_tasks(
        self, run_id: str, *, status: str | None = None, with_outputs: bool = False
    ) -> list[TaskRecord]:
        await self.flush()
        loads = self.serializer.loads if with_outputs else None
        return await self._read(lambda conn: queries.run_tasks(conn, run_id, status, loads))

    async def task_attempts(self, run_id: str, task_key: str) -> list[AttemptRecord]:
        await self.flush()
        return await self._read(lambda conn: queries.task_attempts(conn, run_id, task_key))

    async def delete_run(self, run_id: str) -> bool:
        """Delete a run and everything of it; the freed pages go back to the filesystem
        (in files with incremental auto-vacuum: every file this version creates)."""
        result: bool = await self._write(lambda conn: commands.delete_run(conn, run_id))
        return result

    async def delete_runs(
        self, *, finished_before: datetime, include_unfinished: bool = False
    ) -> int:
        cutoff = finished_before.timestamp()
        result: int = await self._write(
            lambda conn: commands.delete_runs(conn, cutoff, include_unfinished)
        )
        return result

    async def vacuum(self) -> int:
        """Rewrite the file without free space; return the bytes given back.

        Also turns on incremental auto-vacuum in a file created before it was
        the default, so that later deletes give space back by themselves.
        Holds the write lock (of every process) while it copies the database:
        run it between runs. See docs/store.md, "Reclaiming space".
        """
        result: int = await self._write(lambda conn: commands.vacuum(conn, self.path))
        return result

    # -- reconciler checkpoints ---------------------------------------------------

    async def save_reconciler_state(
        self, reconciler_id: str, task_id: str, spec: Any, state: Any, deps: Any
    ) -> None:
        """Save (commit) one task's checkpoint; ``spec=None`` deletes it instead.

        ``deps`` is any iterable of str task ids; it loads back as a set.
        """
        task_id = as_key(task_id, "reconciler task id")
        if spec is None:
            await self.delete_reconciler_task(reconciler_id, task_id)
            return
        what = f"the checkpoint of task {task_id!r} of reconciler {reconciler_id!r}"
        spec_data = self._dumps(spec, what)
        state_data = self._dumps(state, what)
        dep_list = json.dumps(sorted(as_key(d, "dependency id") for d in (deps or ())))
        await self._write(
            lambda conn: commands.save_checkpoint(
                conn, reconciler_id, task_id, spec_data, state_data, dep_list
            )
        )

    async def load_reconciler_state(
        self, reconciler_id: str
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, set[str]]]:
        loads = self.serializer.loads
        return await self._read(lambda conn: queries.load_checkpoints(conn, reconciler_id, loads))

    async def delete_reconciler_task(self, reconciler_id: str, task_id: str) -> None:
        await self._write(lambda conn: commands.delete_checkpoint(conn, reconciler_id, [task_id]))

    #: The name the 0.3.0-style checkpoint writer looks for.
    delete_reconciler_state = delete_reconciler_task

    # -- lifecycle ----------------------------------------------------------------

    async def close(self) -> None:
        """Commit what is buffered, mark runs never ended as interrupted, stop the thread."""
        if self._closed:
            return
        await asyncio.wrap_future(self._shutdown())
        self._writer.join()
        with self._read_lock:
            self._reader.close()

    def _shutdown(self) -> Future[Any]:
        self._closed = True
        self._active.clear()
        atexit.unregister(self._close_at_exit)
        if not self._writer.alive:  # pragma: no cover - it died of a bug, and said so
            done: Future[Any] = Future()
            done.set_result(None)
            return done
        held = self._writer.held
        self._writer.submit(lambda conn: commands.release_all(conn, held))
        return self._writer.stop()

    def _close_at_exit(self) -> None:
        """Interpreter exit without close(): still commit what was recorded."""
        if not self._closed:
            self._shutdown().result(timeout=30)
            self._writer.join(timeout=5)
            with self._read_lock:
                self._reader.close()

    async def __aenter__(self) -> SQLiteStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
