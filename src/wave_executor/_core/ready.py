"""Ready tasks, by priority, optionally split into pools (groups) that can be full.

One heap serves a graph without pools. With pools, each group has its own
heap, and a group whose window is full is *blocked*: ``pop`` then returns
the best task among the groups that can still start one, so a full group
never holds up another group's ready task, and priority order is kept
among the free slots. Heap keys are the graph's priority keys
(``key % n`` is the task index).
"""

from __future__ import annotations

from collections.abc import Sequence
from heapq import heapify, heappop, heappush

__all__ = ["GroupedReady", "ReadyHeap"]


class ReadyHeap:
    """All ready tasks in one priority heap (no pools)."""

    __slots__ = ("_heap",)

    def __init__(self, keys: list[int]) -> None:
        heapify(keys)
        self._heap = keys

    def push(self, key: int, i: int) -> None:
        heappush(self._heap, key)

    def pop(self) -> int | None:
        return heappop(self._heap) if self._heap else None

    def available(self) -> int:
        """Ready tasks that a worker could start now."""
        return len(self._heap)

    def __len__(self) -> int:
        return len(self._heap)

    def clear(self) -> None:
        self._heap.clear()


class GroupedReady:
    """One heap per group; blocked groups are passed over by ``pop``."""

    __slots__ = ("_blocked", "_group_of", "_heaps", "_live", "_total")

    def __init__(self, group_of: Sequence[int], n_groups: int) -> None:
        self._group_of = group_of
        self._heaps: list[list[int]] = [[] for _ in range(n_groups)]
        self._blocked = bytearray(n_groups)
        self._live: set[int] = set()  # groups with ready tasks
        self._total = 0

    def push(self, key: int, i: int) -> None:
        g = self._group_of[i]
        heappush(self._heaps[g], key)
        self._live.add(g)
        self._total += 1

    def pop(self) -> int | None:
        best_group = -1
        best_key = 0
        heaps, blocked = self._heaps, self._blocked
        for g in self._live:
            if not blocked[g]:
                key = heaps[g][0]
                if best_group < 0 or key < best_key:
                    best_group, best_key = g, key
        if best_group < 0:
            return None
        heap = heaps[best_group]
        heappop(heap)
        if not heap:
            self._live.discard(best_group)
        self._total -= 1
        return best_key

    def block(self, g: int) -> None:
        self._blocked[g] = 1

    def unblock(self, g: int) -> None:
        self._blocked[g] = 0

    def is_blocked(self, g: int) -> bool:
        return bool(self._blocked[g])

    def available(self) -> int:
        """Ready tasks in groups that can start one now."""
        blocked, heaps = self._blocked, self._heaps
        return sum(len(heaps[g]) for g in self._live if not blocked[g])

    def __len__(self) -> int:
        return self._total

    def clear(self) -> None:
        for heap in self._heaps:
            heap.clear()
        self._live.clear()
        self._total = 0
