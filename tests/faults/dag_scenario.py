"""A durable DAG run where every call into user code can be made to fail.

The graph has fan-out, fan-in, a task that fails once and is retried, a
task that always fails (its dependent is skipped), groups, a keyed circuit
breaker, a caller-given ``AdaptiveSemaphore``, a custom backend, sync and
async event callbacks, and a SQLite store behind a proxy; each of those is
a *site* that ``Faults.hit`` counts and can make raise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.faults.harness import (
    FATAL,
    Abort,
    Faults,
    open_timers,
    outcome_of,
    pending_tasks,
    run_scenario,
    terminal_counts,
    watch_events,
)
from wave_executor import (
    AdaptiveSemaphore,
    DAGExecutionResult,
    DAGExecutor,
    RetryPolicy,
    WaveConfig,
)
from wave_executor.store import (
    AttemptRecord,
    JsonSerializer,
    RunInfo,
    SQLiteStore,
    StoreError,
    TaskRecord,
)

TASKS: dict[str, dict[str, int]] = {t: {"n": n} for n, t in enumerate("abcdefgh")}
DEPS: dict[str, list[str]] = {
    "b": ["a"],
    "c": ["a"],
    "d": ["b", "c"],
    "f": ["d"],
    "h": ["g"],
}
#: Retries without backoff: the runs are on real time (the store works in a
#: thread, which a virtual clock would jump over).
CONFIG = WaveConfig(
    max_parallel_per_wave=3, retry_policy=RetryPolicy(max_retries=1, base_delay=0.0)
)
GUARD_S = 30.0  # a run that is not back by then hangs


class Flaky(Exception):
    """The scenario's own task failures (not an injected fault)."""


class FaultySerializer:
    """JSON, with a fault site in each method."""

    name = "json"

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._json = JsonSerializer()

    def dumps(self, obj: Any) -> bytes:
        self.faults.hit("serializer.dumps")
        return self._json.dumps(obj)

    def loads(self, data: bytes) -> Any:
        self.faults.hit("serializer.loads")
        return self._json.loads(data)


class FaultyStore:
    """A ``RunStore`` proxy: every method is a fault site, then the real store's."""

    def __init__(self, real: SQLiteStore, faults: Faults) -> None:
        self.real = real
        self.faults = faults

    async def begin_run(
        self,
        run_id: str,
        execution_id: str,
        *,
        total_tasks: int,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.faults.hit("store.begin_run")
        await self.real.begin_run(run_id, execution_id, total_tasks=total_tasks, meta=meta)

    async def load_successes(self, run_id: str) -> dict[str, tuple[str | None, Any]]:
        self.faults.hit("store.load_successes")
        return await self.real.load_successes(run_id)

    def record_attempt(self, run_id: str, rec: AttemptRecord) -> None:
        self.faults.hit("store.record_attempt")
        self.real.record_attempt(run_id, rec)

    def record_outcome(self, run_id: str, rec: TaskRecord) -> None:
        self.faults.hit("store.record_outcome")
        self.real.record_outcome(run_id, rec)

    async def flush(self) -> None:
        self.faults.hit("store.flush")
        await self.real.flush()

    async def end_run(self, run_id: str, execution_id: str, status: str) -> None:
        self.faults.hit("store.end_run")
        await self.real.end_run(run_id, execution_id, status)

    async def list_runs(self, *, limit: int | None = None) -> list[RunInfo]:
        self.faults.hit("store.list_runs")
        return await self.real.list_runs(limit=limit)

    async def get_run(self, run_id: str) -> RunInfo | None:
        self.faults.hit("store.get_run")
        return await self.real.get_run(run_id)

    async def run_tasks(
        self, run_id: str, *, status: str | None = None, with_outputs: bool = False
    ) -> list[TaskRecord]:
        self.faults.hit("store.run_tasks")
        return await self.real.run_tasks(run_id, status=status, with_outputs=with_outputs)

    async def task_attempts(self, run_id: str, task_key: str) -> list[AttemptRecord]:
        self.faults.hit("store.task_attempts")
        return await self.real.task_attempts(run_id, task_key)

    async def delete_run(self, run_id: str) -> bool:
        self.faults.hit("store.delete_run")
        return await self.real.delete_run(run_id)

    async def delete_runs(
        self, *, finished_before: datetime, include_unfinished: bool = False
    ) -> int:
        self.faults.hit("store.delete_runs")
        return await self.real.delete_runs(
            finished_before=finished_before, include_unfinished=include_unfinished
        )

    async def save_reconciler_state(
        self, reconciler_id: str, task_id: str, spec: Any, state: Any, deps: Any
    ) -> None:
        self.faults.hit("store.save_reconciler_state")
        await self.real.save_reconciler_state(reconciler_id, task_id, spec, state, deps)

    async def load_reconciler_state(
        self, reconciler_id: str
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, set[str]]]:
        self.faults.hit("store.load_reconciler_state")
        return await self.real.load_reconciler_state(reconciler_id)

    async def delete_reconciler_task(self, reconciler_id: str, task_id: str) -> None:
        self.faults.hit("store.delete_reconciler_task")
        await self.real.delete_reconciler_task(reconciler_id, task_id)

    async def delete_reconciler_state(self, reconciler_id: str, task_id: str) -> None:
        self.faults.hit("store.delete_reconciler_state")
        await self.real.delete_reconciler_state(reconciler_id, task_id)

    async def close(self) -> None:
        self.faults.hit("store.close")
        await self.real.close()


class FaultySemaphore(AdaptiveSemaphore):
    """A caller's ``specialist_semaphore`` whose every method the engine calls is a site."""

    faults: Faults

    async def __aenter__(self) -> AdaptiveSemaphore:
        self.faults.hit("semaphore.__aenter__")
        return await super().__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.faults.hit("semaphore.__aexit__")
        finally:  # the fault is raised after the slot is given back
            await super().__aexit__(exc_type, exc, tb)

    def record_success(self, admission: Any = None) -> None:
        self.faults.hit("semaphore.record_success")
        super().record_success(admission)

    def record_error(self, exc: BaseException, admission: Any = None) -> bool:
        self.faults.hit("semaphore.record_error")
        return super().record_error(exc, admission)


class FaultyBackend:
    """A backend of the user's own: runs the body in the loop, after a fault site."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults

    def call(self, body: Callable[[Any, Any], Any], task_id: Hashable, spec: Any) -> Awaitable[Any]:
        self.faults.hit("backend.call")
        result: Awaitable[Any] = body(task_id, spec)
        return result


#: Sites where an ordinary exception (Exception, ValueError, CancelledError)
#: must not stop the run: the caller gets a result.
MUST_COMPLETE = frozenset(
    {
        "body.call",
        "body.resume",
        "backend.call",
        "callback.sync",
        "callback.async",
        "circuit_key",
        "store.record_attempt",
        "store.record_outcome",
        "serializer.dumps",
        "semaphore.__aenter__",
        "semaphore.__aexit__",
        "semaphore.record_success",
        "semaphore.record_error",
    }
)
#: Sites called before anything runs, or to claim, restore or release the
#: run: an ordinary exception there may reach the caller.
MAY_RAISE = frozenset(
    {
        "groups",
        "backends",
        "store.list_runs",
        "store.run_tasks",
        "store.begin_run",
        "store.load_successes",
        "serializer.loads",
        "store.end_run",
    }
)
SITES = sorted(MUST_COMPLETE | MAY_RAISE)
#: Called before the run is claimed: a fault there leaves the store as it was.
BEFORE = frozenset({"groups", "backends", "store.list_runs", "store.run_tasks", "store.begin_run"})


class DagFaultRun:
    """One run of the scenario with ``faults``; what the caller saw, then checks."""

    def __init__(self, db: Path, faults: Faults, run_id: str, store: SQLiteStore) -> None:
        self.db = db
        self.faults = faults
        self.run_id = run_id
        self.real = store
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.result: DAGExecutionResult | None = None
        self.raised: BaseException | None = None
        self.left_tasks: set[asyncio.Task[Any]] = set()
        self.left_timers: list[asyncio.TimerHandle] = []
        self.attempts: dict[str, int] = {}

    async def _main(self) -> None:
        faults = self.faults
        attempts = self.attempts

        async def body(task_id: str, spec: Any) -> str:
            faults.hit("body.call")
            attempts[task_id] = attempts.get(task_id, 0) + 1
            await asyncio.sleep(0)
            faults.hit("body.resume")
            if task_id == "g" or (task_id == "e" and attempts[task_id] == 1):
                raise Flaky(f"{task_id} failed")
            return task_id

        def group_of(task_id: str, spec: Any) -> str | None:
            faults.hit("groups")
            return "left" if task_id in ("b", "e") else None

        def key_of(task_id: str, spec: Any) -> str:
            faults.hit("circuit_key")
            return "service"

        backend = FaultyBackend(faults)

        def backend_of(task_id: str, spec: Any) -> Any:
            faults.hit("backends")
            return backend if task_id in ("c", "d", "e") else None

        semaphore = FaultySemaphore(4, slow_start_from=None)
        semaphore.faults = faults
        executor = DAGExecutor(CONFIG)
        executor.on_event(lambda t, e: self.events.append((t, e)))
        watch_events(executor, faults)
        store = FaultyStore(self.real, faults)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(GUARD_S):
                self.result = await executor.execute(
                    TASKS,
                    DEPS,
                    body,
                    specialist_semaphore=semaphore,
                    groups=group_of,
                    circuit_key=key_of,
                    backends=backend_of,
                    store=store,
                    run_id=self.run_id,
                )
        except GeneratorExit:  # the loop was torn down (KeyboardInterrupt): let it close us
            raise
        except BaseException as exc:
            self.raised = exc
        await asyncio.sleep(0)  # let done-callbacks run
        self.left_tasks = pending_tasks(loop)
        self.left_timers = open_timers(loop)
        if isinstance(self.raised, TimeoutError) and faults.fired is not None:
            raise AssertionError(f"the run hung after {faults.fired!r}") from self.raised

    def run(self) -> None:
        run_scenario(self)

    @property
    def outcome(self) -> str:
        return outcome_of(self.faults.fired, self.raised)

    def check_caller(self, site: str) -> None:
        """What reached the caller, by kind and site."""
        fired, raised = self.faults.fired, self.raised
        if fired is None:
            assert raised is None, f"no fault fired, yet the caller got {raised!r}"
            return
        kind = type(fired).__name__
        if kind == "Abort" and site.startswith("callback."):
            kind = "Exception"  # a callback's own BaseException is logged, as any error of it
        if kind in ("KeyboardInterrupt", "SystemExit", "Abort"):
            assert type(raised) is type(fired), f"{kind} at {site} reached the caller as {raised!r}"
            return
        if site in MUST_COMPLETE:
            assert raised is None, f"{fired!r} at {site} reached the caller: {raised!r}"
            assert self.result is not None
            counts = terminal_counts(self.events)
            assert counts == dict.fromkeys(TASKS, 1), f"terminal events: {counts}"
        else:  # the fault itself, or a store error that says what it was
            cause = raised.__cause__ if isinstance(raised, StoreError) else raised
            assert raised is None or type(cause) is type(fired), (
                f"{kind} at {site} reached the caller as {raised!r}"
            )
        assert not self.left_tasks, f"tasks left: {self.left_tasks}"
        assert not self.left_timers, f"timers left: {self.left_timers}"

    def check_store(self, site: str) -> None:
        """The run is not left running, and its successes are resumable."""
        asyncio.run(self._check_store(site))

    async def _check_store(self, site: str) -> None:
        info = await self.real.get_run(self.run_id)
        if info is None:  # never claimed (begin_run failed, or nothing ran)
            return
        if site == "store.end_run" and self.faults.fired is not None:
            # The store never heard of the end: it holds the run until it is
            # closed, which marks it "interrupted".
            assert info.status == "running"
            return
        assert info.status != "running", f"the run is left {info.status!r}"
        if type(self.raised) in (KeyboardInterrupt, SystemExit, Abort) and site not in BEFORE:
            # Recorded as interrupted before the exception reached the caller; but
            # an async callback may raise it while the last events are delivered,
            # every task ended: that run is recorded as what it was, completed.
            ended = site == "callback.async" and info.status == "completed"
            assert info.status == "interrupted" or ended, f"{self.raised!r}: {info.status!r}"
        statuses = {r.task_key: r.status for r in await self.real.run_tasks(self.run_id)}
        assert "running" not in statuses.values()
        expected: set[str] = set()
        for task_id in TASKS:  # insertion order is a topological order here
            if statuses.get(task_id) == "success" and all(
                d in expected for d in DEPS.get(task_id, ())
            ):
                expected.add(task_id)
        called: list[str] = []

        async def body(task_id: str, spec: Any) -> str:
            called.append(task_id)
            return task_id

        result = await DAGExecutor(WaveConfig(max_retries=0)).execute(
            TASKS, DEPS, body, store=self.real, run_id=self.run_id
        )
        assert set(result.restored) == expected
        assert set(called) == set(TASKS) - expected
        assert result.succeeded


def fresh_store(db: Path) -> tuple[SQLiteStore, FaultySerializer]:
    """A store whose serializer is a fault site (set ``serializer.faults`` per run)."""
    serializer = FaultySerializer(Faults())
    return SQLiteStore(db, serializer=serializer), serializer


__all__ = ["FATAL", "MAY_RAISE", "MUST_COMPLETE", "SITES", "DagFaultRun", "fresh_store"]
