"""Longest weighted path through a finished run (the critical path)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from wave_executor._core.fan_out import ChildId

__all__ = ["longest_path"]


def longest_path(
    durations: Mapping[Any, float], dependencies: Mapping[Any, Iterable[Any]]
) -> list[Any]:
    """The chain with the largest summed duration, root first.

    Dependencies on ids missing from ``durations`` are ignored, so a partial
    result still has a path. Iterative (Kahn order), so depth is unbounded.
    Ties go to the chain found first. Fan-out children (``ChildId``) are
    not links of their own: each parent on the path is followed by its
    slowest child.
    """
    slowest: dict[Any, tuple[float, Any]] = {}
    if any(type(t) is ChildId for t in durations):
        for t, d in durations.items():
            if type(t) is ChildId and (t.parent not in slowest or d > slowest[t.parent][0]):
                slowest[t.parent] = (d, t)
        durations = {t: d for t, d in durations.items() if type(t) is not ChildId}
    preds: dict[Hashable, list[Any]] = {}
    succs: dict[Hashable, list[Any]] = {}
    waiting: dict[Any, int] = dict.fromkeys(durations, 0)
    for task, deps in dependencies.items():
        if task not in durations:
            continue
        known = [d for d in dict.fromkeys(deps) if d in durations]
        preds[task] = known
        waiting[task] = len(known)
        for d in known:
            succs.setdefault(d, []).append(task)
    order = [t for t, w in waiting.items() if w == 0]
    best: dict[Hashable, float] = {}
    via: dict[Hashable, Hashable | None] = {}
    head = 0
    while head < len(order):
        t = order[head]
        head += 1
        parent = max(preds.get(t, ()), key=best.__getitem__, default=None)
        best[t] = durations[t] + (best[parent] if parent is not None else 0.0)
        via[t] = parent
        for s in succs.get(t, ()):
            waiting[s] -= 1
            if waiting[s] == 0:
                order.append(s)
    if not best:
        return []
    end: Hashable | None = max(best, key=best.__getitem__)
    path: list[Any] = []
    while end is not None:
        path.append(end)
        end = via[end]
    path.reverse()
    if slowest:
        path = [x for t in path for x in ((t, slowest[t][1]) if t in slowest else (t,))]
    return path
