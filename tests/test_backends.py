"""Backends: plain functions on threads or processes, per-task choice, user backends.

Timeouts here use real time: the virtual clock jumps ahead while a thread or
a process works, so only real durations (small, with wide margins) say
anything about them.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable, Hashable, Iterator
from typing import Any

import pytest

from tests import backend_bodies as bodies
from wave_executor import DAGExecutor, RetryPolicy, TaskStatus, WaveConfig
from wave_executor.backends import (
    Backend,
    InlineBackend,
    ProcessBackend,
    ThreadBackend,
)

NO_RETRY = WaveConfig(retry_policy=RetryPolicy(max_retries=0))


@pytest.fixture(scope="module")
def processes() -> Iterator[ProcessBackend]:
    with ProcessBackend(max_workers=2) as backend:
        yield backend


# -- threads --------------------------------------------------------------------


async def test_plain_functions_run_on_threads_at_the_same_time() -> None:
    barrier = threading.Barrier(4, timeout=20)  # passes only if all four run at once

    def wait_for_all(task_id: str, spec: Any) -> str:
        barrier.wait()
        return threading.current_thread().name

    with ThreadBackend(max_workers=4) as backend:
        result = await DAGExecutor(NO_RETRY).execute(
            dict.fromkeys("abcd"), {}, wait_for_all, backend=backend
        )
    assert result.total_successful == 4
    names = set(result.outputs().values())
    assert len(names) == 4 and threading.current_thread().name not in names


async def test_the_loop_keeps_running_while_a_thread_blocks() -> None:
    released = threading.Event()
    ticks = 0

    def block(task_id: str, spec: Any) -> str:
        released.wait(20)
        return "done"

    async def ticker() -> None:
        nonlocal ticks
        while ticks < 5:
            await asyncio.sleep(0.01)
            ticks += 1
        released.set()

    with ThreadBackend(max_workers=1) as backend:
        run = DAGExecutor(NO_RETRY).execute({"t": None}, {}, block, backend=backend)
        result, _ = await asyncio.gather(run, ticker())
    assert result.outputs() == {"t": "done"} and ticks == 5


async def test_the_thread_backend_runs_at_most_max_workers_bodies_at_once() -> None:
    lock = threading.Lock()
    running = peak = 0

    def count(task_id: int, spec: Any) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    with ThreadBackend(max_workers=2) as backend:
        cfg = WaveConfig(max_parallel_per_wave=8)
        result = await DAGExecutor(cfg).execute(dict.fromkeys(range(8)), {}, count, backend=backend)
    assert result.total_successful == 8 and peak == 2


async def test_a_thread_body_past_its_timeout_ends_as_timeout_while_its_thread_runs_on() -> None:
    released = threading.Event()
    finished = threading.Event()

    def stuck(task_id: str, spec: Any) -> str:
        released.wait(30)
        finished.set()
        return "late"

    cfg = WaveConfig(default_task_timeout=0.3, retry_policy=RetryPolicy(max_retries=0))
    with ThreadBackend(max_workers=1) as backend:
        began = time.monotonic()
        result = await DAGExecutor(cfg).execute({"t": None}, {}, stuck, backend=backend)
        elapsed = time.monotonic() - began
        assert result.task_results["t"].status == TaskStatus.TIMEOUT
        assert result.task_results["t"].error == "timeout after 0.3s"
        assert elapsed < 15  # ended at its timeout, not when the thread did
        assert not finished.is_set()
        released.set()
    assert finished.is_set()  # close() waited for the thread


async def test_a_thread_body_error_is_retried_then_fails_with_its_message() -> None:
    calls = 0

    def flaky(task_id: str, spec: Any) -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError(f"try {calls}")
        return "ok"

    cfg = WaveConfig(retry_policy=RetryPolicy(max_retries=2, base_delay=0.001, jitter=False))
    with ThreadBackend() as backend:
        ok = await DAGExecutor(cfg).execute({"t": None}, {}, flaky, backend=backend)
        assert ok.task_results["t"].output == "ok" and ok.task_results["t"].retry_count == 2
        calls = -10
        bad = await DAGExecutor(cfg).execute({"t": None}, {}, flaky, backend=backend)
    assert bad.task_results["t"].status == TaskStatus.FAILED
    assert bad.task_results["t"].error == "try -7"


async def test_an_async_def_body_on_the_thread_backend_fails_with_a_pointer_to_inline() -> None:
    async def body(task_id: str, spec: Any) -> str:
        return "never"

    with ThreadBackend() as backend:
        result = await DAGExecutor(NO_RETRY).execute({"t": None}, {}, body, backend=backend)
    error = result.task_results["t"].error
    assert error is not None and "default inline backend" in error


# -- processes ----------------------------------------------------------------------


async def test_picklable_bodies_run_in_other_processes_with_their_dependencies_outputs(
    processes: ProcessBackend,
) -> None:
    result = await DAGExecutor(NO_RETRY).execute(
        {"a": {"x": 3}, "b": {"x": 4}, "c": {"x": 1}},
        {"c": ["a", "b"]},
        bodies.square,
        backend=processes,
    )
    assert result.outputs() == {"a": 9, "b": 16, "c": 1}
    chained = await DAGExecutor(NO_RETRY).execute(
        {"a": {"x": 3}, "c": {}}, {"c": ["a"]}, bodies.pid_and_deps,
        inject_dep_outputs=True, backend=processes,
    )  # fmt: skip
    pid, deps = chained.outputs()["c"]
    assert pid != os.getpid() and deps == {"a": chained.outputs()["a"]}


async def test_a_process_body_error_keeps_its_type_and_message(processes: ProcessBackend) -> None:
    with pytest.raises(bodies.BodyError, match="bad input for t"):
        await processes.call(bodies.raise_body_error, "t", {})
    result = await DAGExecutor(NO_RETRY).execute(
        {"t": {}}, {}, bodies.raise_body_error, backend=processes
    )
    assert result.task_results["t"].error == "bad input for t"


async def test_a_body_that_cannot_be_pickled_fails_the_task_clearly(
    processes: ProcessBackend,
) -> None:
    result = await DAGExecutor(NO_RETRY).execute(
        {"t": {}}, {}, lambda task_id, spec: 1, backend=processes
    )
    assert result.task_results["t"].status == TaskStatus.FAILED
    error = result.task_results["t"].error
    assert error is not None and "pickle" in error.lower()


async def test_a_process_body_past_its_timeout_ends_as_timeout_at_its_deadline() -> None:
    cfg = WaveConfig(default_task_timeout=0.5, retry_policy=RetryPolicy(max_retries=0))
    backend = ProcessBackend(max_workers=1)
    try:
        began = time.monotonic()
        result = await DAGExecutor(cfg).execute(
            {"t": {"seconds": 4}}, {}, bodies.sleep_for, backend=backend
        )
        elapsed = time.monotonic() - began
    finally:
        backend.close()
    assert result.task_results["t"].status == TaskStatus.TIMEOUT
    assert elapsed < 3.5  # its deadline, not the body's four seconds


async def test_the_forkserver_start_method_runs_bodies_too() -> None:
    with ProcessBackend(max_workers=1, start_method="forkserver") as backend:
        result = await DAGExecutor(NO_RETRY).execute(
            {"a": {"x": 5}}, {}, bodies.square, backend=backend
        )
    assert result.outputs() == {"a": 25}


def test_a_process_backend_refuses_fork_and_a_pool_of_none() -> None:
    with pytest.raises(ValueError, match="spawn"):
        ProcessBackend(start_method="fork")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 1"):
        ThreadBackend(max_workers=0)


# -- choosing ---------------------------------------------------------------------


async def test_backends_are_chosen_per_task_by_mapping_or_function() -> None:
    main = threading.get_ident()

    def where(task_id: str, spec: Any) -> Any:
        return "main" if threading.get_ident() == main else "thread"

    async def inline(task_id: str, spec: Any) -> str:
        return "main" if threading.get_ident() == main else "thread"

    def body(task_id: str, spec: Any) -> Any:
        return where(task_id, spec) if spec == "plain" else inline(task_id, spec)

    tasks = {"a": "plain", "b": "async", "c": "plain"}
    with ThreadBackend() as threads:
        by_map = await DAGExecutor(NO_RETRY).execute(
            tasks, {"c": ["a", "b"]}, body, backends={"a": threads, "c": threads}
        )
        by_function = await DAGExecutor(NO_RETRY).execute(
            tasks, {}, body, backends=lambda task_id, spec: threads if spec == "plain" else None
        )
    assert by_map.outputs() == {"a": "thread", "b": "main", "c": "thread"}
    assert by_function.outputs() == by_map.outputs()


async def test_the_executor_backend_is_the_default_and_execute_overrides_it() -> None:
    def plain(task_id: str, spec: Any) -> str:
        return threading.current_thread().name

    async def inline(task_id: str, spec: Any) -> str:
        return "inline"

    with ThreadBackend(thread_name_prefix="mine") as threads:
        executor = DAGExecutor(NO_RETRY, backend=threads)
        on_threads = await executor.execute({"t": None}, {}, plain)
        in_loop = await executor.execute({"t": None}, {}, inline, backend=InlineBackend())
    assert str(on_threads.outputs()["t"]).startswith("mine")
    assert in_loop.outputs() == {"t": "inline"}


async def test_a_task_can_stay_in_the_loop_when_the_run_default_is_threads() -> None:
    main = threading.get_ident()

    def body(task_id: str, spec: Any) -> Any:
        async def inline() -> bool:
            return threading.get_ident() == main

        return inline() if task_id == "loop" else threading.get_ident() == main

    with ThreadBackend() as threads:
        result = await DAGExecutor(NO_RETRY).execute(
            {"loop": None, "thread": None}, {}, body,
            backend=threads, backends={"loop": InlineBackend()},
        )  # fmt: skip
    assert result.outputs() == {"loop": True, "thread": False}


async def test_a_user_backend_is_plugged_in_and_sees_every_attempt() -> None:
    class Recording:
        def __init__(self) -> None:
            self.calls: list[Hashable] = []

        def call(
            self, body: Callable[[Any, Any], Any], task_id: Hashable, spec: Any
        ) -> Awaitable[Any]:
            self.calls.append(task_id)
            return self._run(body, task_id, spec)

        async def _run(self, body: Callable[[Any, Any], Any], task_id: Hashable, spec: Any) -> Any:
            return ("remote", await body(task_id, spec))

    async def body(task_id: str, spec: Any) -> str:
        if spec == "fail-once" and backend.calls.count(task_id) == 1:
            raise ConnectionError("first attempt")
        return task_id

    backend = Recording()
    assert isinstance(backend, Backend)
    cfg = WaveConfig(retry_policy=RetryPolicy(max_retries=1, base_delay=0.001))
    result = await DAGExecutor(cfg).execute(
        {"a": None, "b": "fail-once"}, {"b": ["a"]}, body, backend=backend
    )
    assert result.outputs() == {"a": ("remote", "a"), "b": ("remote", "b")}
    assert backend.calls == ["a", "b", "b"]


async def test_a_backend_that_is_not_one_is_refused_before_anything_runs() -> None:
    ran: list[str] = []

    async def body(task_id: str, spec: Any) -> None:
        ran.append(task_id)

    with pytest.raises(TypeError, match="must be a backend"):
        await DAGExecutor().execute({"a": None}, {}, body, backend=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"backends\['a'\] must be a backend"):
        await DAGExecutor().execute({"a": None}, {}, body, backends={"a": "threads"})  # type: ignore[dict-item]
    assert ran == []


def test_importing_wave_executor_and_its_backends_never_imports_distributed() -> None:
    import subprocess
    import sys

    code = (
        "import sys, wave_executor, wave_executor.backends; "
        "from wave_executor.backends import ProcessBackend, ThreadBackend; "
        "print(','.join(m for m in ('distributed', 'dask', 'multiprocessing') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
