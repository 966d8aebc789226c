"""Early submission at run time: the submissions in flight and the tasks waiting on them.

``EarlyRoutes`` says which tasks of a run go to an early-capable backend
(``_core/backend.py``, ``EarlySubmitter``); ``EarlyRun`` holds, for one run,
the live submission of each routed task and the early tasks waiting for
their upstreams to succeed. The engine (``dag_run.py``) decides; this
module only keeps the state. None of it exists in a run without such a
backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wave_executor._core.backend import Backend, EarlySubmitter, Submission, early_submitter
from wave_executor._core.early import NO_ROUTE, EarlyBook
from wave_executor._core.graph import Graph
from wave_executor._core.triggers import TriggerRule

__all__ = ["EarlyRoutes", "EarlyRun", "early_routes"]


@dataclass(frozen=True, slots=True)
class EarlyRoutes:
    """The early-capable backends of a run and each task's route among them."""

    body: Callable[[Any, Any], Any]
    backends: Sequence[EarlySubmitter]
    #: task id -> index in ``backends`` (tasks not listed take the ordinary path).
    routes: Mapping[Any, int]


def early_routes(
    body: Callable[[Any, Any], Any],
    tasks: Mapping[Any, Any],
    default: Backend | None,
    chosen: Mapping[Any, Backend],
) -> EarlyRoutes | None:
    """Routes for the tasks whose backend submits early, or None if no task's does."""
    backends: list[EarlySubmitter] = []
    numbers: dict[int, int] = {}
    routes: dict[Any, int] = {}
    fallback = early_submitter(default)
    for task_id in tasks:
        picked = chosen.get(task_id)
        backend = fallback if picked is None else early_submitter(picked)
        if backend is None:
            continue
        k = numbers.get(id(backend))
        if k is None:
            k = numbers[id(backend)] = len(backends)
            backends.append(backend)
        routes[task_id] = k
    return EarlyRoutes(body, backends, routes) if routes else None


class _Wait:
    """An early task waiting for its upstreams to succeed."""

    __slots__ = ("left", "ready")

    def __init__(self, left: int, ready: asyncio.Future[bool]) -> None:
        self.left = left
        self.ready = ready


class EarlyRun:
    """One run's submissions in flight and early tasks waiting on them."""

    __slots__ = ("backends", "body", "book", "live", "waits")

    def __init__(
        self,
        routes: EarlyRoutes,
        graph: Graph,
        dependencies: Mapping[Any, Iterable[Any]],
        rules: Mapping[int, TriggerRule] | None,
    ) -> None:
        index, ids = graph.index, graph.ids
        route_of = [routes.routes.get(t, NO_ROUTE) for t in ids]
        upstreams = [[index[d] for d in dependencies.get(t, ())] for t in ids]
        excluded = set() if rules is None else set(rules)  # non-default rules only
        self.book = EarlyBook(graph, route_of, upstreams, excluded)
        self.body = routes.body
        self.backends = routes.backends
        #: Routed task -> its submission while its attempt is in flight.
        self.live: dict[int, Submission] = {}
        #: Early task -> what it waits for before its attempt counts as started.
        self.waits: dict[int, _Wait] = {}

    def backend_of(self, i: int) -> EarlySubmitter | None:
        r = self.book.routes[i]
        return None if r == NO_ROUTE else self.backends[r]

    async def prepare(self) -> None:
        for backend in self.backends:
            await backend.prepare_early()

    def wait(self, i: int, left: int) -> asyncio.Future[bool]:
        ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.waits[i] = _Wait(left, ready)
        return ready

    def succeeded(self, u: int) -> None:
        """``u``'s success is recorded: wake the early tasks it was the last wait of."""
        self.live.pop(u, None)
        if not self.waits:
            return
        waits = self.waits
        for s in self.book.successors(u):
            w = waits.get(s)
            if w is not None:
                w.left -= 1
                if not w.left:
                    del waits[s]
                    w.ready.set_result(True)

    def release(self, s: int) -> Submission | None:
        """Withdraw waiting ``s``: its submission (cancelled by the caller), its waiter told."""
        w = self.waits.pop(s, None)
        if w is not None and not w.ready.done():
            w.ready.set_result(False)
        return self.live.pop(s, None)

    def close(self) -> None:
        """The run is over: cancel what is somehow still submitted (defensive)."""
        for sub in self.live.values():
            sub.cancel()
        self.live.clear()
        for w in self.waits.values():
            if not w.ready.done():
                w.ready.cancel()
        self.waits.clear()
