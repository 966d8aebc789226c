"""What a resumed run may reuse: spec fingerprints and the reusable set.

A task's stored success is reused only when its spec is unchanged (same
fingerprint) *and* every task it depends on is reused too: a dependency
that runs again may produce a different output, so everything downstream
of a task that runs runs as well.

Fingerprints hash a canonical JSON form of the spec (keys sorted; sets
sorted; tuples as lists; dataclasses, enums, datetimes, bytes and paths in
a stable textual form). A spec that has no such form (an arbitrary object)
gets no fingerprint, and a task without one is never reused: running it
again is safe, guessing is not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from datetime import date, datetime, time
from enum import Enum
from pathlib import PurePath
from typing import Any

from wave_executor._core.graph import Graph

__all__ = ["fingerprint", "reusable_tasks", "task_key"]


def _canonical(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, PurePath):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__dataclass__": type(value).__qualname__, **dataclasses.asdict(value)}
    raise TypeError(f"no canonical form for {type(value).__name__}")


def fingerprint(spec: Any) -> str | None:
    """A stable hash of the spec, or None when the spec has no canonical form."""
    try:
        text = json.dumps(
            spec, sort_keys=True, separators=(",", ":"), default=_canonical, allow_nan=True
        )
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def task_key(task_id: Any) -> str:
    """The key a task is stored under: its id if it is a string, else its JSON form.

    Ids that JSON cannot express exactly (tuples become lists, for example)
    are refused, so two ids never share a key.
    """
    if isinstance(task_id, str):
        return task_id
    if isinstance(task_id, bool) or not isinstance(task_id, (int, float)):
        raise TypeError(f"durable runs need task ids that are strings or numbers; got {task_id!r}")
    return json.dumps(task_id)


def reusable_tasks(
    graph: Graph, fingerprints: list[str | None], stored: Mapping[str, tuple[str | None, Any]]
) -> list[int]:
    """Indices of tasks whose stored success can stand in for running them."""
    n = len(graph)
    ok = bytearray(n)
    for i, task_id in enumerate(graph.ids):
        fp = fingerprints[i]
        record = stored.get(task_key(task_id))
        if fp is not None and record is not None and record[0] == fp:
            ok[i] = 1
    # Everything downstream of a task that runs must run too.
    offsets, successors = graph.offsets, graph.successors
    stack = [i for i in range(n) if not ok[i]]
    seen = bytearray(n)
    for i in stack:
        seen[i] = 1
    while stack:
        u = stack.pop()
        for k in range(offsets[u], offsets[u + 1]):
            s = successors[k]
            if not seen[s]:
                seen[s] = 1
                ok[s] = 0
                stack.append(s)
    return [i for i in range(n) if ok[i]]
