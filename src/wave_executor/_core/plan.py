"""The per-run frontier: which tasks are ready, and what follows an outcome.

Modelled on ``graphlib.TopologicalSorter``'s prepare / get_ready / done
protocol, with priorities and failure propagation added. Pure: no asyncio,
no clocks. Every state change goes through the status transition table.
Costs are O(1) amortised per edge plus O(log ready) per heap operation.
"""

from __future__ import annotations

from collections.abc import Sequence

from wave_executor._core.graph import Graph
from wave_executor._core.ready import GroupedReady, ReadyHeap
from wave_executor._core.status import TaskStatus, check_transition, code_of, status_of

__all__ = ["Plan"]

_PENDING = code_of(TaskStatus.PENDING)
_READY = code_of(TaskStatus.READY)
_RUNNING = code_of(TaskStatus.RUNNING)
_BACKOFF = code_of(TaskStatus.BACKOFF)
_SUCCESS = code_of(TaskStatus.SUCCESS)
_SKIPPED = code_of(TaskStatus.SKIPPED)
_FIRST_TERMINAL = _SUCCESS  # codes from here on are terminal (see TaskStatus)


class Plan:
    """Mutable scheduling state of one execution over an immutable ``Graph``."""

    __slots__ = ("_graph", "_n", "_ready", "_state", "_waiting", "unfinished")

    def __init__(
        self,
        graph: Graph,
        group_of: Sequence[int] | None = None,
        n_groups: int = 1,
        completed: Sequence[int] = (),
    ) -> None:
        """``completed``: tasks that already succeeded (a resumed run). They must
        be closed under dependencies: every dependency of one is in it too."""
        self._graph = graph
        n = self._n = len(graph)
        self._waiting = waiting = graph.indegree.tolist()  # a list: small ints are not boxed anew
        self._state = state = bytearray(n)  # every task starts PENDING (code 0)
        self.unfinished = n
        offsets, successors = graph.offsets, graph.successors
        for i in completed:
            state[i] = _SUCCESS
            for k in range(offsets[i], offsets[i + 1]):
                waiting[successors[k]] -= 1
        self.unfinished -= len(completed)
        priority = graph.priority
        roots = [i for i in range(n) if not waiting[i] and state[i] == _PENDING]
        for i in roots:
            self._state[i] = _READY
        self._ready: ReadyHeap | GroupedReady
        if group_of is None:
            self._ready = ReadyHeap([priority[i] for i in roots], roots)
        else:
            self._ready = GroupedReady(group_of, n_groups)
            for i in roots:
                self._ready.push(priority[i], i)

    # -- queries -------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.unfinished == 0

    @property
    def codes(self) -> bytearray:
        """Every task's status code, live (the result table reads it)."""
        return self._state

    @property
    def ready_count(self) -> int:
        """Ready tasks that could start now (in groups that are not blocked)."""
        return self._ready.available()

    @property
    def ready(self) -> ReadyHeap | GroupedReady:
        """The ready set; with groups, the runtime blocks and unblocks groups on it."""
        return self._ready

    def status(self, i: int) -> TaskStatus:
        return status_of(self._state[i])

    def is_terminal(self, i: int) -> bool:
        return self._state[i] >= _FIRST_TERMINAL

    # -- transitions ---------------------------------------------------------

    def _move(self, i: int, dst: int) -> None:
        check_transition(self._state[i], dst)
        self._state[i] = dst

    def take(self) -> int | None:
        """The ready task with the highest priority, now RUNNING; None if none is ready."""
        i = self._ready.pop()
        if i is None:
            return None
        if self._state[i] != _READY:  # the heap holds only READY tasks
            check_transition(self._state[i], _RUNNING)
        self._state[i] = _RUNNING
        return i

    def succeed(self, i: int) -> int:
        """Record a success; return how many tasks became ready because of it."""
        state = self._state
        if state[i] != _RUNNING:
            check_transition(state[i], _SUCCESS)  # raises: only RUNNING may succeed
        state[i] = _SUCCESS
        self.unfinished -= 1
        graph = self._graph
        offsets = graph.offsets
        waiting = self._waiting
        push = self._ready.push
        released = 0
        for s in graph.successors[offsets[i] : offsets[i + 1]]:
            left = waiting[s] - 1
            waiting[s] = left
            # Only a PENDING task can reach zero here, so PENDING -> READY is legal.
            if not left and state[s] == _PENDING:
                state[s] = _READY
                push(graph.priority[s], s)
                released += 1
        return released

    def fail(self, i: int, status: TaskStatus) -> list[tuple[int, int]]:
        """Record a final failure; skip every pending descendant.

        Returns ``(skipped_task, upstream_that_caused_it)`` pairs in discovery
        order. Iterative, so graph depth is unbounded.
        """
        self._move(i, code_of(status))
        self.unfinished -= 1
        graph = self._graph
        offsets, successors, state = graph.offsets, graph.successors, self._state
        skipped: list[tuple[int, int]] = []
        stack = [i]
        while stack:
            u = stack.pop()
            for k in range(offsets[u], offsets[u + 1]):
                s = successors[k]
                if state[s] == _PENDING:
                    self._move(s, _SKIPPED)
                    skipped.append((s, u))
                    stack.append(s)
        self.unfinished -= len(skipped)
        return skipped

    def back_off(self, i: int) -> None:
        """A failed attempt will be retried later: the task leaves the running set."""
        self._move(i, _BACKOFF)

    def retry(self, i: int) -> None:
        """The backoff delay is over: the task is ready again, at its old priority."""
        self._move(i, _READY)
        self._ready.push(self._graph.priority[i], i)

    def abort(self, status: TaskStatus) -> list[int]:
        """End every unfinished task with ``status`` (run stopped or timed out)."""
        dst = code_of(status)
        ended = [i for i in range(self._n) if self._state[i] < _FIRST_TERMINAL]
        for i in ended:
            self._move(i, dst)
        self._ready.clear()
        self.unfinished -= len(ended)
        return ended
