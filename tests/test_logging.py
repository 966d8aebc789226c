"""Logging: one hierarchy under ``wave_executor``, quiet by default, one INFO line per
retry, final failure, breaker change and reconciler restart, with structured fields."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from typing import Any

import pytest

from tests.helpers import Recorder
from wave_executor import DAGExecutor, RetryPolicy, WaveConfig, WaveReconciler
from wave_executor._core.logs import get_logger
from wave_executor.testing import run_virtual

FIELDS = ("run_id", "task_id", "attempt")


def lines(caplog: pytest.LogCaptureFixture, logger: str, words: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == logger and r.levelno == logging.INFO and words in r.getMessage()
    ]


def field_values(record: logging.LogRecord) -> tuple[Any, ...]:
    return tuple(getattr(record, name) for name in FIELDS)


def test_the_root_logger_has_a_null_handler() -> None:
    handlers = logging.getLogger("wave_executor").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_an_application_that_configures_no_logging_sees_nothing() -> None:
    """Without the NullHandler, logging's last resort would print the callback's ERROR."""
    code = """
import asyncio
from wave_executor import DAGExecutor

async def main():
    executor = DAGExecutor()
    executor.on_event(lambda kind, event: 1 / 0)
    async def body(task_id, spec):
        return 1
    await executor.execute({"a": {}}, None, body)

asyncio.run(main())
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stderr == ""


async def test_each_retry_is_one_info_line_with_run_task_and_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = {"x": 0}

    async def flaky(task_id: Any, spec: Any) -> str:
        calls[task_id] += 1
        if calls[task_id] < 3:
            raise RuntimeError(f"try {calls[task_id]} broke")
        return "ok"

    policy = RetryPolicy(max_retries=5, base_delay=0.001, jitter=0)
    with caplog.at_level(logging.INFO, logger="wave_executor"):
        result = await DAGExecutor(WaveConfig(retry_policy=policy)).execute({"x": {}}, None, flaky)
    assert result.succeeded
    retries = lines(caplog, "wave_executor.run", "retrying")
    run = result.execution_id
    assert [field_values(r) for r in retries] == [(run, "x", 1), (run, "x", 2)]
    assert "try 1 broke" in retries[0].getMessage() and run in retries[0].getMessage()
    assert lines(caplog, "wave_executor.run", "failed after") == []


async def test_a_final_failure_is_one_info_line_naming_the_last_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(task_id: Any, spec: Any) -> None:
        raise RuntimeError("always")

    policy = RetryPolicy(max_retries=2, base_delay=0.001, jitter=0)
    with caplog.at_level(logging.INFO, logger="wave_executor"):
        result = await DAGExecutor(WaveConfig(retry_policy=policy)).execute(
            {"x": {}, "y": {}}, {"y": ["x"]}, broken
        )
    run = result.execution_id
    failures = lines(caplog, "wave_executor.run", "failed after")
    assert [field_values(r) for r in failures] == [(run, "x", 3)]
    message = failures[0].getMessage()
    assert "'x'" in message and "3 attempt(s)" in message and "always" in message
    assert len(lines(caplog, "wave_executor.run", "retrying")) == 2


async def test_each_breaker_state_change_is_one_info_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """a and b fail and open the circuit; c, a moment later, probes it and closes it."""

    async def body(task_id: Any, spec: Any) -> str:
        if task_id in ("a", "b"):
            raise RuntimeError("down")
        return "up"

    config = WaveConfig(
        retry_policy=RetryPolicy(max_retries=0),
        circuit_failure_threshold=2,
        circuit_success_threshold=1,
        circuit_recovery_timeout=0.0,
    )
    tasks = {t: {"circuit_key": "svc"} for t in "abc"}
    rec = Recorder()
    executor = DAGExecutor(config)
    executor.on_event(rec)
    with caplog.at_level(logging.INFO, logger="wave_executor"):
        result = await executor.execute(
            tasks, {"b": ["a"], "c": ["b"]}, body, trigger_rules={"b": "all_done", "c": "all_done"}
        )
    run = result.execution_id
    changes = lines(caplog, "wave_executor.breaker", "circuit")
    assert [field_values(r) for r in changes] == [(run, "b", 1), (run, "c", 1), (run, "c", 1)]
    assert [r.getMessage().split(": ", 1)[1] for r in changes] == [
        "circuit 'svc' closed -> open (task 'b', attempt 1)",
        "circuit 'svc' open -> half_open (task 'c', attempt 1)",
        "circuit 'svc' half_open -> closed (task 'c', attempt 1)",
    ]
    assert len(changes) == len([t for t, _ in rec.events if t.startswith("CIRCUIT_")])


def test_each_reconciler_restart_is_one_info_line(caplog: pytest.LogCaptureFixture) -> None:
    async def crashes(task_id: Any, spec: Any) -> None:
        await asyncio.sleep(1)
        raise RuntimeError("crash")

    async def main() -> list[dict[str, Any]]:
        rec = Recorder()
        reconciler = WaveReconciler(crashes, reconciler_id="svc")
        reconciler.on_event(rec)
        async with reconciler:
            await reconciler.update(
                {"w": {}}, policies="on-failure", max_restart_attempts=2, restart_backoff_base=0.5
            )
            await reconciler.wait_until_complete(timeout=60)
        return rec.of("TASK_STARTED")

    with caplog.at_level(logging.INFO, logger="wave_executor"):
        starts, _ = run_virtual(main())
    restarts = lines(caplog, "wave_executor.reconciler", "restarted")
    assert [s["restart_count"] for s in starts] == [0, 1, 2]
    assert [field_values(r) for r in restarts] == [("svc", "w", 2), ("svc", "w", 3)]
    assert restarts[0].getMessage() == "reconciler 'svc': task 'w' restarted (run 2, restart 1)"


async def test_every_record_carries_the_fields_and_a_format_can_use_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An event callback's errors name the run (and the task, for a task's event)."""
    executor = DAGExecutor()

    def broken(kind: str, event: dict[str, Any]) -> None:
        raise ZeroDivisionError("callback")

    executor.on_event(broken)

    async def body(task_id: Any, spec: Any) -> int:
        return 1

    with caplog.at_level(logging.DEBUG, logger="wave_executor"):
        result = await executor.execute({"a": {}}, None, body)
    ours = [r for r in caplog.records if r.name.startswith("wave_executor")]
    assert ours and all(r.name.startswith("wave_executor.") for r in ours)
    formatter = logging.Formatter("%(name)s run=%(run_id)s task=%(task_id)s try=%(attempt)s")
    texts = {formatter.format(r).splitlines()[0] for r in ours}
    assert f"wave_executor.events run={result.execution_id} task=None try=None" in texts
    assert f"wave_executor.events run={result.execution_id} task=a try=None" in texts


def test_a_record_whose_call_site_passes_no_fields_gets_them_as_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="wave_executor"):
        get_logger("store").info("plain")
    (record,) = caplog.records
    assert record.name == "wave_executor.store"
    assert field_values(record) == (None, None, None)


async def test_tasks_cut_off_by_the_run_timeout_are_one_line_for_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def slow(task_id: Any, spec: Any) -> None:
        await asyncio.sleep(30)

    config = WaveConfig(total_execution_timeout=0.1)
    with caplog.at_level(logging.INFO, logger="wave_executor"):
        result = await DAGExecutor(config).execute({"a": {}, "b": {}, "c": {}}, None, slow)
    run = result.execution_id
    stops = lines(caplog, "wave_executor.run", "stopped")
    assert [field_values(r) for r in stops] == [(run, None, None)]
    assert stops[0].getMessage() == (
        f"run {run} stopped, total execution timeout (0.1s) reached: "
        "3 unfinished task(s) ended timeout"
    )
    assert lines(caplog, "wave_executor.run", "failed after") == []
