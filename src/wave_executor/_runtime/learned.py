"""Learned priorities: earlier runs' recorded durations as ``priority_costs``.

A run given a store, and no ``priority_costs``, looks up how long each of
its tasks took when it last succeeded in one of the store's latest
:data:`HISTORY_RUNS` runs (the newest record wins), and ranks tasks by
those seconds instead of by counting tasks. Tasks without a record are
estimated at the mean of the others (as for any partial ``priority_costs``);
with no record at all nothing changes. ``priority_costs={}`` turns it off.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wave_executor._core.resume import task_key
from wave_executor._core.store_protocol import RunStore

__all__ = ["HISTORY_RUNS", "learned_costs"]

#: How many of the store's latest runs are read for durations.
HISTORY_RUNS = 5


async def learned_costs(store: RunStore, task_ids: Iterable[Any]) -> dict[Any, float] | None:
    """Seconds per task id from the store's latest successes, or None when it knows none."""
    by_key: dict[str, Any] = {}
    for task_id in task_ids:
        try:
            by_key[task_key(task_id)] = task_id
        except TypeError:
            return None  # such ids are refused by durable runs anyway
    found: dict[Any, float] = {}
    for info in await store.list_runs(limit=HISTORY_RUNS):
        for record in await store.run_tasks(info.run_id, status="success"):
            task_id = by_key.get(record.task_key)
            duration = record.duration
            if task_id is not None and task_id not in found and duration is not None:
                found[task_id] = max(0.0, duration)
        if len(found) == len(by_key):
            break
    return found or None
