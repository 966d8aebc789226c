"""Durable runs: resume after a failure or a crash without redoing what succeeded."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from wave_executor import DAGExecutor, WaveConfig
from wave_executor.store import MemoryStore, SQLiteStore

FAST = WaveConfig(max_retries=0, circuit_breaker_enabled=False)


def chain_graph() -> tuple[dict[str, dict[str, int]], dict[str, set[str]]]:
    tasks = {t: {"n": k} for k, t in enumerate("abcde")}
    return tasks, {"b": {"a"}, "c": {"b"}, "d": {"c"}, "e": {"a"}}


async def test_resume_skips_recorded_successes_and_feeds_their_outputs() -> None:
    store = MemoryStore()
    calls: list[str] = []
    broken = {"c"}

    async def body(task_id: str, spec: dict[str, Any]) -> str:
        calls.append(task_id)
        if task_id in broken:
            raise RuntimeError("flaky upstream")
        return task_id + "".join(sorted(spec.get("_dep_outputs", {}).values()))

    tasks, deps = chain_graph()
    ex = DAGExecutor(FAST)
    first = await ex.execute(tasks, deps, body, inject_dep_outputs=True, store=store, run_id="r")
    assert first.run_id == "r" and first.task_results["d"].status == "skipped"
    assert sorted(calls) == ["a", "b", "c", "e"]
    calls.clear()
    broken.clear()
    second = await ex.execute(tasks, deps, body, inject_dep_outputs=True, store=store, run_id="r")
    assert sorted(calls) == ["c", "d"]  # a, b and e were reused
    assert sorted(second.restored) == ["a", "b", "e"]
    assert second.total_successful == 5
    assert second.task_results["d"].output == "dcba"  # built from the restored outputs
    assert second.task_results["b"].output == "ba"


async def test_a_changed_spec_reruns_the_task_and_its_dependents() -> None:
    store = MemoryStore()
    calls: list[str] = []

    async def body(task_id: str, spec: dict[str, int]) -> int:
        calls.append(task_id)
        return spec["n"]

    tasks, deps = chain_graph()
    ex = DAGExecutor(FAST)
    await ex.execute(tasks, deps, body, store=store, run_id="r")
    calls.clear()
    tasks["b"] = {"n": 99}
    result = await ex.execute(tasks, deps, body, store=store, run_id="r")
    assert sorted(calls) == ["b", "c", "d"]
    assert result.task_results["b"].output == 99


async def test_an_output_the_store_cannot_keep_fails_that_task_only() -> None:
    store = MemoryStore()

    class Opaque:
        pass

    async def body(task_id: str, spec: Any) -> Any:
        return Opaque() if task_id == "bad" else task_id

    result = await DAGExecutor(FAST).execute(
        {"bad": 1, "good": 2, "after": 3}, {"after": {"bad"}}, body, store=store, run_id="r"
    )
    bad = result.task_results["bad"]
    assert bad.status == "failed" and "Opaque" in (bad.error or "")
    assert bad.retry_count == 0
    assert result.task_results["good"].status == "success"
    assert result.task_results["after"].status == "skipped"


async def test_store_arguments_are_checked() -> None:
    async def body(task_id: Any, spec: Any) -> None:
        return None

    with pytest.raises(ValueError, match="without a store"):
        await DAGExecutor().execute({"a": 1}, {}, body, run_id="r")
    with pytest.raises(TypeError, match="strings or numbers"):
        await DAGExecutor().execute({("a", 1): 1}, {}, body, store=MemoryStore())
    result = await DAGExecutor().execute({1: "x"}, {}, body, store=MemoryStore())
    assert result.run_id == result.execution_id


async def test_every_attempt_is_recorded(tmp_path: Path) -> None:
    attempts = 0

    async def body(task_id: str, spec: Any) -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError(f"try {attempts}")
        return "ok"

    async with SQLiteStore(tmp_path / "runs.db") as store:
        cfg = WaveConfig(max_retries=3, retry_backoff_factor=0)
        await DAGExecutor(cfg).execute({"t": 1}, {}, body, store=store, run_id="r")
        tries = await store.task_attempts("r", "t")
        assert [(a.attempt, a.status, a.error) for a in tries] == [
            (1, "failed", "try 1"),
            (2, "failed", "try 2"),
            (3, "success", None),
        ]
        [record] = await store.run_tasks("r")
        assert record.status == "success" and record.retries == 2
        [run] = await store.list_runs()
        assert run.status == "completed" and run.succeeded == 1


CHILD = textwrap.dedent(
    """
    import asyncio, hashlib, os, sys
    from wave_executor import DAGExecutor, WaveConfig
    from wave_executor.store import SQLiteStore

    db, calls_path, pause = sys.argv[1], sys.argv[2], float(sys.argv[3])
    N = 2000

    def graph():
        tasks = {f"t{i}": {"i": i} for i in range(N)}
        deps = {f"t{i}": {f"t{(i * 7919) % i}", f"t{i // 2}"} for i in range(1, N)}
        return tasks, deps

    async def main():
        fd = os.open(calls_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

        async def body(task_id, spec):
            os.write(fd, (task_id + "\\n").encode())
            await asyncio.sleep(pause)
            ups = "".join(sorted(spec.get("_dep_outputs", {}).values()))
            return hashlib.sha256((task_id + ups).encode()).hexdigest()[:16]

        tasks, deps = graph()
        config = WaveConfig(max_parallel_per_wave=8, max_retries=0)
        async with SQLiteStore(db) as store:
            result = await DAGExecutor(config).execute(
                tasks, deps, body, inject_dep_outputs=True, store=store, run_id="crash"
            )
        outputs = {t: r.output for t, r in result.task_results.items()}
        print(result.total_successful, len(result.restored))
        with open(calls_path + ".outputs", "w") as f:
            import json
            json.dump(outputs, f)

    asyncio.run(main())
    """
)


def child(tmp_path: Path, db: Path, calls: Path, pause: float) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return subprocess.Popen(
        [sys.executable, str(script), str(db), str(calls), str(pause)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_a_run_killed_midway_resumes_without_redoing_committed_work(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    first_calls, second_calls = tmp_path / "calls-1", tmp_path / "calls-2"
    proc = child(tmp_path, db, first_calls, 0.004)
    deadline = time.monotonic() + 120
    while len(lines(first_calls)) < 600:
        assert proc.poll() is None, f"the child ended before it was killed: {proc.communicate()}"
        assert time.monotonic() < deadline, "the child made no progress"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert not (tmp_path / "calls-1.outputs").exists()

    async def committed() -> set[str]:
        async with SQLiteStore(db) as store:
            return {r.task_key for r in await store.run_tasks("crash", status="success")}

    done_before = asyncio.run(committed())
    assert 0 < len(done_before) < 2000

    rerun = child(tmp_path, db, second_calls, 0.0)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    successes, restored = map(int, out.split())
    assert successes == 2000 and restored >= len(done_before)
    assert not done_before & set(lines(second_calls)), "committed successes were run again"

    async def final() -> list[Any]:
        async with SQLiteStore(db) as store:
            return await store.run_tasks("crash", with_outputs=True)

    records = asyncio.run(final())
    assert len(records) == 2000 and len({r.task_key for r in records}) == 2000
    assert {r.status for r in records} == {"success"}

    # An uninterrupted run of the same graph gives the same outputs.
    clean = tmp_path / "clean"
    clean.mkdir()
    reference = child(clean, clean / "runs.db", clean / "calls", 0.0)
    reference.communicate(timeout=300)
    expected = json.loads((clean / "calls.outputs").read_text())
    assert json.loads((tmp_path / "calls-2.outputs").read_text()) == expected
    assert {r.task_key: r.output for r in records} == expected


async def test_a_durable_metadag_resumes_inside_its_nodes(tmp_path: Path) -> None:
    from wave_executor import MetaDAG, MetaDAGNodeSpec

    calls: list[str] = []
    broken = {"load"}

    async def step(task_id: str, spec: Any) -> str:
        calls.append(task_id)
        if task_id in broken:
            raise RuntimeError("disk full")
        return task_id

    def meta() -> MetaDAG:
        return (
            MetaDAG(config=FAST)
            .add_node(
                MetaDAGNodeSpec(
                    "etl",
                    tasks={"extract": {}, "transform": {}, "load": {}},
                    task_executor=step,
                    task_dependencies={"transform": {"extract"}, "load": {"transform"}},
                    config=FAST,
                )
            )
            .add_node(
                MetaDAGNodeSpec(
                    "watch",
                    tasks={"probe": {}},
                    task_executor=step,
                    node_type="reconciler",
                    policies="no",
                )
            )
        )

    async with SQLiteStore(tmp_path / "meta.db") as store:
        first = await meta().execute(store=store, run_id="nightly")
        assert first.node_results["etl"].status == "failed"
        broken.clear()
        calls.clear()
        second = await meta().execute(store=store, run_id="nightly")
        assert second.node_results["etl"].status == "success"
        assert calls == ["load"]  # extract, transform and probe were restored
        runs = {r.run_id for r in await store.list_runs()}
        assert "nightly/etl" in runs
    with pytest.raises(ValueError, match="run_id"):
        await meta().execute(store=MemoryStore())


async def test_restored_tasks_in_results_and_events_are_as_documented() -> None:
    """docs/concepts/durability.md, "Restored tasks in results and events"."""
    store = MemoryStore()
    tasks, deps = chain_graph()

    async def body(task_id: str, spec: dict[str, Any]) -> str:
        if task_id == "c" and not spec.get("fixed"):
            raise RuntimeError("not yet")
        return task_id

    await DAGExecutor(FAST).execute(tasks, deps, body, store=store, run_id="r")
    events: list[tuple[str, dict[str, Any]]] = []
    executor = DAGExecutor(FAST)
    executor.on_event(lambda kind, event: events.append((kind, event)))
    again = await executor.execute(
        {**tasks, "c": {"n": 2, "fixed": True}}, deps, body, store=store, run_id="r"
    )
    assert sorted(again.restored) == ["a", "b", "e"] and again.to_dict()["restored"] == 3
    for t in again.restored:
        r = again.task_results[t]
        assert (r.status, r.output, r.retry_count, r.duration_ms) == ("success", t, 0, 0.0)
        assert r.started_at == r.completed_at
        assert abs((r.started_at - again.started_at).total_seconds()) < 1e-3
    kinds = [k for k, _ in events]
    assert kinds[0] == "EXECUTION_STARTED" and kinds[1:4] == ["TASK_COMPLETED"] * 3
    assert kinds[4] == "TASK_STARTED"
    restored = [e for _, e in events[1:4]]
    assert {e["task_id"] for e in restored} == {"a", "b", "e"}
    assert all(e["restored"] is True and e["duration_ms"] == 0.0 for e in restored)
    assert all("restored" not in e for _, e in events[4:])
    assert {e["task_id"] for k, e in events if k == "TASK_STARTED"} == {"c", "d"}
