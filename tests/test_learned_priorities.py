"""Learned priorities: a run with a store ranks tasks by the durations recorded earlier."""

from __future__ import annotations

import asyncio
from typing import Any

from wave_executor import DAGExecutor, WaveConfig
from wave_executor._runtime.learned import learned_costs
from wave_executor.store import MemoryStore
from wave_executor.testing import run_virtual

# Two chains of five 1-second tasks and one 10-second task: counting tasks
# ranks the chains first (5 > 1), so with two slots the long task waits
# until the chains are at their last task (t=4: ends t=14); by duration it
# starts at once: t=10.
DURATIONS = {"long": 10.0} | {f"{c}{i}": 1.0 for c in "ab" for i in range(5)}
DEPS = {f"{c}{i}": [f"{c}{i - 1}"] for c in "ab" for i in range(1, 5)}
CONFIG = WaveConfig(max_parallel_per_wave=2, adaptive_batch_window=False, max_retries=0)


async def work(task_id: str, spec: Any) -> None:
    await asyncio.sleep(DURATIONS[task_id])


async def three_days(store: MemoryStore) -> list[float]:
    makespans = []
    for day, costs in (("day-1", None), ("day-2", None), ("day-3", {})):
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        result = await DAGExecutor(CONFIG).execute(
            dict.fromkeys(DURATIONS), DEPS, work, store=store, run_id=day, priority_costs=costs
        )
        assert result.total_successful == len(DURATIONS)
        makespans.append(loop.time() - t0)
    return makespans


def test_a_second_run_ranks_by_recorded_durations_and_empty_costs_turn_it_off() -> None:
    async def main() -> list[float]:
        async with MemoryStore() as store:
            return await three_days(store)

    makespans, _ = run_virtual(main())
    assert makespans == [14.0, 10.0, 14.0]


def test_learned_costs_take_the_newest_success_and_ignore_unknown_tasks() -> None:
    async def main() -> dict[Any, float] | None:
        async with MemoryStore() as store:
            assert await learned_costs(store, ["a"]) is None
            await three_days(store)
            return await learned_costs(store, ["long", "a0", "new"])

    costs, _ = run_virtual(main())
    assert costs == {"long": 10.0, "a0": 1.0}


def test_the_benchmark_on_the_virtual_clock_learns_within_two_percent_of_the_true_durations() -> (
    None
):
    import sys
    from pathlib import Path

    benchmarks = str(Path(__file__).resolve().parent.parent / "benchmarks")
    sys.path.insert(0, benchmarks)
    try:
        import learned_priorities as bench
    finally:
        sys.path.remove(benchmarks)
    for row in bench.rows("virtual", ["misleading", "makespan"], seeds=(0, 1)):
        assert row["ratio"] <= 1.02, row
        assert row["learned"] <= row["none"] * 1.02, row
