"""WaveReconciler against task bodies that swallow cancellation.

``stop()`` must come back (or say who holds it up), ``update()`` and per-task
timeouts must not be held by one bad task, and no run is ever lost. All on
the virtual clock: the 20 s a stubborn body holds out take no real time.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tests.helpers import Recorder, Stubborn, leftover_tasks
from wave_executor.reconciler import WaveReconciler
from wave_executor.testing import run_virtual


class Bodies:
    """Dispatches by task id; "ticker" returns after 1 s, others sleep; logs every start."""

    def __init__(self, **special: Any) -> None:
        self.special = special
        self.starts: list[tuple[Any, float]] = []

    def started(self, task_id: Any, since: float = -1.0, until: float = float("inf")) -> int:
        return sum(1 for t, at in self.starts if t == task_id and since <= at <= until)

    async def __call__(self, task_id: Any, spec: Any) -> Any:
        self.starts.append((task_id, asyncio.get_running_loop().time()))
        if task_id in self.special:
            return await self.special[task_id](task_id, spec)
        await asyncio.sleep(1 if task_id == "ticker" else 1000)
        return task_id


def test_stop_returns_when_a_body_yields_to_the_second_cancellation() -> None:
    once = Stubborn(swallow=1)
    rec = Recorder()

    async def main() -> tuple[dict[Any, str], set[asyncio.Task[Any]]]:
        r = WaveReconciler(Bodies(bad=once))
        r.on_event(rec)
        await r.start()
        await r.update({"bad": {}, "calm": {}})
        await asyncio.sleep(0.5)
        async with asyncio.timeout(60):  # the old stop() waited here forever
            await r.stop()
        return r.get_status().task_states, await leftover_tasks()

    (states, left), elapsed = run_virtual(main())
    assert states == {"bad": "stopped", "calm": "stopped"}
    assert left == set()
    assert len(once.cancels) == 2 and once.cancels[1] - once.cancels[0] == pytest.approx(1.0)
    assert elapsed == pytest.approx(1.5)  # 0.5 s running, then one re-cancel period
    assert [e["reason"] for e in rec.of("TASK_STOPPED")] == ["reconciler_stopped"] * 2


def test_stop_with_a_timeout_names_the_stuck_task_and_a_later_stop_finishes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="wave_executor")
    stubborn = Stubborn(refuse_for=20)
    rec = Recorder()

    async def main() -> None:
        r = WaveReconciler(Bodies(stuck=stubborn))
        r.on_event(rec)
        await r.start()
        await r.update({"stuck": {}, "calm": {}})
        await asyncio.sleep(0.5)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(TimeoutError) as caught:
            await r.stop(timeout=1)
        assert loop.time() - t0 == pytest.approx(1.0)
        message = str(caught.value)
        assert "stop() timed out after 1 s" in message and "'stuck'" in message
        assert "'calm'" not in message  # it did stop
        assert r.get_status().task_states == {"stuck": "running", "calm": "stopped"}
        assert not r.running and "RECONCILER_STOPPED" not in rec.types()
        assert "still running" not in caplog.text  # not yet 5 s late

        with pytest.raises(TimeoutError, match="'stuck'"):  # still tracked, still stuck
            await r.stop(timeout=2)
        await r.stop()  # no timeout: waits as long as it takes
        assert stubborn.ended == pytest.approx(t0 + 20)
        assert loop.time() == pytest.approx(t0 + 20)
        # cancelled again every second (and by each stop() call), not just once
        gaps = [b - a for a, b in zip(stubborn.cancels, stubborn.cancels[1:], strict=False)]
        assert len(stubborn.cancels) >= 21 and max(gaps) == pytest.approx(1.0)
        assert r.get_status().task_states == {"stuck": "stopped", "calm": "stopped"}
        assert await leftover_tasks() == set()

    run_virtual(main())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [w.getMessage() for w in warnings] == [
        "reconciler 'default': task 'stuck' is still running 5 s after it was cancelled "
        "(reconciler_stopped); it swallows cancellation, cancelling it again every 1 s"
    ]
    assert "task 'stuck' ended 20 s after it was cancelled" in caplog.text
    types = rec.types()
    assert types.count("RECONCILER_STOPPED") == 1 and types[-1] == "RECONCILER_STOPPED"
    stopped = [e for e in rec.of("TASK_STOPPED") if e["task_id"] == "stuck"]
    assert [e["reason"] for e in stopped] == ["reconciler_stopped"]


def test_update_removing_a_stuck_task_holds_neither_the_caller_nor_other_tasks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="wave_executor")
    stubborn = Stubborn(refuse_for=20)
    bodies = Bodies(stuck=stubborn)
    rec = Recorder()
    policies, base = {"ticker": "always"}, {"ticker": 1.0}

    async def main() -> None:
        r = WaveReconciler(bodies)
        r.on_event(rec)
        await r.start()
        await r.update({"stuck": {}, "ticker": {}}, policies=policies, restart_backoff_base=base)
        await asyncio.sleep(0.5)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await r.update({"ticker": {}, "new": {}}, policies=policies, restart_backoff_base=base)
        assert loop.time() - t0 == pytest.approx(5.0)  # the old update() waited 20 s
        assert bodies.started("new", until=t0) == 1  # started at once, during update()
        state = r.get_task_state("stuck")
        assert (state.status, state.reason) == ("running", "removed_from_desired")
        assert "task 'stuck' is still running 5 s after it was cancelled" in caplog.text
        assert "(removed_from_desired)" in caplog.text

        await asyncio.sleep(t0 + 25 - loop.time())
        assert stubborn.ended == pytest.approx(t0 + 20)
        # the ticker kept being restarted (every 2 s) while "stuck" refused to die
        assert bodies.started("ticker", since=t0, until=t0 + 20) >= 9
        assert r.get_status().task_states["stuck"] == "stopped"
        stopped = [e for e in rec.of("TASK_STOPPED") if e["task_id"] == "stuck"]
        assert [e["reason"] for e in stopped] == ["removed_from_desired"]
        async with asyncio.timeout(10):
            await r.stop()
        assert await leftover_tasks() == set()

    run_virtual(main())


def test_a_changed_spec_restarts_a_stuck_task_once_its_old_run_ends() -> None:
    stubborn = Stubborn(refuse_for=10)
    bodies = Bodies(stuck=stubborn)

    async def main() -> None:
        r = WaveReconciler(bodies)
        await r.start()
        await r.update({"stuck": 1, "other": {}})
        await asyncio.sleep(0.5)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await r.update({"stuck": 2, "other": {}, "new": {}})
        assert loop.time() - t0 == pytest.approx(5.0)
        assert bodies.started("new") == 1 and bodies.started("stuck") == 1
        await asyncio.sleep(t0 + 11 - loop.time())
        starts = [at for t, at in bodies.starts if t == "stuck"]
        assert starts[1:] == [pytest.approx(t0 + 10)]  # one live run per task, never two
        assert r.get_task_state("stuck").status == "running"
        stubborn.refuse_for = 0  # behaves now
        await r.stop()
        assert await leftover_tasks() == set()

    run_virtual(main())


def test_a_timeout_is_enforced_on_a_body_that_swallows_the_timeout() -> None:
    stubborn = Stubborn(swallow=1)
    rec = Recorder()

    async def main() -> dict[Any, str]:
        r = WaveReconciler(Bodies(stuck=stubborn))
        r.on_event(rec)
        await r.start()
        await r.update({"stuck": {}, "calm": {}}, policies="no", timeouts={"stuck": 2})
        await asyncio.sleep(10)
        states = r.get_status().task_states
        await r.stop()
        return states

    states, _ = run_virtual(main())
    assert states == {"stuck": "timeout", "calm": "running"}  # the old code: "running"
    assert stubborn.cancels == [pytest.approx(2.0), pytest.approx(3.0)]
    failed = rec.of("TASK_FAILED")
    assert [(e["task_id"], e["status"], e["error"]) for e in failed] == [
        ("stuck", "timeout", "timeout after 2s")
    ]


def test_start_after_a_timed_out_stop_resumes_the_stuck_task_when_it_ends() -> None:
    stubborn = Stubborn(refuse_for=3)
    bodies = Bodies(stuck=stubborn)

    async def main() -> None:
        r = WaveReconciler(bodies)
        await r.start()
        await r.update({"stuck": {}})
        await asyncio.sleep(0.5)
        with pytest.raises(TimeoutError):
            await r.stop(timeout=1)
        await r.start()
        await asyncio.sleep(5)
        assert bodies.started("stuck") == 2  # its run ended at 3.5 s; it runs again
        assert r.get_task_state("stuck").status == "running"
        stubborn.refuse_for = 0
        await r.stop()
        assert await leftover_tasks() == set()

    run_virtual(main())


def test_async_with_starts_and_stops() -> None:
    async def main() -> None:
        async with WaveReconciler(Bodies(bad=Stubborn(swallow=1))) as r:
            assert r.running
            await r.update({"bad": {}, "calm": {}})
            await asyncio.sleep(0.5)
        assert not r.running
        assert r.get_status().task_states == {"bad": "stopped", "calm": "stopped"}
        assert await leftover_tasks() == set()

    run_virtual(main())


async def test_stop_refuses_a_negative_timeout() -> None:
    r = WaveReconciler(Bodies())
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        await r.stop(timeout=-1)
    await r.stop()  # the 0.3.0 call
