"""How level mode merges the outputs of one wave (``AggregationStrategy``).

Pure functions over ``(task_id, output)`` pairs of a wave's *successful*
tasks, in task order. Merged dicts are always fresh objects, so merging
never mutates a task's output; leaf values are shared, not copied.

- ``SEMANTIC_MERGE``: lose nothing. Dict outputs are merged key by key; a
  key that several tasks set to equal values (``==``) keeps that value once;
  when all the values of a key are dicts they are merged the same way,
  recursively; otherwise the distinct values are kept as a list, in task
  order. A non-dict output counts as ``{task_id: output}``. No successes:
  ``{}``.
- ``APPEND``: the list of outputs in task order (``[]`` for none).
- ``DEEP_MERGE``: dicts merged recursively; on a conflict that is not
  dict-with-dict the later task wins. A non-dict output counts as
  ``{task_id: output}``. No successes: ``{}``.
- ``FIRST`` / ``LAST``: the output of the first / last successful task
  (``None`` for none).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from wave_executor._core.config import AggregationStrategy

__all__ = ["aggregate", "append", "deep_merge", "first", "last", "semantic_merge"]

Outputs = Sequence[tuple[Any, Any]]


def _as_mapping(task_id: Any, output: Any) -> Mapping[Any, Any]:
    return output if isinstance(output, Mapping) else {task_id: output}


def _distinct(values: list[Any]) -> list[Any]:
    """Values in order, each kept once (by ``==``; works for unhashable values)."""
    kept: list[Any] = []
    for value in values:
        if not any(value == seen for seen in kept):
            kept.append(value)
    return kept


def _semantic(mappings: Sequence[Mapping[Any, Any]]) -> dict[Any, Any]:
    gathered: dict[Any, list[Any]] = {}
    for mapping in mappings:
        for key, value in mapping.items():
            gathered.setdefault(key, []).append(value)
    merged: dict[Any, Any] = {}
    for key, values in gathered.items():
        if all(isinstance(v, Mapping) for v in values):
            merged[key] = _semantic(values)
            continue
        kept = _distinct(values)
        merged[key] = kept[0] if len(kept) == 1 else kept
    return merged


def semantic_merge(outputs: Outputs) -> dict[Any, Any]:
    """Merge without losing a value; see the module docstring."""
    return _semantic([_as_mapping(task_id, output) for task_id, output in outputs])


def _deep(into: dict[Any, Any], mapping: Mapping[Any, Any]) -> None:
    for key, value in mapping.items():
        current = into.get(key)
        if isinstance(value, Mapping):
            fresh = dict(current) if isinstance(current, dict) else {}
            _deep(fresh, value)
            into[key] = fresh
        else:
            into[key] = value


def deep_merge(outputs: Outputs) -> dict[Any, Any]:
    """Recursive dict merge, later task winning conflicts that are not dict-with-dict."""
    merged: dict[Any, Any] = {}
    for task_id, output in outputs:
        _deep(merged, _as_mapping(task_id, output))
    return merged


def append(outputs: Outputs) -> list[Any]:
    """Every output, in task order."""
    return [output for _, output in outputs]


def first(outputs: Outputs) -> Any:
    """The first successful task's output (None when there is none)."""
    return outputs[0][1] if outputs else None


def last(outputs: Outputs) -> Any:
    """The last successful task's output (None when there is none)."""
    return outputs[-1][1] if outputs else None


_STRATEGIES: dict[AggregationStrategy, Callable[[Outputs], Any]] = {
    AggregationStrategy.SEMANTIC_MERGE: semantic_merge,
    AggregationStrategy.APPEND: append,
    AggregationStrategy.DEEP_MERGE: deep_merge,
    AggregationStrategy.FIRST: first,
    AggregationStrategy.LAST: last,
}


def aggregate(strategy: AggregationStrategy, outputs: Outputs) -> Any:
    """Merge ``(task_id, output)`` pairs (successful tasks, task order) by ``strategy``."""
    try:
        merge = _STRATEGIES[strategy]
    except KeyError:
        raise ValueError(f"unknown aggregation strategy {strategy!r}") from None
    return merge(outputs)
