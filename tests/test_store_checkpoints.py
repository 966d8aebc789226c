"""Reconciler checkpoints in a JSON SQLite store, through the adapter."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from wave_executor import WaveReconciler
from wave_executor.store import ReconcilerCheckpoints, SQLiteStore


async def job(task_id: str, spec: dict[str, Any]) -> str:
    await asyncio.sleep(0)
    if spec.get("fail"):
        raise RuntimeError("broken")
    return f"{task_id}:{spec['v']}"


async def test_a_new_reconciler_restores_from_a_json_sqlite_store(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    async with SQLiteStore(path) as store:
        first = WaveReconciler(job, checkpoint_store=ReconcilerCheckpoints(store))
        await first.start()
        await first.update(
            tasks={"a": {"v": 1}, "b": {"v": 2}, "gone": {"v": 3}, "bad": {"v": 4, "fail": True}},
            dependencies={"b": {"a"}},
            policies={"bad": "no"},
        )
        assert await first.wait_until_complete(timeout=10)
        await first.update(
            tasks={"a": {"v": 1}, "b": {"v": 2}, "bad": {"v": 4, "fail": True}},
            dependencies={"b": {"a"}},
            policies={"bad": "no"},
        )
        await first.stop()

    calls: list[str] = []

    async def counting(task_id: str, spec: dict[str, Any]) -> str:
        calls.append(task_id)
        return await job(task_id, spec)

    async with SQLiteStore(path) as store:
        second = WaveReconciler(counting, checkpoint_store=ReconcilerCheckpoints(store))
        await second.start()
        assert await second.wait_until_complete(timeout=10)
        states = second.get_status().task_states
        await second.stop()
    assert "gone" not in states  # removed before the restart: stays removed
    assert states == {"a": "success", "b": "success", "bad": "failed"}
    assert calls == []  # final outcomes were restored, nothing ran again
