"""Early submission: which tasks may go to their backend before their upstreams end.

A backend that resolves dependencies itself (Dask) can take a task as soon
as its upstreams are *submitted* there, with their handles as arguments:
the scheduler's round trip per dependency leaves the critical path. This
book is the pure part of it. It knows each task's route (the early-capable
backend its attempts go to, or none), which tasks are eligible (every
upstream on the same route, trigger rule ``all_success``), and counts per
eligible task the upstreams that are neither submitted nor succeeded; when
that count reaches zero, the task may be released early.

Pure: no asyncio, no backend. The runtime tells it of submissions
(``submitted``) and of submissions lost to a failed or withdrawn attempt
(``lost``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from wave_executor._core.graph import Graph

__all__ = ["EarlyBook", "NO_ROUTE"]

#: The route of a task whose attempts go through the ordinary path.
NO_ROUTE = -1


class EarlyBook:
    """Per-run counts of not-yet-submitted upstreams for early-eligible tasks."""

    __slots__ = ("_counted", "_graph", "_unsubmitted", "eligible", "routes", "upstreams")

    def __init__(
        self,
        graph: Graph,
        routes: Sequence[int],
        upstreams: Sequence[Sequence[int]],
        excluded: Collection[int] = (),
    ) -> None:
        """``routes``: per task, the number of its early-capable backend or ``NO_ROUTE``;
        ``upstreams``: per task, its upstream indices; ``excluded``: tasks never
        submitted early (a trigger rule other than ``all_success``)."""
        self._graph = graph
        n = len(graph)
        # A task is routed (its attempts are submissions) only if its upstreams share
        # its route: their outputs are then handles the backend resolves itself.
        routed = [
            r != NO_ROUTE and all(routes[u] == r for u in upstreams[i])
            for i, r in enumerate(routes)
        ]
        #: Per task: the route its attempts are submitted on, or ``NO_ROUTE``.
        self.routes = [r if routed[i] else NO_ROUTE for i, r in enumerate(routes)]
        #: Per task: may it be submitted before its upstreams end?
        self.eligible = bytearray(
            1
            if routed[i] and upstreams[i] and i not in excluded and all(routed[u] for u in ups)
            else 0
            for i, ups in enumerate(upstreams)
        )
        self.upstreams = upstreams
        self._unsubmitted = [len(ups) for ups in upstreams]
        self._counted = bytearray(n)  # the task's submission is in its dependents' counts

    @property
    def any_eligible(self) -> bool:
        return any(self.eligible)

    def submitted(self, u: int) -> list[int]:
        """``u`` was submitted: the eligible dependents none of whose upstreams is
        now unsubmitted (candidates for early release)."""
        if self._counted[u]:
            return []
        self._counted[u] = 1
        graph, eligible, unsubmitted = self._graph, self.eligible, self._unsubmitted
        offsets, successors = graph.offsets, graph.successors
        ready = []
        for k in range(offsets[u], offsets[u + 1]):
            s = successors[k]
            if eligible[s]:
                left = unsubmitted[s] - 1
                unsubmitted[s] = left
                if not left:
                    ready.append(s)
        return ready

    def lost(self, u: int) -> None:
        """``u``'s submission ended without a success (failed, withdrawn, cancelled)."""
        if not self._counted[u]:
            return
        self._counted[u] = 0
        graph, eligible, unsubmitted = self._graph, self.eligible, self._unsubmitted
        offsets, successors = graph.offsets, graph.successors
        for k in range(offsets[u], offsets[u + 1]):
            s = successors[k]
            if eligible[s]:
                unsubmitted[s] += 1

    def successors(self, u: int) -> list[int]:
        """``u``'s eligible dependents."""
        graph, eligible = self._graph, self.eligible
        offsets, successors = graph.offsets, graph.successors
        return [s for s in successors[offsets[u] : offsets[u + 1]] if eligible[s]]
