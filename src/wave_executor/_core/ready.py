"""Ready tasks, by priority, optionally split into groups that can be full.

Both serve the task with the best (lowest) place in the priority order
(``Graph.priority``), and among equal places the one that became ready
first. A graph without groups uses ``ReadyBuckets`` (a FIFO per place).
With groups, each group has its own heap, and a group whose window is full
is *blocked*: ``pop`` then returns the best task among the groups that can
still start one, so a full group never holds up another group's ready task,
and priority order is kept among the free slots.

A group heap's key is ``place * SEQ + seq``: the place, then the order in
which tasks became ready. ``seq`` indexes ``_order``, which says which task
a key stands for. One int compares faster than a tuple.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from heapq import heapify, heappop, heappush

__all__ = ["GroupedReady", "ReadyBuckets", "ReadyHeap", "ready_set"]


SEQ = 1 << 40  # more than enough pushes for any run


class ReadyBuckets:
    """All ready tasks (no groups): a FIFO per priority place, and a heap of places.

    Tasks of one place come out in the order they became ready, as the
    heap keys of ``GroupedReady`` order them, but a push or pop costs a dict
    lookup and a deque operation instead of O(log ready) comparisons of
    big ints: a graph has few distinct places ready at once (one per depth
    level near the frontier), however many tasks are ready. A place with a
    single ready task holds the bare index (no deque is made for it), so
    graphs whose places are all distinct (chains, or ``costs=`` that all
    differ) cost no more memory than a heap would.

    ``places``, ``buckets`` and ``size`` are public for the plan's hot
    paths, which push and pop inline; they are only ever changed in place.
    """

    __slots__ = ("buckets", "places", "size")

    def __init__(self, places: Sequence[int], tasks: Sequence[int]) -> None:
        #: Place -> its ready task (one) or a deque of them (several), oldest first.
        self.buckets: dict[int, int | deque[int]] = {}
        #: Heap of the places that have ready tasks.
        self.places: list[int] = []
        self.size = 0
        for place, i in zip(places, tasks, strict=True):
            self.push(place, i)

    def push(self, place: int, i: int) -> None:
        buckets = self.buckets
        bucket = buckets.get(place)
        if bucket is None:
            buckets[place] = i
            heappush(self.places, place)
        elif bucket.__class__ is int:
            buckets[place] = deque((bucket, i))
        else:
            bucket.append(i)  # type: ignore[union-attr]
        self.size += 1

    def push_all(self, place: int, tasks: Sequence[int]) -> None:
        """``push(place, i)`` for each of ``tasks`` in order (a fan-out's children)."""
        if len(tasks) < 2:
            for i in tasks:
                self.push(place, i)
            return
        bucket = self.buckets.get(place)
        if bucket is None:
            self.buckets[place] = deque(tasks)
            heappush(self.places, place)
        elif bucket.__class__ is int:
            self.buckets[place] = queue = deque((bucket,))
            queue.extend(tasks)
        else:
            bucket.extend(tasks)  # type: ignore[union-attr]
        self.size += len(tasks)

    def pop(self) -> int | None:
        """The index of the best ready task (removed), or None."""
        if not self.size:
            return None
        self.size -= 1
        places = self.places
        place = places[0]
        bucket = self.buckets[place]
        if bucket.__class__ is int:
            heappop(places)
            del self.buckets[place]
            return bucket
        i: int = bucket.popleft()  # type: ignore[union-attr]
        if not bucket:
            heappop(places)
            del self.buckets[place]
        return i

    def available(self) -> int:
        """Ready tasks that a worker could start now."""
        return self.size

    def __len__(self) -> int:
        return self.size

    def clear(self) -> None:
        self.buckets.clear()
        self.places.clear()
        self.size = 0


class ReadyHeap:
    """All ready tasks in one heap of ``place * SEQ + seq`` keys (no groups).

    For graphs whose places are mostly distinct (``costs=`` that differ,
    chains), where ``ReadyBuckets`` would keep a dict entry per ready task
    on top of a heap of as many places.
    """

    __slots__ = ("heap", "order")

    def __init__(self, places: Sequence[int], tasks: Sequence[int]) -> None:
        self.order: list[int] = list(tasks)
        self.heap = [place * SEQ + seq for seq, place in enumerate(places)]
        heapify(self.heap)

    def push(self, place: int, i: int) -> None:
        order = self.order
        heappush(self.heap, place * SEQ + len(order))
        order.append(i)

    def pop(self) -> int | None:
        """The index of the best ready task (removed), or None."""
        return self.order[heappop(self.heap) % SEQ] if self.heap else None

    def available(self) -> int:
        """Ready tasks that a worker could start now."""
        return len(self.heap)

    def __len__(self) -> int:
        return len(self.heap)

    def clear(self) -> None:
        self.heap.clear()


class GroupedReady:
    """One heap per group; blocked groups are passed over by ``pop``.

    A second heap holds ``(head key, group)`` for the groups that may start
    a task, so ``pop`` costs O(log groups) however many groups there are.
    Its entries are checked lazily: one whose group is blocked now, or whose
    head has changed, is dropped when it reaches the top.
    """

    __slots__ = (
        "_available",
        "_blocked",
        "_group_of",
        "_heads",
        "_heaps",
        "_order",
        "_total",
    )

    def __init__(self, group_of: Sequence[int], n_groups: int) -> None:
        self._group_of = group_of
        self._heaps: list[list[int]] = [[] for _ in range(n_groups)]
        self._blocked = bytearray(n_groups)
        self._heads: list[tuple[int, int]] = []
        self._total = 0
        self._available = 0  # ready tasks in groups that are not blocked
        self._order: list[int] = []

    def push(self, place: int, i: int) -> None:
        key = place * SEQ + len(self._order)
        self._order.append(i)
        g = self._group_of[i]
        heap = self._heaps[g]
        heappush(heap, key)
        self._total += 1
        if not self._blocked[g]:
            self._available += 1
            if heap[0] == key:
                heappush(self._heads, (key, g))

    def pop(self) -> int | None:
        heads, heaps, blocked = self._heads, self._heaps, self._blocked
        while heads:
            key, g = heads[0]
            heap = heaps[g]
            if blocked[g] or not heap or heap[0] != key:
                heappop(heads)  # stale
                continue
            heappop(heads)
            heappop(heap)
            if heap:
                heappush(heads, (heap[0], g))
            self._total -= 1
            self._available -= 1
            return self._order[key % SEQ]
        return None

    def add_groups(self, n_groups: int) -> None:
        """Make room for groups first named at run time (fan-out children)."""
        while len(self._heaps) < n_groups:
            self._heaps.append([])
            self._blocked.append(0)

    def block(self, g: int) -> None:
        if not self._blocked[g]:
            self._blocked[g] = 1
            self._available -= len(self._heaps[g])

    def unblock(self, g: int) -> None:
        if self._blocked[g]:
            self._blocked[g] = 0
            heap = self._heaps[g]
            self._available += len(heap)
            if heap:
                heappush(self._heads, (heap[0], g))

    def is_blocked(self, g: int) -> bool:
        return bool(self._blocked[g])

    def available(self) -> int:
        """Ready tasks in groups that can start one now."""
        return self._available

    def __len__(self) -> int:
        return self._total

    def clear(self) -> None:
        for heap in self._heaps:
            heap.clear()
        self._heads.clear()
        self._order.clear()
        self._total = 0
        self._available = 0


def ready_set(
    places: Sequence[int], tasks: Sequence[int], distinct: int, n: int
) -> ReadyBuckets | ReadyHeap:
    """The ready set of a graph of ``n`` tasks, ``distinct`` priority places, no groups.

    Buckets pay off when many ready tasks share a place (a graph without
    ``costs=`` has one place per longest-path length); a heap when nearly
    every task has a place of its own.
    """
    if distinct * 8 <= n or distinct <= 64:
        return ReadyBuckets(places, tasks)
    return ReadyHeap(places, tasks)
