"""``wave-executor runs`` and ``wave-executor show RUN [TASK]``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from wave_executor.cli.commands import tail

__all__ = ["list_runs", "show_run"]


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def _secs(t: float | None) -> str:
    return f"{t:.2f}s" if t is not None else "-"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


async def list_runs(folder: Path, limit: int | None) -> int:
    from wave_executor.store import SQLiteStore

    db = folder / "runs.db"
    if not db.is_file():
        print(f"no runs recorded in {folder}")
        return 1
    async with SQLiteStore(db) as store:
        runs = await store.list_runs(limit=limit)
    rows = [["RUN", "STATUS", "STARTED", "TASKS", "OK", "FAILED", "SKIPPED", "EXECUTIONS"]]
    for r in runs:
        rows.append(
            [r.run_id, r.status, _when(r.created_at), str(r.total_tasks), str(r.succeeded),
             str(r.failed), str(r.skipped), str(r.executions)]
        )  # fmt: skip
    print(_table(rows))
    return 0


def run_info(folder: Path, run_id: str) -> dict[str, Any]:
    path = folder / "runs" / run_id / "pipeline.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"deps": {}, "tasks": {}}
    return data


async def show_run(folder: Path, run_id: str, task: str | None) -> int:
    from wave_executor.store import SQLiteStore

    db = folder / "runs.db"
    if not db.is_file():
        print(f"no runs recorded in {folder}")
        return 1
    async with SQLiteStore(db) as store:
        run = await store.get_run(run_id)
        if run is None:
            print(f"no run {run_id!r} in {db}; `wave-executor runs` lists them")
            return 1
        records = {r.task_key: r for r in await store.run_tasks(run_id)}
        info = run_info(folder, run_id)
        logs = folder / "runs" / run_id / "logs"
        names = list(info["tasks"]) or sorted(records)
        if task is not None:
            if task not in names and task not in records:
                print(f"run {run_id} has no task {task!r}; it has: {', '.join(names)}")
                return 1
            attempts = await store.task_attempts(run_id, task)
            record = records.get(task)
            print(f"task {task} of run {run_id}")
            meta = info["tasks"].get(task, {})
            if meta:
                print(f"  {meta['kind']}: {meta['what']}")
            print(f"  status: {record.status if record else 'not run'}")
            if record is not None:
                print(f"  duration: {_secs(record.duration)}, attempts: {record.attempts}")
                if record.error:
                    print("  error: " + record.error.replace("\n", "\n  "))
            for a in attempts:
                took = a.ended_at - a.started_at if a.ended_at and a.started_at else None
                err = f": {a.error.splitlines()[0]}" if a.error else ""
                print(
                    f"  attempt {a.attempt}: {a.status} {_secs(took)} at {_when(a.started_at)}{err}"
                )
            log = logs / f"{task}.log"
            if log.is_file():
                print(f"  log: {log}")
                for line in tail(log, 20):
                    print(f"    | {line}")
            return 0
        print(
            f"run {run.run_id}: {run.status}, {run.succeeded}/{run.total_tasks} succeeded, "
            f"{run.failed} failed, {run.skipped} skipped, {run.executions} execution(s)"
        )
        print(f"started {_when(run.created_at)}, finished {_when(run.finished_at)}")
        rows = [["TASK", "STATUS", "ATTEMPTS", "DURATION", "ERROR", "LOG"]]
        for name in names:
            r = records.get(name)
            log = logs / f"{name}.log"
            error = (r.error or "").splitlines()[0] if r and r.error else ""
            status = r.status if r else "not run"
            if r is None and run.status == "interrupted" and log.is_file():
                status = "interrupted"
            rows.append(
                [name, status, str(r.attempts) if r else "0",
                 _secs(r.duration) if r else "-", error[:60],
                 str(log) if log.is_file() else "-"]
            )  # fmt: skip
        print(_table(rows))
        return 0
