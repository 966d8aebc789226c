"""Durable runs: stores that record attempts and outcomes, and reconciler checkpoints.

``SQLiteStore`` keeps them in one SQLite file (stdlib ``sqlite3``), safe to
share between processes; ``MemoryStore`` keeps them in memory, for tests.
Both implement ``RunStore``. Outputs go through a serializer:
``JsonSerializer`` by default, ``PickleSerializer`` only when asked for (it
is unsafe for databases others can write to). See docs/store.md.
"""

from __future__ import annotations

from wave_executor._core.store_protocol import (
    AttemptRecord,
    LeaseHolder,
    RunInfo,
    RunStore,
    Serializer,
    TaskRecord,
)
from wave_executor._runtime.checkpoints import ReconcilerCheckpoints
from wave_executor.store.errors import (
    ForeignDatabaseError,
    OutputSerializationError,
    RunLockedError,
    RunNotActiveError,
    SchemaVersionError,
    SerializationError,
    SerializerMismatchError,
    StoreClosedError,
    StoreCorruptError,
    StoreError,
    StoreWriteError,
)
from wave_executor.store.memory import MemoryStore
from wave_executor.store.serializers import JsonSerializer, PickleSerializer
from wave_executor.store.sqlite import SQLiteStore

__all__ = [
    "AttemptRecord",
    "ForeignDatabaseError",
    "JsonSerializer",
    "LeaseHolder",
    "MemoryStore",
    "OutputSerializationError",
    "PickleSerializer",
    "ReconcilerCheckpoints",
    "RunInfo",
    "RunLockedError",
    "RunNotActiveError",
    "RunStore",
    "SQLiteStore",
    "SchemaVersionError",
    "SerializationError",
    "Serializer",
    "SerializerMismatchError",
    "StoreClosedError",
    "StoreCorruptError",
    "StoreError",
    "StoreWriteError",
    "TaskRecord",
]
