"""A recorded run (``SQLiteStore`` plus the CLI's ``pipeline.json``) as a report."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from wave_executor.report.html import Bar, Timeline, render_report

__all__ = ["run_timeline", "write_run_report"]


async def run_timeline(store: Any, run_id: str, deps: dict[str, list[str]]) -> Timeline | None:
    """The attempts of ``run_id``'s latest execution, in seconds from its first start.

    Tasks whose stored success that execution reused have no attempt in it;
    they are listed as ``reused``.
    """
    info = await store.get_run(run_id)
    if info is None:
        return None
    records = await store.run_tasks(run_id)
    attempts = []
    for record in records:
        attempts.extend(await store.task_attempts(run_id, record.task_key))
    latest = max(attempts, key=lambda a: a.started_at or 0.0).execution_id if attempts else None
    mine = [a for a in attempts if a.execution_id == latest and a.started_at is not None]
    t0 = min((a.started_at for a in mine), default=0.0)
    bars = [
        Bar(a.task_key, a.attempt, a.status, a.started_at - t0, (a.ended_at or a.started_at) - t0,
            a.error or "")
        for a in sorted(mine, key=lambda a: (a.started_at, a.task_key))
    ]  # fmt: skip
    ran = {b.task for b in bars}
    statuses = {r.task_key: (r.status if r.task_key in ran or r.status != "success" else "reused")
                for r in records}  # fmt: skip
    for name in deps:
        statuses.setdefault(name, "not run")
    note = f"Run {run_id}: {info.status}, execution {info.executions} of {info.executions}."
    return Timeline(f"Run {run_id}", bars, deps, statuses, note)


async def _load(db: Path, run_id: str, deps: dict[str, list[str]]) -> Timeline | None:
    from wave_executor.store import SQLiteStore

    async with SQLiteStore(db) as store:
        return await run_timeline(store, run_id, deps)


def write_run_report(folder: Path, run_id: str, output: Path) -> int:
    """Write ``output`` for ``run_id`` recorded in ``folder``; returns an exit status."""
    db = folder / "runs.db"
    if not db.is_file():
        print(f"no runs recorded in {folder}")
        return 1
    try:
        info = json.loads((folder / "runs" / run_id / "pipeline.json").read_text("utf-8"))
        deps: dict[str, list[str]] = info.get("deps", {})
        for name in info.get("tasks", {}):
            deps.setdefault(name, [])
    except (OSError, ValueError):
        deps = {}
    timeline = asyncio.run(_load(db, run_id, deps))
    if timeline is None:
        print(f"no run {run_id!r} in {db}; `wave-executor runs` lists them")
        return 1
    output.write_text(render_report(f"wave-executor: {run_id}", [timeline]), encoding="utf-8")
    print(f"wrote {output} ({len(timeline.bars)} attempts)")
    return 0
