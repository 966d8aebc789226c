"""Errors of the store layer, all under ``wave_executor.errors.WaveExecutorError``.

::

    WaveExecutorError
     └── StoreError                      anything a store refuses or fails to do
          ├── RunLockedError             another live execution holds the run
          ├── RunNotActiveError          recording for a run this store has not begun
          ├── SerializationError         a value could not be turned into bytes
          │    └── OutputSerializationError   ... and it was a task's output
          ├── SerializerMismatchError    the database was written with another serializer
          ├── StoreCorruptError          the file is not a readable store database
          │    └── ForeignDatabaseError  a SQLite database that belongs to something else
          ├── SchemaVersionError         the database was written by a newer version
          ├── StoreClosedError           the store was used after close()
          └── StoreWriteError            the writer could not commit; the store is broken

``SerializationError`` is also a ``TypeError`` and ``StoreClosedError`` a
``RuntimeError``, the built-in errors they refine.
"""

from __future__ import annotations

import time
from typing import Any

from wave_executor._core.store_protocol import LeaseHolder
from wave_executor.errors import WaveExecutorError

__all__ = [
    "ForeignDatabaseError",
    "OutputSerializationError",
    "RunLockedError",
    "RunNotActiveError",
    "SchemaVersionError",
    "SerializationError",
    "SerializerMismatchError",
    "StoreClosedError",
    "StoreCorruptError",
    "StoreError",
    "StoreWriteError",
    "as_key",
]


def as_key(value: Any, what: str = "task key") -> str:
    """``value`` if it is a str (a ``StrEnum`` becomes its value); else a clear TypeError."""
    if isinstance(value, str):
        return str(value)
    raise TypeError(f"a {what} must be a str, not {type(value).__qualname__}: {value!r}")


class StoreError(WaveExecutorError):
    """Base of every error raised by a run store."""


class RunLockedError(StoreError):
    """``run_id`` is held by another execution that is still alive."""

    def __init__(self, run_id: str, holder: LeaseHolder | None, *, action: str = "begin") -> None:
        self.run_id = run_id
        self.holder = holder
        who = "another execution" if holder is None else holder.describe(time.time())
        super().__init__(
            f"cannot {action} run {run_id!r}: it is held by {who}; "
            "two executions of one run_id cannot run at once "
            "(wait for it to end, or use another run_id)"
        )


class RunNotActiveError(StoreError):
    """Something was recorded for a run that this store has not begun (or already ended)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(
            f"run {run_id!r} is not active in this store: call begin_run() before "
            "recording attempts or outcomes, and do not record after end_run()"
        )


class SerializationError(StoreError, TypeError):
    """A value could not be serialized with the store's serializer."""


class OutputSerializationError(SerializationError):
    """A task's output could not be serialized; nothing was recorded for it."""

    def __init__(self, run_id: str, task_key: str, value: Any, serializer: str, cause: str) -> None:
        self.run_id = run_id
        self.task_key = task_key
        self.type_name = type(value).__qualname__
        super().__init__(
            f"the output of task {task_key!r} (run {run_id!r}), of type {self.type_name}, "
            f"cannot be stored with the {serializer} serializer: {cause}"
        )


class SerializerMismatchError(StoreError):
    """The database was created with another serializer than the one given."""

    def __init__(self, path: str, stored: str, given: str) -> None:
        self.stored = stored
        self.given = given
        super().__init__(
            f"{path} stores outputs with the {stored!r} serializer, not {given!r}: "
            f"open it with serializer={stored!r} (or use another database file)"
        )


class StoreCorruptError(StoreError):
    """The file is not a readable store database (not SQLite, or damaged)."""


class ForeignDatabaseError(StoreCorruptError):
    """The file is a SQLite database of some other application; it was not touched."""


class SchemaVersionError(StoreError):
    """The database schema is newer than this version of wave-executor understands."""


class StoreClosedError(StoreError, RuntimeError):
    """The store was used after ``close()``."""


class StoreWriteError(StoreError):
    """The writer thread could not commit; records after the failure are not saved."""
