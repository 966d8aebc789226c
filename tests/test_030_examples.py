"""The DAG examples of 0.3.0's own README, run unchanged against our package."""

from __future__ import annotations

import asyncio
from typing import Any

from wave_executor import DAGExecutor, WaveConfig


def test_the_0_3_0_readme_dag_example() -> None:
    printed: list[str] = []

    async def process(task_id: str, spec: dict[str, Any]) -> str:
        # Your actual work here
        return f"result-{task_id}"

    dependencies = {
        "analyze": {"fetch_a", "fetch_b"},  # waits for both fetches
        "report": {"analyze"},
    }

    async def main() -> None:
        executor = DAGExecutor(config=WaveConfig(max_parallel_per_wave=20))
        result = await executor.execute(
            tasks={
                "fetch_a": {"url": "..."},
                "fetch_b": {"url": "..."},
                "analyze": {"model": "fast"},
                "report": {},
            },
            dependencies={
                "analyze": {"fetch_a", "fetch_b"},  # waits for both fetches
                "report": {"analyze"},
            },
            task_executor=process,
        )

        printed.append(f"{result.total_successful}/{result.total_tasks} succeeded")
        printed.append(f"Critical path: {result.get_critical_path(dependencies)}")

    asyncio.run(main())
    assert printed[0] == "4/4 succeeded"
    assert printed[1] in (
        "Critical path: ['fetch_a', 'analyze', 'report']",
        "Critical path: ['fetch_b', 'analyze', 'report']",
    )


def test_the_0_3_0_readme_observability_example() -> None:
    seen: list[tuple[str, Any, Any]] = []
    executor = DAGExecutor()

    @executor.on_event
    async def handle(event_type: str, event: dict[str, Any]) -> None:
        seen.append((event_type, event["task_id"], event.get("duration_ms")))

    async def work(task_id: str, spec: Any) -> None:
        await asyncio.sleep(0)

    asyncio.run(executor.execute({"a": 1}, {}, work))
    assert handle is not None
    assert [s[0] for s in seen] == [
        "EXECUTION_STARTED",
        "TASK_STARTED",
        "TASK_COMPLETED",
        "EXECUTION_COMPLETED",
    ]
    assert seen[2][1] == "a" and seen[2][2] is not None


def test_the_0_3_0_readme_configuration_example() -> None:
    config = WaveConfig(
        max_parallel_per_wave=50,  # global concurrency cap
        default_task_timeout=30.0,  # per-task timeout (seconds)
        total_execution_timeout=600.0,  # hard limit for the whole execution
        max_retries=3,  # exponential-backoff retries
        retry_backoff_factor=2.0,
        adaptive_batch_window=True,  # AIMD concurrency auto-scaling
        min_parallel=2,  # floor for adaptive window
        saturation_threshold=20,  # waiting tasks that trigger shrink
    )
    assert config.max_parallel_per_wave == 50
