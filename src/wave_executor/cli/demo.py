"""``wave-executor demo``: the README's A/B/C/D/E graph, by levels and by dependencies.

A takes 10 time units, the others 1; C needs A and B, E needs only D. By
levels, E waits for the wave that holds A and ends at t = 11; driven by
dependencies it starts when D is done and ends at t = 2. Both run on the
virtual clock by default (instant, exact), or on real time with ``--unit``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from wave_executor.report.html import Bar, Timeline, render_report

__all__ = ["DEPENDENCIES", "DURATIONS", "run_demo", "side_by_side"]

DURATIONS = {"A": 10, "B": 1, "C": 1, "D": 1, "E": 1}
DEPENDENCIES = {"C": ["A", "B"], "E": ["D"]}


async def _timeline(levels: bool, unit: float) -> list[Bar]:
    from wave_executor import DAGExecutor, LevelExecutor

    executor: Any = LevelExecutor() if levels else DAGExecutor()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    starts: dict[str, float] = {}
    bars: list[Bar] = []

    def units() -> float:
        return (loop.time() - t0) / unit

    def on_event(event_type: str, event: dict[str, Any]) -> None:
        task = str(event.get("task_id"))
        if event_type == "TASK_STARTED":
            starts[task] = units()
        elif event_type == "TASK_COMPLETED":
            bars.append(Bar(task, 1, "success", starts[task], units()))

    executor.on_event(on_event)

    async def work(task_id: str, duration: int) -> str:
        await asyncio.sleep(duration * unit)
        return f"{task_id} ok"

    await executor.execute(DURATIONS, DEPENDENCIES, work)
    return sorted(bars, key=lambda b: b.task)


def _run(levels: bool, unit: float) -> list[Bar]:
    if unit > 0:
        return asyncio.run(_timeline(levels, unit))
    from wave_executor.testing import run_virtual

    bars, _ = run_virtual(_timeline(levels, 1.0))
    return bars


def _lines(title: str, bars: list[Bar], span: float) -> list[str]:
    out = [title, ""]
    for bar in bars:
        cells = " " * round(bar.start) + "#" * max(1, round(bar.end - bar.start))
        out.append(f"{bar.task} |{cells:<{round(span)}}| {bar.start:4.1f}..{bar.end:4.1f}")
    return out


def side_by_side(left: list[str], right: list[str], gap: int = 4) -> str:
    width = max(len(line) for line in left) + gap
    rows = max(len(left), len(right))
    left = left + [""] * (rows - len(left))
    right = right + [""] * (rows - len(right))
    return "\n".join(f"{a:<{width}}{b}".rstrip() for a, b in zip(left, right, strict=True))


def run_demo(output: Path, unit: float = 0.0) -> int:
    clock = f"real time, {unit:g} s a unit" if unit > 0 else "virtual clock: exact, instant"
    print(f"The A/B/C/D/E graph ({clock}). A takes 10 units, the others 1;")
    print("C needs A and B, E needs only D.\n")
    levels = _run(True, unit)
    dag = _run(False, unit)
    span = max(b.end for b in [*levels, *dag])
    print(
        side_by_side(
            _lines("Level by level (LevelExecutor)", levels, span),
            _lines("Dependency-driven (DAGExecutor)", dag, span),
        )
    )
    level_e = next(b.end for b in levels if b.task == "E")
    dag_e = next(b.end for b in dag if b.task == "E")
    print(
        f"\nE ends at t={dag_e:.1f} driven by dependencies and at t={level_e:.1f} by levels: "
        f"{level_e - dag_e:.1f} units sooner."
    )
    statuses = dict.fromkeys(DURATIONS, "success")
    timelines = [
        Timeline("Dependency-driven (DAGExecutor)", dag, DEPENDENCIES, statuses,
                 "Each task starts when its own dependencies are done."),
        Timeline("Level by level (LevelExecutor)", levels, DEPENDENCIES, statuses,
                 "Each wave waits for the whole wave before it."),
    ]  # fmt: skip
    output.write_text(render_report("wave-executor demo", timelines), encoding="utf-8")
    print(f"\nHTML report: {output}")
    return 0
