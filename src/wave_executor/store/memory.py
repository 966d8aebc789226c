"""``MemoryStore``: the ``RunStore`` protocol in a process's memory, for tests.

It behaves like ``SQLiteStore`` in everything but durability: the same
errors, the same latest-outcome-wins rule, the same lease refusal for two
executions of one run. What it keeps is a copy: outputs and checkpoints
go through the serializer (JSON by default, so an output that a SQLite
store would refuse is refused here too), or ``copy.deepcopy`` with
``serializer=None``. Nothing the caller holds is ever shared with it.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

from wave_executor._core.store_protocol import (
    AttemptRecord,
    LeaseHolder,
    RunInfo,
    Serializer,
    TaskRecord,
)
from wave_executor.store.errors import (
    OutputSerializationError,
    RunLockedError,
    RunNotActiveError,
    SerializationError,
    StoreClosedError,
    StoreCorruptError,
    as_key,
)
from wave_executor.store.leases import HOSTNAME
from wave_executor.store.serializers import JsonSerializer

__all__ = ["MemoryStore"]

_DEFAULT = JsonSerializer()


@dataclass(slots=True)
class _Run:
    created_at: float
    updated_at: float
    total_tasks: int
    meta: dict[str, Any]
    status: str = "running"
    finished_at: float | None = None
    holder: str | None = None
    executions: dict[str, str] = field(default_factory=dict)  # execution_id -> status
    # task_key -> (status, fingerprint, stored output, error, started_at, ended_at,
    # retries, execution_id): tuples, as cheap to keep as SQLite rows are to buffer.
    tasks: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    # task_key -> [(attempt, status, error, started_at, ended_at, execution_id)]
    attempts: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)


class MemoryStore:
    """A ``RunStore`` that lives and dies with the process (see the module docstring)."""

    def __init__(self, *, serializer: Serializer | None = _DEFAULT) -> None:
        self.serializer = serializer
        self._runs: dict[str, _Run] = {}
        self._checkpoints: dict[str, dict[str, tuple[Any, Any, frozenset[str]]]] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryStore(serializer={self.serializer!r})"

    # -- copies -----------------------------------------------------------------

    def _store(self, value: Any) -> Any:
        if self.serializer is None:
            return copy.deepcopy(value)
        return self.serializer.dumps(value)

    def _load(self, stored: Any, what: str) -> Any:
        if self.serializer is None:
            return copy.deepcopy(stored)
        try:
            return self.serializer.loads(stored)
        except Exception as exc:  # pragma: no cover - only a broken custom serializer
            raise StoreCorruptError(f"cannot read back {what}: {exc!r}") from exc

    def _name(self) -> str:
        return "deepcopy" if self.serializer is None else self.serializer.name

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the MemoryStore is closed")

    def _not_active(self, run_id: str) -> Exception:
        self._check_open()
        return RunNotActiveError(run_id)

    @staticmethod
    def _holder(run_id: str, execution_id: str) -> LeaseHolder:
        return LeaseHolder(run_id, execution_id, os.getpid(), HOSTNAME, math.inf)

    # -- one execution of a run -------------------------------------------------

    async def begin_run(
        self,
        run_id: str,
        execution_id: str,
        *,
        total_tasks: int,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self._check_open()
        run_id, execution_id = as_key(run_id, "run_id"), as_key(execution_id, "execution_id")
        try:
            meta_copy = None if meta is None else json.loads(json.dumps(dict(meta)))
        except (TypeError, ValueError) as exc:
            raise SerializationError(f"the meta of run {run_id!r} is not JSON: {exc}") from exc
        now = time.time()
        run = self._runs.get(run_id)
        if run is None:
            run = self._runs[run_id] = _Run(now, now, total_tasks, meta_copy or {})
        elif run.holder is not None and run.holder != execution_id:
            raise RunLockedError(run_id, self._holder(run_id, run.holder))
        for other, status in run.executions.items():
            if status == "running" and other != execution_id:
                run.executions[other] = "interrupted"
        run.holder = execution_id
        run.status, run.finished_at, run.updated_at = "running", None, now
        run.total_tasks = total_tasks
        if meta_copy is not None:
            run.meta = meta_copy
        run.executions.setdefault(execution_id, "running")

    async def load_successes(self, run_id: str) -> dict[str, tuple[str | None, Any]]:
        self._check_open()
        run = self._runs.get(run_id)
        if run is None:
            return {}
        return {
            key: (row[1], self._load(row[2], f"the output of task {key!r}"))
            for key, row in run.tasks.items()
            if row[0] == "success"
        }

    def record_attempt(self, run_id: str, rec: AttemptRecord) -> None:
        run = self._runs.get(run_id)
        if run is None or run.holder is None or self._closed:
            raise self._not_active(run_id)
        key = rec.task_key if type(rec.task_key) is str else as_key(rec.task_key)
        row = (rec.attempt, str(rec.status), rec.error, rec.started_at, rec.ended_at, run.holder)
        attempts = run.attempts.get(key)
        if attempts is None:
            run.attempts[key] = [row]
        else:
            attempts.append(row)
        run.updated_at = time.time()

    def record_outcome(self, run_id: str, rec: TaskRecord) -> None:
        run = self._runs.get(run_id)
        if run is None or run.holder is None or self._closed:
            raise self._not_active(run_id)
        key = rec.task_key if type(rec.task_key) is str else as_key(rec.task_key)
        try:
            output = self._store(rec.output)
        except Exception as exc:
            raise OutputSerializationError(run_id, key, rec.output, self._name(), str(exc)) from exc
        run.tasks[key] = (
            str(rec.status), rec.fingerprint, output, rec.error, rec.started_at, rec.ended_at,
            rec.retries, run.holder,
        )  # fmt: skip
        run.updated_at = time.time()

    async def flush(self) -> None:
        """Nothing is buffered: records are kept the moment they are made."""
        self._check_open()

    async def end_run(self, run_id: str, execution_id: str, status: str) -> None:
        self._check_open()
        run = self._runs.get(run_id)
        if run is None:
            return
        if execution_id in run.executions:
            run.executions[execution_id] = str(status)
        if run.holder == execution_id:
            now = time.time()
            run.holder, run.status = None, str(status)
            run.finished_at = run.updated_at = now

    # -- queries for people -------------------------------------------------------

    def _info(self, run_id: str, run: _Run) -> RunInfo:
        counts: dict[str, int] = {}
        for row in run.tasks.values():
            counts[row[0]] = counts.get(row[0], 0) + 1
        return RunInfo(
            run_id=run_id,
            status=run.status,
            created_at=run.created_at,
            updated_at=run.updated_at,
            finished_at=run.finished_at,
            total_tasks=run.total_tasks,
            succeeded=counts.get("success", 0),
            failed=counts.get("failed", 0) + counts.get("timeout", 0),
            executions=len(run.executions),
            skipped=counts.get("skipped", 0),
            recorded=len(run.tasks),
            meta=copy.deepcopy(run.meta),
        )

    async def list_runs(self, *, limit: int | None = None) -> list[RunInfo]:
        self._check_open()
        ordered = sorted(self._runs.items(), key=lambda item: (-item[1].created_at, item[0]))
        return [self._info(run_id, run) for run_id, run in ordered[:limit]]

    async def get_run(self, run_id: str) -> RunInfo | None:
        self._check_open()
        run = self._runs.get(run_id)
        return None if run is None else self._info(run_id, run)

    async def run_tasks(
        self, run_id: str, *, status: str | None = None, with_outputs: bool = False
    ) -> list[TaskRecord]:
        self._check_open()
        run = self._runs.get(run_id)
        if run is None:
            return []
        return [
            TaskRecord(
                task_key=key,
                status=row[0],
                fingerprint=row[1],
                output=self._load(row[2], f"the output of task {key!r}") if with_outputs else None,
                error=row[3],
                started_at=row[4],
                ended_at=row[5],
                retries=row[6],
                attempts=len(run.attempts.get(key, ())),
                execution_id=row[7],
            )
            for key, row in run.tasks.items()
            if status is None or row[0] == status
        ]

    async def task_attempts(self, run_id: str, task_key: str) -> list[AttemptRecord]:
        self._check_open()
        run = self._runs.get(run_id)
        rows = () if run is None else run.attempts.get(task_key, ())
        return [AttemptRecord(task_key, *row) for row in rows]

    async def delete_run(self, run_id: str) -> bool:
        self._check_open()
        run = self._runs.get(run_id)
        if run is None:
            return False
        if run.holder is not None:
            raise RunLockedError(run_id, self._holder(run_id, run.holder), action="delete")
        del self._runs[run_id]
        return True

    async def delete_runs(
        self, *, finished_before: datetime, include_unfinished: bool = False
    ) -> int:
        self._check_open()
        cutoff = finished_before.timestamp()
        doomed = [
            run_id
            for run_id, run in self._runs.items()
            if run.holder is None
            and (
                (run.finished_at is not None and run.finished_at < cutoff)
                or (include_unfinished and run.finished_at is None and run.updated_at < cutoff)
            )
        ]
        for run_id in doomed:
            del self._runs[run_id]
        return len(doomed)

    async def vacuum(self) -> int:
        """``SQLiteStore.vacuum``'s twin: deleted runs are already gone from memory."""
        self._check_open()
        return 0

    # -- reconciler checkpoints ---------------------------------------------------

    async def save_reconciler_state(
        self, reconciler_id: str, task_id: str, spec: Any, state: Any, deps: Any
    ) -> None:
        self._check_open()
        task_id = as_key(task_id, "reconciler task id")
        if spec is None:
            await self.delete_reconciler_task(reconciler_id, task_id)
            return
        try:
            entry = (self._store(spec), self._store(state))
        except Exception as exc:
            raise SerializationError(
                f"the checkpoint of task {task_id!r} of reconciler {reconciler_id!r} cannot "
                f"be stored with the {self._name()} serializer: {exc}"
            ) from exc
        dep_ids = frozenset(as_key(d, "dependency id") for d in (deps or ()))
        tasks = self._checkpoints.setdefault(reconciler_id, {})
        tasks.pop(task_id, None)  # re-insert: load order is save order, as in SQLite
        tasks[task_id] = (*entry, dep_ids)

    async def load_reconciler_state(
        self, reconciler_id: str
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, set[str]]]:
        self._check_open()
        specs: dict[str, Any] = {}
        states: dict[str, Any] = {}
        deps: dict[str, set[str]] = {}
        for task_id, (spec, state, dep_ids) in self._checkpoints.get(reconciler_id, {}).items():
            what = f"the checkpoint of task {task_id!r}"
            specs[task_id] = self._load(spec, what)
            states[task_id] = self._load(state, what)
            deps[task_id] = set(dep_ids)
        return specs, states, deps

    async def delete_reconciler_task(self, reconciler_id: str, task_id: str) -> None:
        self._check_open()
        self._checkpoints.get(reconciler_id, {}).pop(task_id, None)

    #: The name the 0.3.0-style checkpoint writer looks for.
    delete_reconciler_state = delete_reconciler_task

    # -- lifecycle ----------------------------------------------------------------

    async def close(self) -> None:
        """Runs still held were never ended: they become interrupted."""
        if self._closed:
            return
        for run in self._runs.values():
            if run.holder is not None:
                run.executions[run.holder] = "interrupted"
                run.holder, run.status = None, "interrupted"
        self._closed = True

    async def __aenter__(self) -> MemoryStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
