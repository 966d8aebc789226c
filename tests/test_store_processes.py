"""Several processes on one SQLiteStore file: no corruption, and one execution per run."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from wave_executor.store import RunLockedError, SQLiteStore, TaskRecord

HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from wave_executor.store import SQLiteStore

    async def main(path):
        store = SQLiteStore(path)
        await store.begin_run("shared", "holder-execution", total_tasks=1)
        print("holding", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # until the test says so (or kills us)
        await store.end_run("shared", "holder-execution", "completed")
        await store.close()

    asyncio.run(main(sys.argv[1]))
    """
)

WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    from wave_executor.store import AttemptRecord, SQLiteStore, TaskRecord

    async def main(path, run_id, n):
        store = SQLiteStore(path, batch_size=25, flush_interval=0.001, busy_timeout=30)
        await store.begin_run(run_id, "exec-" + run_id, total_tasks=n)
        now = time.time()
        for i in range(n):
            store.record_attempt(run_id, AttemptRecord(f"t{i}", 1, "success", None, now, now))
            store.record_outcome(run_id, TaskRecord(f"t{i}", "success", "fp", [run_id, i],
                                                    None, now, now, 0))
            if i % 100 == 0:
                await asyncio.sleep(0)
        await store.end_run(run_id, "exec-" + run_id, "completed")
        await store.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


@contextlib.contextmanager
def holder(db: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "holding"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


async def test_a_run_held_by_a_live_process_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    with holder(db) as proc:
        store = SQLiteStore(db)
        with pytest.raises(RunLockedError) as info:
            await store.begin_run("shared", "intruder", total_tasks=1)
        assert f"pid {proc.pid}" in str(info.value) and "holder-execution" in str(info.value)
        await store.begin_run("other", "intruder", total_tasks=1)  # other runs are free
        assert proc.stdin is not None
        proc.stdin.write("done\n")
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 0
        await store.begin_run("shared", "intruder", total_tasks=1)  # ended: free
        await store.close()


async def test_a_run_whose_holder_was_killed_can_be_resumed_at_once(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    with holder(db) as proc:
        proc.kill()  # SIGKILL: no end_run, no close, the lease row stays behind
        proc.wait(timeout=30)
    store = SQLiteStore(db)  # lease_seconds is 30: only the dead pid can free it this soon
    info = await store.get_run("shared")
    assert info is not None and info.status == "interrupted"
    await store.begin_run("shared", "resumer", total_tasks=1)
    await store.end_run("shared", "resumer", "completed")
    await store.close()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT execution_id, status FROM executions ORDER BY id").fetchall()
    assert rows == [("holder-execution", "interrupted"), ("resumer", "completed")]


def spawn_writer(db: Path, run_id: str, n: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(db), run_id, str(n)])


async def test_two_processes_write_one_file_at_once(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    store = SQLiteStore(db)  # create the schema before the race (a race is fine too)
    n = 1500
    procs = [spawn_writer(db, run_id, n) for run_id in ("left", "right")]
    # and this process writes a third run meanwhile
    await store.begin_run("middle", "exec-middle", total_tasks=n)
    for i in range(n):
        store.record_outcome("middle", _ok(f"t{i}"))
    await store.end_run("middle", "exec-middle", "completed")
    assert [p.wait(timeout=120) for p in procs] == [0, 0]

    runs = {r.run_id: r for r in await store.list_runs()}
    assert set(runs) == {"left", "right", "middle"}
    for run in runs.values():
        assert (run.status, run.succeeded, run.recorded) == ("completed", n, n)
    outputs = await store.load_successes("right")
    assert outputs["t1234"] == ("fp", ["right", 1234])
    assert len(await store.task_attempts("left", "t7")) == 1
    await store.close()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def _ok(key: str) -> TaskRecord:
    return TaskRecord(key, "success", "fp", key, None, 0.0, 0.0, 0)
