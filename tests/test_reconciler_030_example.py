"""The WaveReconciler example of 0.3.0's README, run verbatim (its ``...`` are valid Python)."""

from __future__ import annotations

import ast
import types
from typing import Any

import pytest

import wave_executor
from wave_executor.testing import run_virtual

EXAMPLE_030 = """
from wave_executor import WaveReconciler, WaveConfig
from wave_executor.reconciler import RestartPolicy

async def run_job(task_id: str, spec: dict):
    # Work that might crash and needs restarting
    ...

reconciler = WaveReconciler(
    task_executor=run_job,
    config=WaveConfig(max_parallel_per_wave=10),
    poll_interval_s=2.0,
)

await reconciler.start()

await reconciler.update(
    tasks={
        "validator":  {"port": 8080},
        "aggregator": {"upstream": "validator"},
    },
    dependencies={"aggregator": {"validator"}},
    policies={
        "validator":  "always",      # restart after any exit
        "aggregator": "on-failure",  # restart only on crash
    },
    max_restart_attempts={"validator": 100, "aggregator": 5},
    restart_backoff_base=3.0,   # exponential: 0s, 3s, 6s, 12s...
)

# Hot-swap the spec while running — unchanged tasks are undisturbed
await reconciler.update(tasks={"validator": {"port": 9090}, "aggregator": ...})

# Wait for all non-ALWAYS tasks to reach terminal state
ok = await reconciler.wait_until_complete(timeout=60)
await reconciler.stop()
"""


def run_example(source: str) -> tuple[dict[str, Any], float]:
    code = compile(source, "0.3.0 README", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict[str, Any] = {"__name__": "readme_030"}

    async def main() -> None:
        result = types.FunctionType(code, namespace)()
        if result is not None:
            await result

    _, elapsed = run_virtual(main())
    return namespace, elapsed


def check(namespace: dict[str, Any], elapsed: float) -> None:
    assert namespace["ok"] is True
    status = namespace["reconciler"].get_status()
    assert status.task_states["aggregator"] == "success"
    assert status.running_count == 0
    assert elapsed == 0.0  # no poll tick to wait for (0.3.0: about 2 s)


def test_the_0_3_0_readme_reconciler_example_via_the_reconciler_module() -> None:
    source = EXAMPLE_030.replace(
        "from wave_executor import WaveReconciler, WaveConfig",
        "from wave_executor import WaveConfig\nfrom wave_executor.reconciler import WaveReconciler",
    )
    check(*run_example(source))


@pytest.mark.skipif(
    not hasattr(wave_executor, "WaveReconciler"),
    reason="WaveReconciler is not exported from wave_executor yet",
)
def test_the_0_3_0_readme_reconciler_example_verbatim() -> None:
    check(*run_example(EXAMPLE_030))
