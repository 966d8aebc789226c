"""Hostile and careless use: callbacks, stores, configs and key functions that misbehave.

Each test pins a defect that made a run hang, crash or lose what it had:
the scheduler must stay correct whatever user code throws at it. Everything
time-dependent runs on the virtual clock, so a hang fails an
``asyncio.timeout`` after virtual seconds instead of blocking the suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Recorder, leftover_tasks
from wave_executor import DAGExecutor, WaveConfig, WaveReconciler
from wave_executor._core.resume import fingerprint
from wave_executor.store import MemoryStore, SQLiteStore, StoreCorruptError, TaskRecord, commands
from wave_executor.testing import run_virtual

GRAPH: dict[str, dict[str, Any]] = {"a": {}, "b": {}, "c": {}}
DEPS = {"b": ["a"], "c": ["b"]}


async def echo(task_id: Any, spec: Any) -> Any:
    return task_id


async def sleepy(task_id: Any, spec: Any) -> Any:
    await asyncio.sleep(1)
    return task_id


# -- event callbacks ----------------------------------------------------------


@pytest.mark.parametrize("event", ["EXECUTION_STARTED", "TASK_STARTED", "TASK_COMPLETED"])
def test_a_sync_callback_raising_cancelled_error_is_logged_and_the_run_completes(
    event: str, caplog: pytest.LogCaptureFixture
) -> None:
    def callback(event_type: str, payload: dict[str, Any]) -> None:
        if event_type == event:
            raise asyncio.CancelledError

    async def main() -> Any:
        executor = DAGExecutor()
        executor.on_event(callback)
        async with asyncio.timeout(100):  # it used to hang (or raise CancelledError)
            result = await executor.execute(GRAPH, DEPS, sleepy)
        return result, await leftover_tasks()

    (result, left), elapsed = run_virtual(main())
    assert result.total_successful == 3 and result.succeeded
    assert {t: r.output for t, r in result.task_results.items()} == {"a": "a", "b": "b", "c": "c"}
    assert elapsed == pytest.approx(3.0)
    assert left == set()
    assert f"event callback {callback!r} failed on {event}" in caplog.text


def test_an_async_callback_raising_cancelled_error_once_does_not_drop_later_events(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[tuple[str, Any]] = []

    async def callback(event_type: str, payload: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        if event_type == "TASK_STARTED" and payload["task_id"] == "a":
            raise asyncio.CancelledError
        seen.append((event_type, payload["task_id"]))

    async def main() -> Any:
        executor = DAGExecutor()
        executor.on_event(callback)
        async with asyncio.timeout(100):
            await executor.execute(GRAPH, DEPS, sleepy)
        return await leftover_tasks()

    left, _ = run_virtual(main())
    assert left == set()
    assert seen == [
        ("EXECUTION_STARTED", None),
        ("TASK_COMPLETED", "a"),
        ("TASK_STARTED", "b"),
        ("TASK_COMPLETED", "b"),
        ("TASK_STARTED", "c"),
        ("TASK_COMPLETED", "c"),
        ("EXECUTION_COMPLETED", None),
    ]
    assert "async event callback failed" in caplog.text


def test_a_caller_cancelling_execute_still_ends_a_slow_async_callback() -> None:
    """The dispatcher tells a real cancellation from one a callback raises."""
    delivered: list[str] = []

    async def callback(event_type: str, payload: dict[str, Any]) -> None:
        await asyncio.sleep(10)
        delivered.append(event_type)

    async def main() -> Any:
        executor = DAGExecutor()
        executor.on_event(callback)
        run = asyncio.ensure_future(executor.execute(GRAPH, DEPS, sleepy))
        await asyncio.sleep(1.5)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        return await leftover_tasks()

    left, elapsed = run_virtual(main())
    assert left == set()
    assert elapsed == pytest.approx(1.5)
    assert delivered == []


# -- configuration --------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("circuit_failure_threshold", 0),
        ("circuit_failure_threshold", -1),
        ("circuit_failure_threshold", 2.5),
        ("circuit_success_threshold", 0),
        ("circuit_success_threshold", -3),
        ("circuit_success_threshold", math.nan),
        ("circuit_recovery_timeout", math.nan),
        ("circuit_recovery_timeout", -1.0),
        ("max_parallel_per_wave", 2.5),
        ("max_parallel_per_wave", math.nan),
        ("max_parallel_per_wave", "4"),
        ("max_parallel_per_wave", True),
        ("max_parallel_per_wave", 0),
        ("inter_wave_delay_ms", math.nan),
        ("inter_wave_delay_ms", math.inf),
        ("inter_wave_delay_ms", -5),
    ],
)
def test_a_wave_config_with_a_bad_value_is_refused_naming_the_field_and_the_value(
    field: str, value: Any
) -> None:
    with pytest.raises(ValueError, match=f"^{field} .*got {re.escape(repr(value))}$"):
        WaveConfig(**{field: value})


def test_a_wave_config_still_accepts_the_edge_values_that_work() -> None:
    config = WaveConfig(
        max_parallel_per_wave=1,
        circuit_failure_threshold=1,
        circuit_success_threshold=1,
        circuit_recovery_timeout=0.0,
        inter_wave_delay_ms=0.5,  # type: ignore[arg-type]  # 0.3.0 took floats too
    )
    assert config.circuit_recovery_timeout == 0.0
    assert WaveConfig(circuit_recovery_timeout=math.inf).circuit_recovery_timeout == math.inf


# -- circuit keys -----------------------------------------------------------------


async def fail_a(task_id: Any, spec: Any) -> Any:
    await asyncio.sleep(1)
    if task_id == "a":
        raise RuntimeError("a is down")
    return task_id


def _raising_key(task_id: Any, spec: Any) -> Any:
    if task_id == "a":
        raise LookupError("no key for a")
    return "shared"


def _list_key(task_id: Any, spec: Any) -> Any:
    return ["not", "hashable"]


@pytest.mark.parametrize(
    ("key_function", "specs", "why"),
    [
        (_raising_key, GRAPH, "circuit_key function raised LookupError: no key for a"),
        (_list_key, GRAPH, "circuit_key function returned an unhashable list"),
        (None, {**GRAPH, "a": {"circuit_key": ["x"]}}, 'spec["circuit_key"] is an unhashable'),
    ],
)
def test_a_bad_circuit_key_fails_that_task_with_a_clear_error_and_the_run_goes_on(
    key_function: Any, specs: dict[str, Any], why: str
) -> None:
    async def main() -> Any:
        async with asyncio.timeout(100):
            result = await DAGExecutor(WaveConfig(max_retries=2)).execute(
                {**specs, "z": {}}, DEPS, fail_a, circuit_key=key_function
            )
        return result, await leftover_tasks()

    (result, left), _ = run_virtual(main())
    assert left == set()
    statuses = {t: r.status for t, r in result.task_results.items()}
    assert statuses == {"a": "failed", "b": "skipped", "c": "skipped", "z": "success"}
    error = result.task_results["a"].error
    assert error is not None and "task 'a'" in error and why in error
    assert result.task_results["a"].retry_count == 0  # every attempt would fail alike


def test_a_circuit_key_that_raises_once_breakers_exist_fails_only_its_own_task() -> None:
    """Once a breaker exists, keys are looked up before each attempt too."""
    calls: list[Any] = []

    def key(task_id: Any, spec: Any) -> Any:
        if task_id == "y":
            raise KeyError(task_id)
        return "shared"

    async def body(task_id: Any, spec: Any) -> Any:
        calls.append(task_id)
        await asyncio.sleep(spec["s"])
        if task_id == "a":
            raise RuntimeError("a is down")
        return task_id

    async def main() -> Any:
        # a fails at 1 s (its breaker is made), z ends at 2 s, then y looks its breaker up.
        specs = {"a": {"s": 1}, "y": {"s": 1}, "z": {"s": 2}}
        async with asyncio.timeout(100):
            return await DAGExecutor(WaveConfig(max_retries=0)).execute(
                specs, {"y": ["z"]}, body, circuit_key=key
            )

    result, _ = run_virtual(main())
    statuses = {t: r.status for t, r in result.task_results.items()}
    assert statuses == {"a": "failed", "y": "failed", "z": "success"}
    assert sorted(calls) == ["a", "z"]  # y never ran: its breaker could not be found
    error = result.task_results["y"].error
    assert error is not None and "circuit_key function raised KeyError" in error


# -- durable runs: the lease --------------------------------------------------------


class LoadFails(MemoryStore):
    """A store whose stored successes cannot be loaded (a damaged blob), ``times`` times."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.times = times

    async def load_successes(self, run_id: str) -> dict[str, tuple[str | None, Any]]:
        if self.times:
            self.times -= 1
            raise StoreCorruptError("damaged output blob")
        return await super().load_successes(run_id)


class LoadHangs(MemoryStore):
    """A store whose first load of stored successes waits until the caller gives up."""

    def __init__(self) -> None:
        super().__init__()
        self.loading = asyncio.Event()

    async def load_successes(self, run_id: str) -> dict[str, tuple[str | None, Any]]:
        if not self.loading.is_set():
            self.loading.set()
            await asyncio.sleep(3600)
        return await super().load_successes(run_id)


async def test_a_run_whose_stored_successes_cannot_be_loaded_is_released() -> None:
    store = LoadFails(times=1)
    with pytest.raises(StoreCorruptError):
        await DAGExecutor().execute(GRAPH, DEPS, echo, store=store, run_id="r")
    info = await store.get_run("r")
    assert info is not None and info.status == "interrupted"
    # It used to raise RunLockedError until the store was closed.
    result = await DAGExecutor().execute(GRAPH, DEPS, echo, store=store, run_id="r")
    assert result.succeeded


def test_a_caller_cancelling_execute_while_stored_successes_load_releases_the_run() -> None:
    async def main() -> Any:
        store = LoadHangs()
        run = asyncio.ensure_future(
            DAGExecutor().execute(GRAPH, DEPS, echo, store=store, run_id="r")
        )
        await store.loading.wait()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        info = await store.get_run("r")
        async with asyncio.timeout(100):
            result = await DAGExecutor().execute(GRAPH, DEPS, echo, store=store, run_id="r")
        return info, result, await leftover_tasks()

    (info, result, left), _ = run_virtual(main())
    assert info is not None and info.status == "interrupted"
    assert result.succeeded and left == set()


async def test_a_sqlite_run_with_a_damaged_output_is_released_each_time(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    async with SQLiteStore(db) as store:
        await DAGExecutor().execute(GRAPH, DEPS, echo, store=store, run_id="r")
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:  # closed: 3.13 warns otherwise
        conn.execute("UPDATE outcomes SET output = x'ff00'")
    errors = []  # kept with their tracebacks (and whatever those hold) until the end
    async with SQLiteStore(db) as store:
        for _ in range(2):  # the second time it used to raise RunLockedError
            with pytest.raises(StoreCorruptError) as caught:
                await DAGExecutor().execute(GRAPH, DEPS, echo, store=store, run_id="r")
            errors.append(caught.value)
        info = await store.get_run("r")
        assert info is not None and info.status == "interrupted" and info.executions == 3


async def test_a_sqlite_begin_run_cancelled_while_the_writer_claims_the_run_gives_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    claimed, go_on = threading.Event(), threading.Event()
    begin_run = commands.begin_run

    def slow_begin_run(*args: Any, **kwargs: Any) -> Any:
        try:
            return begin_run(*args, **kwargs)
        finally:
            claimed.set()
            go_on.wait(10)

    monkeypatch.setattr(commands, "begin_run", slow_begin_run)
    async with SQLiteStore(tmp_path / "runs.db") as store:
        run = asyncio.ensure_future(
            DAGExecutor().execute(GRAPH, DEPS, echo, store=store, run_id="r")
        )
        assert await asyncio.to_thread(claimed.wait, 10)
        run.cancel()  # the claim is committed, begin_run has not returned yet
        await asyncio.sleep(0)
        go_on.set()
        with pytest.raises(asyncio.CancelledError):
            await run
        monkeypatch.setattr(commands, "begin_run", begin_run)
        result = await DAGExecutor().execute(GRAPH, DEPS, echo, store=store, run_id="r")
        assert result.succeeded


# -- reconciler lifecycle ---------------------------------------------------------


def test_start_while_a_stop_is_waiting_lets_that_stop_return_then_starts_again() -> None:
    starts: list[float] = []

    async def slow_to_stop(task_id: Any, spec: Any) -> Any:
        loop = asyncio.get_running_loop()
        starts.append(loop.time())
        try:
            await asyncio.sleep(1000)
        except asyncio.CancelledError:
            await asyncio.sleep(2)  # cleans up for 2 s, then gives in
            raise

    async def main() -> Any:
        events = Recorder()
        r = WaveReconciler(slow_to_stop)
        r.on_event(events)
        await r.start()
        await r.update({"t": {}})
        await asyncio.sleep(1)
        stopping = asyncio.ensure_future(r.stop())
        await asyncio.sleep(0.5)  # stop() waits for t to clean up
        async with asyncio.timeout(100):  # it used to wait for ever
            await r.start()
            await stopping
        running = r.running
        await asyncio.sleep(1)
        states = r.get_status().task_states
        await r.stop()
        return running, states, events.types(kind=None), await leftover_tasks()

    (running, states, types, left), _ = run_virtual(main())
    assert running and states == {"t": "running"}
    assert starts == [0.0, 2.0]  # restarted once the stop was over (re-cancelled at 2 s)
    lifecycle = [t for t in types if t.startswith("RECONCILER_")]
    assert lifecycle[:4] == [
        "RECONCILER_STARTED", "RECONCILER_STOPPED", "RECONCILER_STARTED", "RECONCILER_STOPPED"
    ]  # fmt: skip
    assert left == set()


# -- durable runs: task keys --------------------------------------------------------


@pytest.mark.parametrize(("number", "text"), [(1, "1"), (1.5, "1.5"), (math.inf, "Infinity")])
async def test_a_number_id_and_its_string_spelling_are_resumed_as_two_tasks(
    number: Any, text: str
) -> None:
    store = MemoryStore()
    calls: list[Any] = []

    async def body(task_id: Any, spec: Any) -> Any:
        calls.append(task_id)
        if task_id == spec["fail"]:
            raise RuntimeError("down")
        return f"output of {task_id!r}"

    tasks = {number: {"fail": number, "n": 0}, text: {"fail": number, "n": 1}}
    executor = DAGExecutor(WaveConfig(max_retries=0))
    await executor.execute(tasks, {}, body, store=store, run_id="r")
    calls.clear()
    result = await executor.execute(tasks, {}, body, store=store, run_id="r")
    assert calls == [number]  # the string's success is reused, the number runs again
    # It used to hand the string's output to the number (one key, "1", for both).
    assert result.task_results[number].status == "failed"
    assert result.task_results[text].output == f"output of {text!r}"
    keys = {t.task_key for t in await store.run_tasks("r")}
    assert keys == {text, f"#{text}"}


async def test_a_string_id_that_starts_with_the_number_marker_gets_a_key_of_its_own() -> None:
    store = MemoryStore()
    tasks: dict[Any, Any] = {1: {}, "#1": {}, "##1": {}}
    await DAGExecutor().execute(tasks, {}, echo, store=store, run_id="r")
    assert {t.task_key for t in await store.run_tasks("r")} == {"#1", "##1", "###1"}
    result = await DAGExecutor().execute(tasks, {}, echo, store=store, run_id="r")
    assert {t: r.output for t, r in result.task_results.items()} == {1: 1, "#1": "#1", "##1": "##1"}
    assert set(result.restored) == set(tasks)


async def test_a_nan_task_id_is_refused_for_a_durable_run_before_anything_runs() -> None:
    with pytest.raises(ValueError, match="nan"):
        await DAGExecutor().execute({math.nan: {}}, {}, echo, store=MemoryStore())


async def test_a_store_written_with_the_old_number_keys_still_resumes() -> None:
    store = MemoryStore()
    legacy = {1: ("1",), 2.5: ("2.5",), "a": ("a",)}
    await store.begin_run("r", "old", total_tasks=3)
    for task_id in legacy:
        spec = {"n": str(task_id)}
        key = json.dumps(task_id) if not isinstance(task_id, str) else task_id
        store.record_outcome(
            "r", TaskRecord(key, "success", fingerprint(spec), f"old {task_id}", None, 0.0, 1.0)
        )
    await store.end_run("r", "old", "completed")
    calls: list[Any] = []

    async def body(task_id: Any, spec: Any) -> Any:
        calls.append(task_id)
        return f"new {task_id}"

    tasks = {task_id: {"n": str(task_id)} for task_id in legacy}
    result = await DAGExecutor().execute(tasks, {}, body, store=store, run_id="r")
    assert calls == []
    assert {t: r.output for t, r in result.task_results.items()} == {
        1: "old 1",
        2.5: "old 2.5",
        "a": "old a",
    }


async def test_an_old_key_two_ids_shared_is_not_guessed_at() -> None:
    """An old store kept 1 and "1" under one key: its row could be either's."""
    store = MemoryStore()
    spec = {"same": "spec"}
    await store.begin_run("r", "old", total_tasks=2)
    store.record_outcome("r", TaskRecord("1", "success", fingerprint(spec), "?", None, 0.0, 1.0))
    await store.end_run("r", "old", "completed")
    calls: list[Any] = []

    async def body(task_id: Any, spec: Any) -> Any:
        calls.append(task_id)
        return task_id

    result = await DAGExecutor().execute({1: spec, "1": spec}, {}, body, store=store, run_id="r")
    assert sorted(calls, key=repr) == ["1", 1]
    assert {t: r.output for t, r in result.task_results.items()} == {1: 1, "1": "1"}
