"""Run-time fan-out: a task whose output becomes one child task per item.

A parent task listed in ``execute(fan_out=...)`` runs its body as usual;
its output (a mapping, or any other iterable) is split into items, and
each item becomes a child task ``ChildId(parent, key)`` that the scheduler
runs like any other. The parent ends when its last child has ended. Pure
book-keeping: which indices are children of which parent, how many are
still open, which failed; the runtime asks it what to do and does it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ChildId", "FanOutBook", "Expansion", "child_items", "failed_children_error"]


@dataclass(frozen=True, init=False)
class ChildId:
    """The id of the child task that handles item ``key`` of ``parent``'s output.

    Frozen and hashable; equal only to another ``ChildId`` with the same
    parent and key (never to a tuple, a string or any id of another type),
    so it cannot clash with the ids a caller declares. Shown as
    ``parent[key]``: ``ChildId("fetch", 2)`` is ``fetch[2]``.
    """

    # The hash is computed once (a run looks every child up several times); it is
    # a slot, not a field, so it stays out of ``fields()`` and ``asdict()``.
    __slots__ = ("_hash", "key", "parent")

    parent: Hashable
    key: Hashable

    def __init__(self, parent: Hashable, key: Hashable) -> None:
        _set(self, "parent", parent)
        _set(self, "key", key)
        _set(self, "_hash", hash((ChildId, parent, key)))

    def __hash__(self) -> int:
        return self._hash  # type: ignore[attr-defined,no-any-return]

    def __str__(self) -> str:
        return f"{self.parent}[{self.key!r}]"

    __repr__ = __str__

    def __reduce__(self) -> tuple[Any, ...]:
        return (ChildId, (self.parent, self.key))  # the hash is made anew where it is loaded


_set = object.__setattr__


def child_items(parent: Any, output: Any) -> list[tuple[Hashable, Any]]:
    """``(key, item)`` pairs of a fan-out parent's output, in order.

    A mapping gives its own keys; any other iterable gives ``0..n-1``. A
    string, bytes or anything not iterable raises ``TypeError``: iterating
    a string by character is almost never what was meant.
    """
    if isinstance(output, Mapping):
        return list(output.items())
    if isinstance(output, (str, bytes, bytearray)) or not isinstance(output, Iterable):
        raise TypeError(
            f"fan-out task {parent!r} must return a mapping (key -> item) or an "
            f"iterable of items, got {type(output).__name__}"
        )
    return list(enumerate(output))


def failed_children_error(parent: Any, failed: list[Any], total: int) -> str:
    """The error of a parent whose children did not all succeed."""
    shown = ", ".join(str(c) for c in failed[:5])
    more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
    return f"{len(failed)} of {total} fan-out children of {parent!r} failed: {shown}{more}"


class Expansion:
    """One parent's children: index range, keys, and how they are doing."""

    __slots__ = ("first", "first_start", "keys", "open", "retries", "start")

    def __init__(self, first: int, keys: list[Hashable], first_start: float, retries: int) -> None:
        #: Index of the first child; children are ``first .. first + len(keys) - 1``.
        self.first = first
        self.keys = keys
        self.open = len(keys)
        #: When the parent's first attempt started, and its retries (for its result).
        self.first_start = first_start
        self.retries = retries

    def indices(self) -> range:
        return range(self.first, self.first + len(self.keys))


class FanOutBook:
    """Every expansion of one run, by parent index, and each child's parent."""

    __slots__ = ("expansions", "parent_of", "parents")

    def __init__(self, parents: Iterable[int]) -> None:
        #: Indices of the declared tasks that fan out.
        self.parents = frozenset(parents)
        self.expansions: dict[int, Expansion] = {}
        #: Child index -> parent index.
        self.parent_of: dict[int, int] = {}

    def owns(self, i: int) -> bool:
        """Is ``i`` a fan-out parent or a child (its outcome needs the book)?"""
        return i in self.parents or i in self.parent_of

    def expand(
        self, parent: int, first: int, keys: list[Hashable], start: float, retries: int
    ) -> Expansion:
        expansion = self.expansions[parent] = Expansion(first, keys, start, retries)
        parent_of = self.parent_of
        for c in range(first, first + len(keys)):
            parent_of[c] = parent
        return expansion

    def child_ended(self, child: int) -> int | None:
        """A child reached a terminal status: its parent's index if that was the last."""
        parent = self.parent_of[child]
        expansion = self.expansions[parent]
        expansion.open -= 1
        return parent if expansion.open == 0 else None

    def waiting(self, parent: int) -> bool:
        """Has ``parent``'s body ended, with children still open?"""
        expansion = self.expansions.get(parent)
        return expansion is not None and expansion.open > 0
