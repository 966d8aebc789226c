"""Restart semantics of WaveReconciler, timed on the virtual clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.helpers import Recorder
from wave_executor.reconciler import RestartSettings, WaveReconciler
from wave_executor.testing import run_virtual


class Script:
    """A body whose runs follow a script: ``(seconds, crashes)`` per run, then the last forever."""

    def __init__(self, *runs: tuple[float, bool]) -> None:
        self.runs = list(runs)
        self.starts: list[float] = []

    async def __call__(self, task_id: Any, spec: Any) -> str:
        self.starts.append(asyncio.get_running_loop().time())
        seconds, crashes = self.runs[min(len(self.starts), len(self.runs)) - 1]
        await asyncio.sleep(seconds)
        if crashes:
            raise RuntimeError(f"crash {len(self.starts)}")
        return "done"


def supervise(
    body: Script,
    seconds: float,
    rec: Recorder | None = None,
    settings: RestartSettings | None = None,
    **update: Any,
) -> dict[Any, str]:
    """Run task "t" under ``update`` kwargs for ``seconds`` of virtual time; final states."""

    async def main() -> dict[Any, str]:
        r = WaveReconciler(body, restart_settings=settings)
        if rec is not None:
            r.on_event(rec)
        await r.start()
        await r.update({"t": {}}, **update)
        await asyncio.sleep(seconds)
        states = dict(r.get_status().task_states)
        await r.stop()
        return states

    return run_virtual(main())[0]


def test_backoff_doubles_from_each_crash_then_the_task_is_blocked() -> None:
    body = Script((1.0, True))
    rec = Recorder()
    states = supervise(body, 100, rec, max_restart_attempts=3)
    # crash at 1 -> +3; crash at 5 -> +6; crash at 12 -> +12; crash at 25 -> blocked
    assert body.starts == [0.0, 4.0, 11.0, 24.0]
    assert states == {"t": "blocked"}
    scheduled = rec.of("TASK_RESTART_SCHEDULED")
    assert [e["delay_s"] for e in scheduled] == [3.0, 6.0, 12.0]
    assert [e["restart_count"] for e in scheduled] == [1, 2, 3]
    assert [e["restart_count"] for e in rec.of("TASK_STARTED")] == [0, 1, 2, 3]
    (blocked,) = rec.of("TASK_BLOCKED")
    assert "4 times in a row" in blocked["reason"] and blocked["failures"] == 4
    assert rec.types("t")[-2:] == ["TASK_FAILED", "TASK_BLOCKED"]


def test_backoff_is_capped_and_base_zero_restarts_at_once() -> None:
    body = Script((0.0, True))
    supervise(body, 100, settings=RestartSettings(backoff_cap_s=5.0), max_restart_attempts=5)
    assert body.starts == [0.0, 3.0, 8.0, 13.0, 18.0, 23.0]  # 3, then 6 -> 5, 5, ...
    body = Script((0.0, True))
    supervise(body, 100, max_restart_attempts=4, restart_backoff_base=0)
    assert body.starts == [0.0] * 5


def test_jitter_only_delays_restarts() -> None:
    body = Script((0.0, True))
    settings = RestartSettings(jitter=0.5)
    supervise(body, 100, settings=settings, max_restart_attempts=3, restart_backoff_base=2.0)
    gaps = [b - a for a, b in zip(body.starts, body.starts[1:], strict=False)]
    for gap, floor in zip(gaps, [2.0, 4.0, 8.0], strict=True):
        assert floor <= gap <= floor * 1.5


def test_a_healthy_run_resets_the_backoff_and_the_attempt_count() -> None:
    # Three quick crashes, a 60 s healthy run that crashes, then quick crashes again.
    body = Script((0, True), (0, True), (0, True), (60, True), (0, True), (0, True), (0, True))
    states = supervise(body, 1000, max_restart_attempts=3)
    assert body.starts[:4] == [0.0, 3.0, 9.0, 21.0]
    # The healthy run crashed at 81: backoff starts over at 3 s, and 3 more crashes are allowed.
    assert body.starts[4:] == [84.0, 90.0, 102.0]
    assert states == {"t": "blocked"}


def test_a_crash_loop_within_the_window_blocks_even_with_attempts_left() -> None:
    body = Script((0.0, True))
    rec = Recorder()
    settings = RestartSettings(crash_loop_burst=3, crash_loop_window_s=60.0)
    states = supervise(body, 100, rec, settings, max_restart_attempts=100, restart_backoff_base=1)
    assert body.starts == [0.0, 1.0, 3.0, 7.0]  # the 4th failure within 60 s blocks
    assert states == {"t": "blocked"}
    assert "crash loop: 4 failures within 60s" in rec.of("TASK_BLOCKED")[0]["reason"]


def test_always_restarts_a_clean_exit_after_the_base_delay() -> None:
    body = Script((2.0, False))
    rec = Recorder()
    states = supervise(body, 20, rec, policies="always", max_restart_attempts=1)
    assert body.starts == [0.0, 5.0, 10.0, 15.0]
    assert states == {"t": "running"} or states == {"t": "success"}
    assert {e["delay_s"] for e in rec.of("TASK_RESTART_SCHEDULED")} == {3.0}


def test_policy_no_and_on_failure_end_for_good() -> None:
    body = Script((1.0, True))
    assert supervise(body, 50, policies="no") == {"t": "failed"}
    assert body.starts == [0.0]
    body = Script((1.0, False))
    assert supervise(body, 50, policies="on-failure") == {"t": "success"}
    assert body.starts == [0.0]


def test_timeouts_count_as_failures_and_restart_under_on_failure() -> None:
    body = Script((100.0, False), (1.0, False))
    rec = Recorder()
    states = supervise(body, 50, rec, timeouts=10)
    assert body.starts == [0.0, 13.0]  # timed out at 10, restarted 3 s later
    assert states == {"t": "success"}
    assert rec.of("TASK_FAILED")[0]["status"] == "timeout"
    assert rec.of("TASK_RESTART_SCHEDULED")[0]["after"] == "timeout"


def test_a_changed_spec_unblocks_with_a_fresh_quota() -> None:
    body = Script((0.0, True))

    async def main() -> list[str]:
        r = WaveReconciler(body)
        await r.start()
        await r.update({"t": {"v": 1}}, max_restart_attempts=1, restart_backoff_base=1)
        await asyncio.sleep(10)
        seen = [r.get_status().task_states["t"]]
        await r.update({"t": {"v": 1}}, max_restart_attempts=1, restart_backoff_base=1)
        await asyncio.sleep(10)
        seen.append(r.get_status().task_states["t"])  # same spec: still blocked
        await r.update({"t": {"v": 2}}, max_restart_attempts=1, restart_backoff_base=1)
        seen.append(r.get_status().task_states["t"])  # a fresh start is due
        await asyncio.sleep(10)
        seen.append(r.get_status().task_states["t"])
        await r.stop()
        return seen

    seen, _ = run_virtual(main())
    assert seen == ["blocked", "blocked", "pending", "blocked"]  # ran twice more, 1 restart
    assert body.starts == [0.0, 1.0, 20.0, 21.0]


def test_changing_only_the_policy_does_not_restart_a_running_task() -> None:
    body = Script((1000.0, False))

    async def main() -> None:
        r = WaveReconciler(body)
        await r.start()
        await r.update({"t": {}}, policies="always")
        await asyncio.sleep(10)
        await r.update({"t": {}}, policies="on-failure", max_restart_attempts=9)
        await asyncio.sleep(10)
        assert r.get_status().task_states == {"t": "running"}
        await r.stop()

    run_virtual(main())
    assert body.starts == [0.0]


@pytest.mark.parametrize("policy", ["no", "on-failure", "always"])
def test_restart_count_counts_restarts_not_runs(policy: str) -> None:
    body = Script((1.0, True), (1.0, False))
    rec = Recorder()
    supervise(body, 6, rec, policies=policy)
    counts = [e["restart_count"] for e in rec.of("TASK_STARTED")]
    assert counts == ([0] if policy == "no" else [0, 1])


def test_a_long_crash_loop_keeps_no_growing_state() -> None:
    """The bookkeeping behind 2,000 zero-delay restarts stays the size of the task set."""

    runs = 0
    enough = asyncio.Event()

    async def crash(task_id: Any, spec: Any) -> None:
        nonlocal runs
        runs += 1
        if runs == 2_000:
            enough.set()
        raise RuntimeError("crash")

    async def main() -> None:
        r = WaveReconciler(crash)
        r.on_event(lambda event_type, event: None)
        await r.start()
        await r.update(dict.fromkeys("abcde", 0), policies="always",
                       max_restart_attempts=10**9, restart_backoff_base=0)  # fmt: skip
        loop = asyncio.get_running_loop()
        await enough.wait()
        sup = r._sup
        assert len(sup.records) == 5 and len(sup._timers) == 0
        assert len(sup._runs._cancelling) == 0 and len(sup._runs) <= 5
        assert all(not rec.history.failures for rec in sup.records.values())  # no window set
        assert loop.time() == 0.0  # zero backoff: all on one virtual instant
        await r.stop()

    run_virtual(main())


def test_switching_an_always_task_to_on_failure_cancels_its_pending_restart() -> None:
    body = Script((1.0, False))

    async def main() -> str:
        r = WaveReconciler(body)
        await r.start()
        await r.update({"t": {}}, policies="always")
        await asyncio.sleep(2)  # ran 0-1, restart due at 4
        await r.update({"t": {}}, policies="on-failure")
        await asyncio.sleep(20)
        status = r.get_status().task_states["t"]
        await r.stop()
        return status

    assert run_virtual(main())[0] == "success"
    assert body.starts == [0.0]
