"""What a durable-run store is: records, the ``RunStore`` protocol, serializers.

The executor and the reconciler talk to a store only through these types;
the implementations live in ``wave_executor.store`` (``MemoryStore`` and
``SQLiteStore``). This module is pure: no sqlite3, no asyncio.

A *run* is identified by a ``run_id`` chosen by the caller; each call of
``execute(..., run_id=...)`` is one *execution* of it, with its own
``execution_id``. An execution claims the run with ``begin_run`` (a lease,
so two executions never write one run at once), streams attempts and
outcomes with the synchronous, buffering ``record_*`` methods, and gives
the run back with ``end_run``. A task has one outcome row per run: the
latest recorded wins, so a rerun's success replaces an older failure.

Times in records are wall-clock epoch seconds (``time.time()``), because
they outlive the process that measured them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "AttemptRecord",
    "LeaseHolder",
    "RunInfo",
    "RunStore",
    "Serializer",
    "TaskRecord",
]


# TaskRecord and AttemptRecord are made once or twice per task on the hot
# path, so they are plain slotted dataclasses: a frozen one costs five times
# as much to build (every field goes through object.__setattr__). Treat them
# as values: a store copies what it needs when recording, so changing a
# record afterwards changes nothing stored.


@dataclass(slots=True)
class TaskRecord:
    """The outcome of one task in a run (the latest one recorded).

    ``fingerprint`` is a hash of the task's spec when it ran (None: the spec
    had none, and such a task is never reused). ``output`` is whatever the
    task returned; queries leave it None unless asked for outputs.
    ``attempts`` and ``execution_id`` are filled in by the store on reads
    and ignored when recording.
    """

    task_key: str
    status: str
    fingerprint: str | None
    output: Any
    error: str | None
    started_at: float | None
    ended_at: float | None
    retries: int = 0
    #: Attempts recorded for this task in this run, over all executions.
    attempts: int = 0
    #: The execution that recorded this outcome.
    execution_id: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, when both are known."""
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at


@dataclass(slots=True)
class AttemptRecord:
    """One attempt of one task: ``attempt`` counts from 1 within an execution.

    ``status`` is ``"success"``, ``"failed"`` or ``"timeout"``.
    ``execution_id`` is filled in by the store on reads.
    """

    task_key: str
    attempt: int
    status: str
    error: str | None
    started_at: float
    ended_at: float
    execution_id: str | None = None


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A run as listed for people.

    ``status`` is what the last execution said at ``end_run`` (for example
    ``"completed"`` or ``"failed"``), ``"running"`` while an execution holds
    the run, and ``"interrupted"`` when an execution began and never ended
    (its process died, or the store was closed first). ``succeeded``
    counts outcomes ``"success"``, ``failed`` counts ``"failed"`` and
    ``"timeout"``, ``skipped`` counts ``"skipped"``; ``recorded`` counts
    every task with an outcome.
    """

    run_id: str
    status: str
    created_at: float
    updated_at: float
    finished_at: float | None
    total_tasks: int
    succeeded: int
    failed: int
    executions: int
    skipped: int = 0
    recorded: int = 0
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """Who holds a run: an execution in a process on a host, until ``expires_at``."""

    run_id: str
    execution_id: str
    pid: int
    hostname: str
    expires_at: float

    def describe(self, now: float) -> str:
        left = self.expires_at - now
        return (
            f"execution {self.execution_id} (pid {self.pid} on {self.hostname}; "
            f"lease expires in {left:.1f}s unless renewed)"
        )


class Serializer(Protocol):
    """Turns task outputs (and checkpoint specs and states) into bytes and back.

    ``name`` is written into the database when it is created; opening a
    database with a serializer of another name is refused, so outputs are
    never read back with the wrong decoder.
    """

    @property
    def name(self) -> str: ...

    def dumps(self, obj: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


@runtime_checkable
class RunStore(Protocol):
    """Durable runs and reconciler checkpoints (see the module docstring)."""

    # -- one execution of a run ------------------------------------------------

    async def begin_run(
        self,
        run_id: str,
        execution_id: str,
        *,
        total_tasks: int,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Create or reopen ``run_id`` and claim it for ``execution_id``.

        Raises ``RunLockedError`` when another execution that is still alive
        holds it. Calling it again with the same ``execution_id`` is harmless.
        All or nothing: when it raises (or is cancelled), the run is not
        claimed; the executor ends the run itself if anything fails after it.
        """
        ...

    async def load_successes(self, run_id: str) -> dict[str, tuple[str | None, Any]]:
        """task_key -> (fingerprint, output) of every committed success of the run."""
        ...

    def record_attempt(self, run_id: str, rec: AttemptRecord) -> None:
        """Buffer one attempt; cheap, never does I/O on the caller's thread."""
        ...

    def record_outcome(self, run_id: str, rec: TaskRecord) -> None:
        """Buffer the outcome of a task, replacing any earlier one.

        The output is serialized at once: ``OutputSerializationError`` is
        raised here (and nothing is recorded) when it cannot be.
        """
        ...

    async def flush(self) -> None:
        """Return once everything recorded before the call is committed."""
        ...

    async def end_run(self, run_id: str, execution_id: str, status: str) -> None:
        """Flush, set the run's status and finish time, and release the lease."""
        ...

    # -- queries for people ----------------------------------------------------

    async def list_runs(self, *, limit: int | None = None) -> list[RunInfo]:
        """Runs, newest first."""
        ...

    async def get_run(self, run_id: str) -> RunInfo | None:
        """One run, or None when there is no such run."""
        ...

    async def run_tasks(
        self, run_id: str, *, status: str | None = None, with_outputs: bool = False
    ) -> list[TaskRecord]:
        """The run's task outcomes (the latest of each task), in the order they were recorded."""
        ...

    async def task_attempts(self, run_id: str, task_key: str) -> list[AttemptRecord]:
        """Every attempt of one task in the run, oldest first, over all executions."""
        ...

    async def delete_run(self, run_id: str) -> bool:
        """Delete a run and everything recorded for it; False if there was none."""
        ...

    async def delete_runs(
        self, *, finished_before: datetime, include_unfinished: bool = False
    ) -> int:
        """Delete runs that finished before a time; return how many were deleted."""
        ...

    # -- reconciler checkpoints (0.3.0's protocol, plus deletes) ---------------

    async def save_reconciler_state(
        self, reconciler_id: str, task_id: str, spec: Any, state: Any, deps: Any
    ) -> None:
        """Save one task's checkpoint (``spec=None`` deletes it), committed on return."""
        ...

    async def load_reconciler_state(
        self, reconciler_id: str
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, set[str]]]:
        """(specs, states, deps) of every saved task, as fresh copies."""
        ...

    async def delete_reconciler_task(self, reconciler_id: str, task_id: str) -> None:
        """Forget one task's checkpoint, so a removed task stays removed."""
        ...

    async def close(self) -> None:
        """Flush and release everything; the store cannot be used afterwards."""
        ...
