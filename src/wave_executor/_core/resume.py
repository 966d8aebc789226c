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
import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from enum import Enum
from pathlib import PurePath
from typing import Any

from wave_executor._core.fan_out import ChildId
from wave_executor._core.graph import Graph

__all__ = ["fingerprint", "legacy_task_key", "reusable_tasks", "stored_keys", "task_key"]


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


#: Starts the key of a number id; a string id that starts with it gets one more.
NUMBER_MARK = "#"


def task_key(task_id: Any) -> str:
    """The key a task is stored under, distinct for distinct ids of any type.

    A string is its own key (with one more ``#`` in front if it starts with
    ``#``); a number is ``#`` and its JSON form: ``1`` -> ``"#1"``, ``"1"`` ->
    ``"1"``, ``"#1"`` -> ``"##1"``. Ids that JSON cannot express exactly
    (tuples become lists, for example) and NaN (it equals nothing, itself
    included) are refused, so two ids never share a key. A fan-out child
    ``ChildId(parent, key)`` is ``#`` and the JSON list of the keys of its
    parent and item key: ``ChildId("a", 1)`` -> ``'#["a","#1"]'``, which no
    string (``##...``) or number (``#`` and a digit, ``-``, ``I`` or ``N``)
    id has.
    """
    if type(task_id) is ChildId:
        pair = [task_key(task_id.parent), task_key(task_id.key)]
        return NUMBER_MARK + json.dumps(pair, ensure_ascii=False, separators=(",", ":"))
    if isinstance(task_id, str):
        return NUMBER_MARK + task_id if task_id.startswith(NUMBER_MARK) else task_id
    return NUMBER_MARK + legacy_task_key(task_id)


def legacy_task_key(task_id: Any) -> str:
    """The key of wave-executor before type-aware keys: ``1`` and ``"1"`` shared ``"1"``."""
    if isinstance(task_id, str):
        return task_id
    if isinstance(task_id, bool) or not isinstance(task_id, (int, float)):
        raise TypeError(f"durable runs need task ids that are strings or numbers; got {task_id!r}")
    if isinstance(task_id, float) and math.isnan(task_id):
        raise ValueError(f"durable runs cannot tell NaN task ids apart; got {task_id!r}")
    return json.dumps(task_id)


def stored_keys(
    ids: Sequence[Any], fingerprints: Sequence[str | None], stored: Mapping[str, Any]
) -> list[str | None]:
    """For each id, the key of ``stored`` that holds its success, or None.

    Its own key, or else the key an older version stored it under (a store
    written before type-aware keys still resumes). A row that may belong to
    another id of this graph is never guessed at: an older version kept
    ``1`` and ``"1"`` under one key, so a row under ``"1"`` whose spec
    fingerprint fits both (and ``1`` has no row of its own) is used by
    neither, and both run again.
    """
    keys = [task_key(task_id) for task_id in ids]
    legacy = [legacy_task_key(task_id) for task_id in ids]
    sharing: dict[str, list[int]] = {}  # old key -> tasks that were stored under it
    for i, old in enumerate(legacy):
        sharing.setdefault(old, []).append(i)
    new_keys = set(keys)
    found: list[str | None] = []
    for i, (key, old) in enumerate(zip(keys, legacy, strict=True)):
        if key in stored:
            row_fp = stored[key][0]
            doubt = any(
                j != i and keys[j] not in stored and fingerprints[j] == row_fp
                for j in sharing.get(key, ())
            )
            found.append(None if doubt else key)
        elif old != key and old in stored and len(sharing[old]) == 1 and old not in new_keys:
            found.append(old)
        else:
            found.append(None)
    return found


def reusable_tasks(
    graph: Graph,
    fingerprints: list[str | None],
    stored: Mapping[str, tuple[str | None, Any]],
    keys: Sequence[str | None] | None = None,
) -> list[int]:
    """Indices of tasks whose stored success can stand in for running them.

    ``keys`` are ``stored_keys(graph.ids, fingerprints, stored)``, computed
    when not given.
    """
    n = len(graph)
    if keys is None:
        keys = stored_keys(graph.ids, fingerprints, stored)
    ok = bytearray(n)
    for i in range(n):
        fp, key = fingerprints[i], keys[i]
        record = None if key is None else stored[key]
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
