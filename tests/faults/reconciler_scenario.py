"""A checkpointed ``WaveReconciler`` life where every call into user code can fail.

The life: ``update()`` three tasks (one depends on another, one fails once
and is restarted), ``start()``, wait until complete, a hot ``update()``
(one spec changed, one task removed, one added), wait, ``stop()``. The
sites are the task body (its call and after its first ``await``), a sync
and an async event callback, and the checkpoint methods of a SQLite store
behind the proxy of ``dag_scenario``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from tests.faults.dag_scenario import FaultyStore
from tests.faults.harness import (
    Faults,
    open_timers,
    outcome_of,
    pending_tasks,
    run_scenario,
    watch_events,
)
from wave_executor import WaveReconciler
from wave_executor.store import ReconcilerCheckpoints, SQLiteStore

GUARD_S = 30.0
FIRST = {"a": {"v": 1}, "b": {"v": 1}, "c": {"v": 1}}
FIRST_DEPS = {"b": ["a"]}
SECOND = {"a": {"v": 1}, "c": {"v": 2}, "d": {"v": 1}}
SECOND_DEPS = {"d": ["a"]}

#: Sites where an ordinary exception must not reach the caller: the reconciler
#: restarts a failed body, logs a failed callback or checkpoint.
MUST_CONTINUE = frozenset(
    {
        "body.call",
        "body.resume",
        "callback.sync",
        "callback.async",
        "store.save_reconciler_state",
        "store.delete_reconciler_task",
    }
)
#: Restoring at the first start reads the store: a failure there is the caller's.
MAY_RAISE = frozenset({"store.load_reconciler_state"})
BODY_OR_CALLBACK = frozenset({"body.call", "body.resume", "callback.sync", "callback.async"})
SITES = sorted(MUST_CONTINUE | MAY_RAISE)
EXITS = ("TASK_COMPLETED", "TASK_FAILED", "TASK_STOPPED")


class ReconcilerFaultRun:
    """One life of the reconciler with ``faults``; what the caller saw, then checks."""

    def __init__(self, store: SQLiteStore, faults: Faults, rid: str) -> None:
        self.real = store
        self.faults = faults
        self.rid = rid
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.raised: BaseException | None = None
        self.left_tasks: set[asyncio.Task[Any]] = set()
        self.left_timers: list[asyncio.TimerHandle] = []
        self.running_after_stop = False
        self.states: dict[Any, str] = {}

    async def _main(self) -> None:
        faults = self.faults
        runs: Counter[str] = Counter()

        async def body(task_id: str, spec: Any) -> str:
            faults.hit("body.call")
            runs[task_id] += 1
            await asyncio.sleep(0)
            faults.hit("body.resume")
            if task_id == "c" and runs[task_id] == 1:
                raise ConnectionError("c failed")
            return task_id

        store = ReconcilerCheckpoints(FaultyStore(self.real, faults))
        r = WaveReconciler(
            body, poll_interval_s=0.5, checkpoint_store=store, reconciler_id=self.rid
        )
        r.on_event(lambda t, e: self.events.append((t, e)))
        watch_events(r, faults)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(GUARD_S):
                try:
                    await r.update(FIRST, FIRST_DEPS, restart_backoff_base=0.001)
                    await r.start()
                    await r.wait_until_complete(timeout=GUARD_S)
                    await r.update(SECOND, SECOND_DEPS, restart_backoff_base=0.001)
                    await r.wait_until_complete(timeout=GUARD_S)
                finally:
                    await r.stop()
        except GeneratorExit:  # the loop was torn down (KeyboardInterrupt): let it close us
            raise
        except BaseException as exc:
            self.raised = exc
        self.running_after_stop = r.running
        self.states = {t: str(s) for t, s in r.get_status().task_states.items()}
        await asyncio.sleep(0)
        self.left_tasks = pending_tasks(loop)
        self.left_timers = open_timers(loop)
        if isinstance(self.raised, TimeoutError) and faults.fired is not None:
            raise AssertionError(f"the reconciler hung after {faults.fired!r}") from self.raised

    def run(self) -> None:
        run_scenario(self)

    @property
    def outcome(self) -> str:
        return outcome_of(self.faults.fired, self.raised).replace("run completed", "life completed")

    def check(self, site: str) -> None:
        fired, raised = self.faults.fired, self.raised
        assert fired is not None
        kind = type(fired).__name__
        if kind == "Abort" and site in BODY_OR_CALLBACK:
            # A body's own BaseException is its run's failure (restarted by policy);
            # a callback's is logged, as any callback error.
            kind = "Exception"
        elif kind in ("KeyboardInterrupt", "SystemExit", "Abort"):
            assert type(raised) is type(fired), f"{kind} at {site} reached the caller as {raised!r}"
            return
        if site in MUST_CONTINUE:
            assert raised is None, f"{kind} at {site} reached the caller: {raised!r}"
            assert self.states == {"a": "success", "b": "stopped", "c": "success", "d": "success"}
            check_runs(self.events)
        else:
            assert raised is None or type(raised) is type(fired), (
                f"{kind} at {site} reached the caller as {raised!r}"
            )
        assert not self.running_after_stop
        assert not self.left_tasks, f"tasks left: {self.left_tasks}"
        assert not self.left_timers, f"timers left: {self.left_timers}"

    def check_store(self) -> None:
        """What the store holds after stop() is what the reconciler knew (when it could write)."""
        if self.faults.site in ("store.save_reconciler_state", "store.delete_reconciler_task"):
            return  # a lost checkpoint write is logged: the store may lag behind
        if self.raised is not None:
            return

        async def load() -> Any:
            return await self.real.load_reconciler_state(self.rid)

        specs, _, _ = asyncio.run(load())
        assert set(specs) == {"a", "c", "d"}


def check_runs(events: list[tuple[str, dict[str, Any]]]) -> None:
    """Each run started ends with exactly one exit event, and no run is left."""
    running: set[Any] = set()
    for event_type, event in events:
        task_id = event["task_id"]
        if event_type == "TASK_STARTED":
            assert task_id not in running, f"{task_id!r} started twice"
            running.add(task_id)
        elif event_type in EXITS and task_id in running:
            running.discard(task_id)
        elif event_type in ("TASK_COMPLETED", "TASK_FAILED"):
            raise AssertionError(f"{task_id!r} ended without running")
    assert not running, f"runs without an end: {running}"


def open_store(db: Path) -> SQLiteStore:
    return SQLiteStore(db)
