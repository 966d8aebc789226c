"""Every reconciler defect of 0.3.0 listed in the spec, each with a test 0.3.0 fails.

Each docstring says what 0.3.0 does (reproduced with 0.3.0 from PyPI).
Timing runs on the virtual clock, so "zero latency" is exact, not a guess.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tests.helpers import Recorder, leftover_tasks
from wave_executor import WaveCircularDependencyError, WaveConfig
from wave_executor.reconciler import (
    InMemoryCheckpointStore,
    ReconcileTaskSpec,
    ReconcileTaskState,
    WaveReconciler,
)
from wave_executor.testing import run_virtual


class Starts:
    """A body that records when each task started (virtual time) and obeys its spec."""

    def __init__(self) -> None:
        self.at: list[tuple[Any, float]] = []

    async def __call__(self, task_id: Any, spec: Any) -> Any:
        loop = asyncio.get_running_loop()
        self.at.append((task_id, loop.time()))
        spec = spec if isinstance(spec, dict) else {}
        await asyncio.sleep(spec.get("sleep", 0))
        if spec.get("fail"):
            raise RuntimeError(f"{task_id} crashed")
        return task_id


def test_a_dependent_starts_the_moment_its_upstream_succeeds() -> None:
    """0.3.0 reacts on its 2 s poll tick only: a 300-link chain takes ~600 s."""
    starts = Starts()

    async def main() -> bool:
        r = WaveReconciler(starts)  # default poll_interval_s=2.0
        await r.start()
        chain = {i: {"sleep": 0.5} for i in range(300)}
        await r.update(chain, {i: {i - 1} for i in range(1, 300)})
        ok = await r.wait_until_complete(timeout=3600)
        await r.stop()
        return ok

    ok, elapsed = run_virtual(main())
    assert ok
    assert elapsed == pytest.approx(150.0)  # 300 x 0.5 s of work and not a tick more
    assert [t for _, t in starts.at] == pytest.approx([i * 0.5 for i in range(300)])


def test_update_starts_a_new_task_at_once() -> None:
    """0.3.0 starts tasks added by update() on its next poll tick (up to 2 s later)."""
    starts = Starts()

    async def main() -> float:
        r = WaveReconciler(starts)
        await r.start()
        await asyncio.sleep(0.7)  # between two ticks
        added_at = asyncio.get_running_loop().time()
        await r.update({"new": {"sleep": 1000}})
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        await r.stop()
        return added_at

    added_at, _ = run_virtual(main())
    assert starts.at == [("new", added_at)]


def test_wait_until_complete_is_false_while_a_restart_is_pending() -> None:
    """0.3.0 returns True while an on-failure task waits for its restart."""
    attempts: list[float] = []

    async def flaky(task_id: str, spec: Any) -> str:
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) == 1:
            raise RuntimeError("first run crashes")
        return "ok"

    async def main() -> tuple[bool, str]:
        r = WaveReconciler(flaky)
        await r.start()
        await r.update({"t": {}}, policies={"t": "on-failure"})
        ok = await r.wait_until_complete(timeout=60)
        status = r.get_status().task_states["t"]
        await r.stop()
        return ok, status

    (ok, status), elapsed = run_virtual(main())
    assert ok and status == "success"
    assert attempts == [0.0, 3.0] and elapsed == pytest.approx(3.0)


def test_backoff_counts_from_the_crash_not_from_the_start() -> None:
    """0.3.0 measures backoff from the last start: a task that crashed after running
    10 s restarted at once."""
    starts = Starts()

    async def main() -> str:
        r = WaveReconciler(starts)
        await r.start()
        await r.update({"t": {"sleep": 10, "fail": True}}, max_restart_attempts={"t": 2})
        await asyncio.sleep(100)
        status = r.get_status().task_states["t"]
        await r.stop()
        return status

    status, _ = run_virtual(main())
    # run 1: 0-10, crash; +3 s -> run 2: 13-23, crash; +6 s -> run 3: 29-39, then blocked.
    assert [t for _, t in starts.at] == [0.0, 13.0, 29.0]
    assert status == "blocked"


def test_stop_admits_no_queued_task() -> None:
    """0.3.0 lets tasks queued behind its semaphore enter the executor during stop()."""
    starts = Starts()

    async def main() -> None:
        r = WaveReconciler(starts, WaveConfig(max_parallel_per_wave=1))
        await r.start()
        await r.update({"a": {"sleep": 5}, "b": {}, "c": {}})
        await asyncio.sleep(1)
        await r.stop()
        await asyncio.sleep(100)  # nothing wakes up later either
        assert r.get_status().task_states == {"a": "stopped", "b": "pending", "c": "pending"}
        assert await leftover_tasks() == set()

    run_virtual(main())
    assert [t for t, _ in starts.at] == ["a"]


def test_dependents_of_a_task_that_failed_for_good_do_not_wait_forever() -> None:
    """0.3.0 leaves them "pending" forever, so wait_until_complete() times out."""
    starts = Starts()

    async def main() -> tuple[bool, dict[Any, str]]:
        r = WaveReconciler(starts)
        await r.start()
        await r.update(
            {"up": {"fail": True}, "down": {}, "further": {}},
            {"down": {"up"}, "further": {"down"}},
            max_restart_attempts={"up": 1},
            restart_backoff_base=1.0,
        )
        ok = await r.wait_until_complete(timeout=300)
        states = dict(r.get_status().task_states)
        await r.stop()
        return ok, states

    (ok, states), elapsed = run_virtual(main())
    assert ok and elapsed == pytest.approx(1.0)
    assert states == {"up": "blocked", "down": "skipped", "further": "skipped"}


def test_a_healthy_always_task_is_never_blocked() -> None:
    """0.3.0 marks an "always" task "blocked" after max_restart_attempts *successful* runs."""
    starts = Starts()

    async def main() -> str:
        r = WaveReconciler(starts)
        await r.start()
        policies, attempts = {"tick": "always"}, {"tick": 5}
        await r.update({"tick": {"sleep": 1}}, policies=policies, max_restart_attempts=attempts)
        await asyncio.sleep(4 * 20)  # a 1 s run, then 3 s before the next one
        status = r.get_status().task_states["tick"]
        await r.stop()
        return status

    assert run_virtual(main())[0] in ("running", "success")
    assert len(starts.at) == 20


def test_supervised_tasks_are_not_killed_by_the_dag_task_timeout() -> None:
    """0.3.0 applies default_task_timeout (120 s) to reconciler tasks and kills them."""

    async def main() -> str:
        r = WaveReconciler(Starts())  # WaveConfig() has default_task_timeout=120
        await r.start()
        await r.update({"worker": {"sleep": 3600}}, policies={"worker": "no"})
        assert await r.wait_until_complete(timeout=7200)
        status = r.get_status().task_states["worker"]
        await r.stop()
        return status

    assert run_virtual(main())[0] == "success"


async def test_an_in_memory_checkpoint_store_ships_and_shares_no_live_object() -> None:
    """0.3.0 documents a checkpoint store but ships none; a hand-written one that keeps
    what it is given shares live objects with the reconciler."""
    store = InMemoryCheckpointStore()
    r = WaveReconciler(Starts(), checkpoint_store=store, reconciler_id="r1")
    spec = {"config": {"port": 1}}
    await r.start()
    await r.update({"a": spec})
    assert await r.wait_until_complete(timeout=5)
    await r.stop()
    spec["config"]["port"] = 2  # the caller mutates its own object afterwards
    specs, states, _ = await store.load_reconciler_state("r1")
    assert specs["a"].spec == {"config": {"port": 1}}
    assert states["a"].status == "success"
    specs["a"].spec["config"]["port"] = 3  # and what a load returns is a copy too
    again, _, _ = await store.load_reconciler_state("r1")
    assert again["a"].spec == {"config": {"port": 1}}


async def test_removed_tasks_do_not_come_back_after_a_restart() -> None:
    """0.3.0 never deletes removed tasks from the store: a new reconciler restores them."""
    store = InMemoryCheckpointStore()
    first = WaveReconciler(Starts(), checkpoint_store=store)
    await first.start()
    await first.update({"keep": {}, "gone": {}})
    await first.update({"keep": {}})
    await first.stop()
    second = WaveReconciler(Starts(), checkpoint_store=store)
    await second.start()
    assert set(second.get_status().task_states) == {"keep"}
    await second.stop()


async def test_an_unknown_dependency_is_a_value_error_naming_it() -> None:
    """0.3.0 raises a cycle error with no members when a dependency key is unknown."""
    r = WaveReconciler(Starts())
    with pytest.raises(ValueError, match="'ghost'") as info:
        await r.update({"a": 1}, {"ghost": {"a"}})
    assert not isinstance(info.value, WaveCircularDependencyError)


async def test_sync_callbacks_work_and_on_event_returns_the_callback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """0.3.0 awaits sync callbacks (a TypeError logged per event) and on_event returns None."""
    caplog.set_level(logging.DEBUG)
    r = WaveReconciler(Starts())
    rec = Recorder()
    assert r.on_event(rec) is rec
    await r.start()
    await r.update({"a": {}})
    assert await r.wait_until_complete(timeout=5)
    await r.stop()
    assert "TASK_COMPLETED" in rec.types("a")
    assert "TypeError" not in caplog.text and "ERROR" not in caplog.text


async def test_a_0_3_0_style_store_without_delete_forgets_removed_tasks() -> None:
    """A store written for 0.3.0 has only save/load: removal is saved as spec=None."""

    class Plain:
        def __init__(self) -> None:
            self.rows: dict[Any, tuple[Any, Any, Any]] = {}

        async def save_reconciler_state(
            self, rid: str, task_id: Any, spec: Any, state: Any, deps: Any
        ) -> None:
            self.rows[task_id] = (spec, state, deps)

        async def load_reconciler_state(self, rid: str) -> tuple[Any, Any, Any]:
            return (
                {t: row[0] for t, row in self.rows.items()},
                {t: row[1] for t, row in self.rows.items()},
                {t: row[2] for t, row in self.rows.items()},
            )

    store = Plain()
    r = WaveReconciler(Starts(), checkpoint_store=store)
    await r.start()
    await r.update({"a": {}, "b": {}})
    await r.update({"a": {}})
    await r.stop()
    assert store.rows["b"][0] is None
    assert isinstance(store.rows["a"][0], ReconcileTaskSpec)
    assert isinstance(store.rows["a"][1], ReconcileTaskState)
    r2 = WaveReconciler(Starts(), checkpoint_store=store)
    await r2.start()
    assert set(r2.get_status().task_states) == {"a"}
    await r2.stop()
