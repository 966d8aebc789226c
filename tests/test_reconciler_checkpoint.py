"""Checkpointing: what is saved, what start() restores, and what a failing store does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.helpers import leftover_tasks
from wave_executor.reconciler import (
    InMemoryCheckpointStore,
    ReconcileTaskSpec,
    ReconcileTaskState,
    WaveReconciler,
)
from wave_executor.testing import run_virtual


class Calls:
    def __init__(self) -> None:
        self.ids: list[Any] = []

    async def __call__(self, task_id: Any, spec: Any) -> Any:
        self.ids.append(task_id)
        await asyncio.sleep(spec.get("sleep", 0))
        if spec.get("fail"):
            raise RuntimeError("crash")
        return f"out-{task_id}"


TASKS = {"a": {}, "b": {}, "c": {"fail": True}, "d": {}, "long": {"sleep": 1e6}}
DEPS = {"b": {"a"}, "d": {"c"}}


async def first_life(store: InMemoryCheckpointStore) -> None:
    r = WaveReconciler(Calls(), checkpoint_store=store, reconciler_id="svc")
    await r.start()
    await r.update(TASKS, DEPS, policies={"long": "always"}, max_restart_attempts={"c": 0})
    assert await r.wait_until_complete(timeout=5)
    await asyncio.sleep(0.01)
    await r.stop()


async def test_start_restores_desired_state_dependencies_and_outcomes() -> None:
    store = InMemoryCheckpointStore()
    await first_life(store)
    assert sorted(store.task_ids("svc")) == sorted(TASKS)
    calls = Calls()
    r = WaveReconciler(calls, checkpoint_store=store, reconciler_id="svc")
    await r.start()
    await asyncio.sleep(0.01)
    states = r.get_status().task_states
    assert states == {
        "a": "success", "b": "success", "c": "blocked", "d": "skipped", "long": "running",
    }  # fmt: skip
    assert calls.ids == ["long"]  # only the task that was interrupted runs again
    assert r._sup.deps == {"b": ("a",), "d": ("c",)}
    assert r.get_task_state("b").output == "out-b"
    assert r.get_task_state("c").reason is not None and "max_restart_attempts=0" in (
        r.get_task_state("c").reason or ""
    )
    # The restored desired state is live: fixing c's spec runs c and then d.
    await r.update({**TASKS, "c": {}}, DEPS, policies={"long": "always"})
    assert await r.wait_until_complete(timeout=5)
    assert r.get_status().task_states["d"] == "success"
    await r.stop()
    assert await leftover_tasks() == set()


async def test_a_task_given_to_update_before_start_wins_over_the_checkpoint() -> None:
    store = InMemoryCheckpointStore()
    await first_life(store)
    calls = Calls()
    r = WaveReconciler(calls, checkpoint_store=store, reconciler_id="svc")
    await r.update({"a": {"v": 2}})
    await r.start()
    assert r._sup.desired["a"].spec == {"v": 2}
    assert set(r._sup.desired) == set(TASKS)
    await r.stop()


async def test_reconciler_ids_keep_their_checkpoints_apart() -> None:
    store = InMemoryCheckpointStore()
    await first_life(store)
    other = WaveReconciler(Calls(), checkpoint_store=store, reconciler_id="other")
    await other.start()
    assert other.get_status().desired_task_count == 0
    await other.stop()


async def test_saved_entries_are_snapshots_of_the_public_records() -> None:
    store = InMemoryCheckpointStore()
    await first_life(store)
    specs, states, deps = await store.load_reconciler_state("svc")
    assert isinstance(specs["a"], ReconcileTaskSpec) and specs["a"].spec == {}
    assert isinstance(states["a"], ReconcileTaskState)
    assert states["a"].status == "success" and states["a"].last_started is not None
    assert states["long"].status == "pending"  # a shutdown is saved as "run me again"
    assert deps == {"a": set(), "b": {"a"}, "c": set(), "d": {"c"}, "long": set()}


async def test_a_failing_store_is_logged_and_never_breaks_supervision(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(InMemoryCheckpointStore):
        async def save_reconciler_state(self, *args: Any) -> None:
            raise OSError("disk full")

    r = WaveReconciler(Calls(), checkpoint_store=Broken())
    await r.start()
    await r.update({"a": {}, "b": {}}, {"b": {"a"}})
    assert await r.wait_until_complete(timeout=5)
    await r.stop()
    assert "checkpoint of task 'a' failed" in caplog.text and "disk full" in caplog.text
    assert await leftover_tasks() == set()


async def test_a_corrupt_checkpoint_is_refused_at_start() -> None:
    store = InMemoryCheckpointStore()
    spec = ReconcileTaskSpec("a", {})
    await store.save_reconciler_state("x", "a", spec, ReconcileTaskState("a"), {"ghost"})
    r = WaveReconciler(Calls(), checkpoint_store=store, reconciler_id="x")
    with pytest.raises(ValueError, match="'ghost'"):
        await r.start()
    assert not r.running


def test_a_slow_store_gets_coalesced_writes_and_never_delays_restarts() -> None:
    saves: list[tuple[Any, str]] = []
    starts: list[float] = []

    class Slow(InMemoryCheckpointStore):
        async def save_reconciler_state(
            self, rid: str, task_id: Any, spec: Any, state: Any, deps: Any
        ) -> None:
            await asyncio.sleep(10)
            saves.append((task_id, state.status))
            await super().save_reconciler_state(rid, task_id, spec, state, deps)

    async def crashing(task_id: Any, spec: Any) -> None:
        starts.append(asyncio.get_running_loop().time())
        raise RuntimeError("crash")

    async def main() -> None:
        r = WaveReconciler(crashing, checkpoint_store=Slow())
        await r.start()
        await r.update({"t": {}}, max_restart_attempts=50, restart_backoff_base=0)
        await asyncio.sleep(5)
        await r.stop()

    run_virtual(main())
    assert len(starts) == 51 and starts[-1] == 0.0  # restarts did not wait for the store
    assert len(saves) <= 3 and saves[-1] == ("t", "blocked")  # one write per quiet period
