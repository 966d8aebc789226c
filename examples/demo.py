"""Demo: the README's graph, run by DAGExecutor, with a timeline.

A takes 10 time units, the others 1. C needs A and B; E needs only D.
A level-based runner would hold E until A finished (t = 10); wave-executor
starts E the moment D is done (t = 1).
"""

from __future__ import annotations

import asyncio
import sys
import time

from wave_executor import DAGExecutor, WaveConfig

UNIT = float(sys.argv[1]) if len(sys.argv) > 1 else 0.1  # seconds per time unit

TASKS = {"A": 10, "B": 1, "C": 1, "D": 1, "E": 1}
DEPENDENCIES = {"C": {"A", "B"}, "E": {"D"}}


async def main() -> None:
    executor = DAGExecutor(WaveConfig(max_parallel_per_wave=10))
    t0 = time.monotonic()
    timeline: dict[str, list[float]] = {}

    def units() -> float:
        return (time.monotonic() - t0) / UNIT

    @executor.on_event
    def record(event_type: str, event: dict[str, object]) -> None:
        task_id = event["task_id"]
        if event_type == "TASK_STARTED":
            timeline[str(task_id)] = [units()]
            print(f"t={units():5.1f}  start {task_id}")
        elif event_type == "TASK_COMPLETED":
            timeline[str(task_id)].append(units())
            print(f"t={units():5.1f}  done  {task_id}")

    async def work(task_id: str, duration: int) -> str:
        await asyncio.sleep(duration * UNIT)
        return f"{task_id} ok"

    result = await executor.execute(TASKS, DEPENDENCIES, work)

    print()
    print(f"{result.total_successful}/{result.total_tasks} tasks succeeded")
    print(f"critical path: {' -> '.join(result.get_critical_path(DEPENDENCIES))}")
    for task_id, (start, end) in sorted(timeline.items()):
        bar = " " * round(start) + "#" * max(1, round(end - start))
        print(f"  {task_id} |{bar:<12}| {start:4.1f} .. {end:4.1f}")
    e_end = timeline["E"][1]
    print(f"E finished at t={e_end:.1f}; a level-based runner would finish it at t=11.")


if __name__ == "__main__":
    asyncio.run(main())
