"""Demo: the README's graph, run by DAGExecutor and by LevelExecutor, with timelines.

A takes 10 time units, the others 1. C needs A and B; E needs only D.
DAGExecutor starts E the moment D is done (t = 1), so E ends at t = 2; the
level-based LevelExecutor runs {A, B, D} and then {C, E}, so E waits for A
and ends at t = 11.

By default both run on a virtual clock: instant, and the times are exact.
``python examples/demo.py 0.05`` runs them on real time instead, 0.05 s a unit.
"""

from __future__ import annotations

import asyncio
import sys

from wave_executor import DAGExecutionResult, DAGExecutor, ExecutionContext, LevelExecutor
from wave_executor.testing import run_virtual

UNIT = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0  # seconds a unit; 0: virtual clock

TASKS = {"A": 10, "B": 1, "C": 1, "D": 1, "E": 1}
DEPENDENCIES = {"C": {"A", "B"}, "E": {"D"}}

Timeline = dict[str, list[float]]


async def run(
    executor: DAGExecutor | LevelExecutor, unit: float
) -> tuple[DAGExecutionResult | ExecutionContext, Timeline]:
    """Run the graph, printing each start and end in time units."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    timeline: Timeline = {}

    def units() -> float:
        return (loop.time() - t0) / unit

    @executor.on_event
    def record(event_type: str, event: dict[str, object]) -> None:
        task_id = str(event["task_id"])
        if event_type == "TASK_STARTED":
            timeline[task_id] = [units()]
            print(f"  t={units():5.1f}  start {task_id}")
        elif event_type == "TASK_COMPLETED":
            timeline[task_id].append(units())
            print(f"  t={units():5.1f}  done  {task_id}")
        elif event_type == "WAVE_STARTED":
            print(f"  t={units():5.1f}  --- {event['wave_id']} starts")

    async def work(task_id: str, duration: int) -> str:
        await asyncio.sleep(duration * unit)
        return f"{task_id} ok"

    result = await executor.execute(TASKS, DEPENDENCIES, work)
    return result, timeline


def show(timeline: Timeline) -> None:
    for task_id, (start, end) in sorted(timeline.items()):
        bar = " " * round(start) + "#" * max(1, round(end - start))
        print(f"  {task_id} |{bar:<12}| {start:4.1f} .. {end:4.1f}")


def execute(
    executor: DAGExecutor | LevelExecutor,
) -> tuple[DAGExecutionResult | ExecutionContext, Timeline]:
    if UNIT > 0:
        return asyncio.run(run(executor, UNIT))
    outcome, _ = run_virtual(run(executor, 1.0))
    return outcome


def main() -> None:
    clock = f"real time, {UNIT:g} s a unit" if UNIT > 0 else "virtual clock"
    print(f"DAGExecutor ({clock}): each task starts when its own dependencies are done")
    dag, dag_timeline = execute(DAGExecutor())
    assert isinstance(dag, DAGExecutionResult)
    print()
    print(f"{dag.total_successful}/{dag.total_tasks} tasks succeeded")
    print(f"critical path: {' -> '.join(dag.get_critical_path(DEPENDENCIES))}")
    show(dag_timeline)

    print()
    print(f"LevelExecutor ({clock}): wave by wave, each wave waits for the one before")
    levels, level_timeline = execute(LevelExecutor())
    assert isinstance(levels, ExecutionContext)
    print()
    done = f"{levels.total_successful}/{levels.total_tasks} tasks succeeded"
    print(f"{done} in {levels.total_waves} waves")
    show(level_timeline)

    dag_e, level_e = dag_timeline["E"][1], level_timeline["E"][1]
    print()
    print(
        f"E ends at t={dag_e:.1f} with DAGExecutor and at t={level_e:.1f} with "
        f"LevelExecutor: {level_e - dag_e:.1f} units later by levels."
    )


if __name__ == "__main__":
    main()
