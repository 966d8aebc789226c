"""Progress reporting: the interface, the engine's calls, the rich and tqdm adapters."""

from __future__ import annotations

import asyncio
import io
import logging
import subprocess
import sys
from collections.abc import Hashable
from typing import Any

import pytest
from rich.console import Console

from wave_executor import (
    DAGExecutor,
    LevelExecutor,
    MetaDAG,
    MetaDAGNodeSpec,
    RetryPolicy,
    TaskStatus,
    WaveConfig,
)
from wave_executor.progress import CountingProgress, Progress
from wave_executor.progress.rich import RichProgress
from wave_executor.progress.tqdm import TqdmProgress
from wave_executor.store.memory import MemoryStore

# a -> b -> c, a -> d; "b" always fails, so "c" is skipped; "e" stands alone.
TASKS: dict[str, dict[str, Any]] = {t: {} for t in "abcde"}
DEPS = {"b": ["a"], "c": ["b"], "d": ["a"]}
NO_RETRY = WaveConfig(retry_policy=RetryPolicy(max_retries=0), emit_events=False)


async def body(task_id: Any, spec: Any) -> str:
    await asyncio.sleep(0)
    if task_id == "b":
        raise RuntimeError("b breaks")
    return f"{task_id}!"


class Log:
    """A ``Progress`` that writes down every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def start(self, total: int) -> None:
        self.calls.append(("start", total))

    def task_done(self, task_id: Hashable, status: TaskStatus) -> None:
        self.calls.append(("done", task_id, status))

    def close(self) -> None:
        self.calls.append(("close",))

    def done(self) -> dict[Any, TaskStatus]:
        return {c[1]: c[2] for c in self.calls if c[0] == "done"}


def test_progress_is_a_protocol_the_adapters_satisfy() -> None:
    assert isinstance(Log(), Progress)
    assert isinstance(RichProgress(), Progress)
    assert isinstance(TqdmProgress(), Progress)
    assert not isinstance(object(), Progress)


async def test_a_run_calls_start_then_each_task_once_then_close_without_events() -> None:
    log = Log()
    result = await DAGExecutor(NO_RETRY).execute(TASKS, DEPS, body, progress=log)
    assert log.calls[0] == ("start", 5) and log.calls[-1] == ("close",)
    assert len(log.calls) == 7  # start, five tasks, close
    assert log.done() == {
        "a": TaskStatus.SUCCESS, "b": TaskStatus.FAILED, "c": TaskStatus.SKIPPED,
        "d": TaskStatus.SUCCESS, "e": TaskStatus.SUCCESS,
    }  # fmt: skip
    assert {t: r.status for t, r in result.task_results.items()} == log.done()


async def test_retries_are_not_reported_only_the_final_status() -> None:
    log = Log()
    attempts = {"x": 0}

    async def flaky(task_id: Any, spec: Any) -> int:
        attempts["x"] += 1
        if attempts["x"] < 3:
            raise RuntimeError("not yet")
        return 1

    config = WaveConfig(retry_policy=RetryPolicy(max_retries=3, base_delay=0, jitter=False))
    await DAGExecutor(config).execute({"x": {}}, None, flaky, progress=log)
    assert log.calls == [("start", 1), ("done", "x", TaskStatus.SUCCESS), ("close",)]


async def test_tasks_ended_by_the_total_timeout_are_reported() -> None:
    log = Log()

    async def slow(task_id: Any, spec: Any) -> None:
        await asyncio.sleep(0 if task_id == "quick" else 30)

    config = WaveConfig(total_execution_timeout=0.2, emit_events=False)
    tasks: dict[str, Any] = {"quick": {}, "slow": {}, "after": {}}
    await DAGExecutor(config).execute(tasks, {"after": ["slow"]}, slow, progress=log)
    assert log.done() == {
        "quick": TaskStatus.SUCCESS, "slow": TaskStatus.TIMEOUT, "after": TaskStatus.TIMEOUT
    }  # fmt: skip
    assert log.calls[-1] == ("close",)


async def test_close_is_called_when_the_caller_cancels_the_run() -> None:
    log = Log()

    async def forever(task_id: Any, spec: Any) -> None:
        await asyncio.sleep(60)

    run = asyncio.create_task(DAGExecutor().execute({"x": {}}, None, forever, progress=log))
    await asyncio.sleep(0.05)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert log.calls[0] == ("start", 1) and log.calls[-1] == ("close",)


async def test_a_resumed_run_reports_its_restored_tasks_as_successes() -> None:
    store = MemoryStore()
    first = await DAGExecutor(NO_RETRY).execute(TASKS, DEPS, body, store=store, run_id="r")
    assert not first.succeeded
    log = Log()
    again = await DAGExecutor(NO_RETRY).execute(
        TASKS, DEPS, body, store=store, run_id="r", progress=log
    )
    assert sorted(again.restored) == ["a", "d", "e"]
    assert log.calls[0] == ("start", 5)
    assert [c[1] for c in log.calls[1:4]] == again.restored  # right after start
    assert log.done()["b"] is TaskStatus.FAILED and log.done()["c"] is TaskStatus.SKIPPED


class Broken(Log):
    def task_done(self, task_id: Hashable, status: TaskStatus) -> None:
        super().task_done(task_id, status)
        raise ValueError("display gone")


async def test_a_progress_that_raises_is_logged_once_and_the_run_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = Broken()
    with caplog.at_level(logging.ERROR, logger="wave_executor"):
        result = await DAGExecutor(NO_RETRY).execute(TASKS, DEPS, body, progress=broken)
    assert result.total_successful == 3 and result.total_failed == 1
    assert len(broken.done()) == 5 and broken.calls[-1] == ("close",)  # still called
    records = [r for r in caplog.records if r.name == "wave_executor.progress"]
    assert len(records) == 1
    assert "task_done()" in records[0].getMessage() and records[0].exc_info is not None
    assert records[0].run_id == result.execution_id  # type: ignore[attr-defined]


async def test_something_that_is_not_a_progress_is_refused_before_anything_runs() -> None:
    called: list[Any] = []

    async def record(task_id: Any, spec: Any) -> None:
        called.append(task_id)

    with pytest.raises(TypeError, match="task_done"):
        await DAGExecutor().execute({"x": {}}, None, record, progress=object())  # type: ignore[arg-type]
    assert called == []


async def test_level_mode_reports_every_task_including_those_of_waves_that_never_ran() -> None:
    log = Log()
    config = WaveConfig(
        retry_policy=RetryPolicy(max_retries=0), allow_partial_success=False, emit_events=False
    )
    ctx = await LevelExecutor(config).execute(TASKS, DEPS, body, progress=log)
    assert log.calls[0] == ("start", 5) and log.calls[-1] == ("close",)
    assert len(log.done()) == 5 and len(log.calls) == 7
    assert log.done() == {t: r.status for t, r in ctx.task_results.items()}
    assert log.done()["c"] is TaskStatus.SKIPPED


async def test_a_meta_dag_reports_its_nodes() -> None:
    log = Log()
    meta = MetaDAG(NO_RETRY)
    meta.add_node(MetaDAGNodeSpec(node_id="one", tasks={"a": {}}, task_executor=body))
    meta.add_node(
        MetaDAGNodeSpec(node_id="two", tasks={"b": {}}, task_executor=body, config=NO_RETRY),
        depends_on=["one"],
    )
    meta.add_node(
        MetaDAGNodeSpec(node_id="three", tasks={"c": {}}, task_executor=body),
        depends_on=["two"],
    )
    result = await meta.execute(progress=log)
    assert log.calls[0] == ("start", 3) and log.calls[-1] == ("close",)
    assert log.done() == {
        "one": TaskStatus.SUCCESS, "two": TaskStatus.FAILED, "three": TaskStatus.SKIPPED
    }  # fmt: skip
    assert result.successful_nodes == 1


# -- the adapters, driven by real runs ----------------------------------------------


async def test_rich_progress_draws_a_bar_with_the_totals_and_the_counts() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    progress = RichProgress("build", console=console)
    await DAGExecutor(NO_RETRY).execute(TASKS, DEPS, body, progress=progress)
    assert (progress.total, progress.done) == (5, 5)
    assert progress.counts == {
        TaskStatus.SUCCESS: 3, TaskStatus.FAILED: 1, TaskStatus.SKIPPED: 1
    }  # fmt: skip
    text = out.getvalue()
    assert "build" in text and "5/5" in text
    assert "ok 3, failed 1, skipped 1" in text


async def test_tqdm_progress_writes_a_bar_with_the_totals_and_the_counts() -> None:
    out = io.StringIO()
    progress = TqdmProgress("build", file=out, mininterval=0)
    await DAGExecutor(NO_RETRY).execute(TASKS, DEPS, body, progress=progress)
    assert (progress.total, progress.done, progress.failed) == (5, 5, 1)
    assert progress.counts[TaskStatus.SKIPPED] == 1
    final = out.getvalue().split("\r")[-1]
    assert "build" in final and "5/5" in final
    assert "ok 3, failed 1, skipped 1" in final


async def test_an_adapter_can_follow_several_runs_one_after_another() -> None:
    out = io.StringIO()
    progress = TqdmProgress(file=out)
    executor = DAGExecutor(NO_RETRY)
    await executor.execute(TASKS, DEPS, body, progress=progress)
    await executor.execute({"x": {}}, None, body, progress=progress)
    assert (progress.total, progress.done, dict(progress.counts)) == (
        1, 1, {TaskStatus.SUCCESS: 1}
    )  # fmt: skip


def test_counting_progress_summary_names_only_what_happened() -> None:
    p = CountingProgress()
    p.start(3)
    p.task_done("a", TaskStatus.SUCCESS)
    assert p.summary() == "ok 1"
    p.task_done("b", TaskStatus.TIMEOUT)
    p.task_done("c", TaskStatus.SKIPPED)
    assert p.summary() == "ok 1, failed 1, skipped 1"


def test_importing_wave_executor_imports_neither_rich_nor_tqdm() -> None:
    code = (
        "import sys, wave_executor, wave_executor.progress\n"
        "print(sorted(m for m in ('rich', 'tqdm') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
