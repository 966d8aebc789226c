"""The per-run frontier: which tasks are ready, and what follows an outcome.

Modelled on ``graphlib.TopologicalSorter``'s prepare / get_ready / done
protocol, with priorities and failure propagation added. Pure: no asyncio,
no clocks. Every state change goes through the status transition table.
Costs are O(1) amortised per edge plus O(log ready) per heap operation.

With trigger rules (``_core/triggers.py``) the plan counts, per task, how
its upstreams ended and lets ``decide`` release or skip it; without any,
the 0.3.0 paths below run unchanged (every task waits for all its
upstreams to succeed, a failure skips every pending descendant).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from heapq import heappop, heappush
from itertools import compress
from operator import not_

from wave_executor._core.graph import Graph
from wave_executor._core.ready import SEQ, GroupedReady, ReadyBuckets, ReadyHeap, ready_set
from wave_executor._core.status import TaskStatus, check_transition, code_of, status_of
from wave_executor._core.triggers import (
    CLEANUP_RULES,
    Decision,
    SkipReason,
    TriggerRule,
    decide,
    skip_reason,
)

__all__ = ["Plan"]

_PENDING = code_of(TaskStatus.PENDING)
_READY = code_of(TaskStatus.READY)
_RUNNING = code_of(TaskStatus.RUNNING)
_BACKOFF = code_of(TaskStatus.BACKOFF)
_SUCCESS = code_of(TaskStatus.SUCCESS)
_SKIPPED = code_of(TaskStatus.SKIPPED)
_CANCELLED = code_of(TaskStatus.CANCELLED)
#: How an ended upstream counts for a trigger rule.
_SUCCEEDED, _FAILED, _RULE_SKIPPED = 0, 1, 2
_FIRST_TERMINAL = _SUCCESS  # codes from here on are terminal (see TaskStatus)


class Plan:
    """Mutable scheduling state of one execution over an immutable ``Graph``."""

    __slots__ = (
        "_buckets",
        "_counts",
        "_graph",
        "_heap",
        "_n",
        "_order",
        "_places",
        "_ready",
        "_rules",
        "_stale",
        "_state",
        "_waiting",
        "cleaning",
        "skip_reasons",
        "skips",
        "unfinished",
    )

    def __init__(
        self,
        graph: Graph,
        group_of: Sequence[int] | None = None,
        n_groups: int = 1,
        completed: Sequence[int] = (),
        rules: Mapping[int, TriggerRule] | None = None,
    ) -> None:
        """``completed``: tasks that already succeeded (a resumed run). They must
        be closed under dependencies: every dependency of one is in it too.
        ``rules``: task index -> trigger rule, for tasks that do not use the
        default ``all_success``."""
        self._graph = graph
        #: Non-default trigger rules; empty for a 0.3.0 graph (the fast paths).
        self._rules: dict[int, TriggerRule] = dict(rules) if rules else {}
        #: Why each skipped task was skipped (ruled plans only; else "upstream failed").
        self.skip_reasons: dict[int, SkipReason] = {}
        #: ``(skipped, upstream that decided it)`` pairs not yet reported (ruled plans).
        self.skips: list[tuple[int, int]] = []
        #: The run was stopped and only cleanup tasks (``all_done``/``always``) remain.
        self.cleaning = False
        self._counts: list[list[int]] = []
        self._stale = 0  # heap entries of tasks withdrawn while ready (early submission)
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
        if self._rules:
            self._counts = [[0, 0, 0] for _ in range(n)]
            for i in completed:
                for k in range(offsets[i], offsets[i + 1]):
                    self._counts[successors[k]][_SUCCEEDED] += 1
        if self._rules:  # an ``always`` task starts at once, whatever it waits for
            roots = [
                i
                for i in range(n)
                if state[i] == _PENDING
                and (not waiting[i] or self._rules.get(i) is TriggerRule.ALWAYS)
            ]
        else:  # tasks with nothing to wait for, found in C
            roots = list(compress(range(n), map(not_, waiting)))
            if completed:
                roots = [i for i in roots if state[i] == _PENDING]
        for i in roots:
            self._state[i] = _READY
        self._ready: ReadyBuckets | ReadyHeap | GroupedReady
        #: The ready set's own containers, for ``take`` and ``succeed`` to use
        #: inline (each None, or empty, when the ready set is of another kind).
        self._buckets: dict[int, int | deque[int]] | None = None
        self._places: list[int] = []
        self._heap: list[int] | None = None
        self._order: list[int] = []
        if group_of is None:
            distinct = max(priority, default=-1) + 1  # places are dense: 0, 1, ...
            self._ready = ready_set([priority[i] for i in roots], roots, distinct, n)
            if isinstance(self._ready, ReadyBuckets):
                self._buckets, self._places = self._ready.buckets, self._ready.places
            else:
                self._heap, self._order = self._ready.heap, self._ready.order
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
    def ready(self) -> ReadyBuckets | ReadyHeap | GroupedReady:
        """The ready set; with groups, the runtime blocks and unblocks groups on it."""
        return self._ready

    @property
    def ruled(self) -> bool:
        """Does any task have a trigger rule other than ``all_success``?"""
        return bool(self._rules)

    def rule_of(self, i: int) -> TriggerRule:
        return self._rules.get(i, TriggerRule.ALL_SUCCESS)

    def upstream_kind(self, i: int) -> int:
        """How ended task ``i`` counts for its dependents' rules (0 succeeded, 1 failed,
        2 skipped by its rule)."""
        code = self._state[i]
        if code == _SUCCESS:
            return _SUCCEEDED
        if code == _SKIPPED and self.skip_reasons.get(i) is SkipReason.RULE_NOT_MET:
            return _RULE_SKIPPED
        return _FAILED

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
        heap = self._heap
        if heap is not None:  # ReadyHeap.pop, inlined
            if not heap:
                return None
            i = self._order[heappop(heap) % SEQ]
        else:
            popped = self._ready.pop()
            if popped is None:
                return None
            i = popped
        state = self._state
        if state[i] == _READY:
            state[i] = _RUNNING
            return i
        return self._take_past_stale(i)

    def _take_past_stale(self, i: int) -> int | None:
        while self._state[i] != _READY:  # the heap holds only READY tasks...
            if not self._stale:
                check_transition(self._state[i], _RUNNING)  # raises
            self._stale -= 1  # ...and entries of tasks withdrawn since
            popped = self._ready.pop()
            if popped is None:
                return None
            i = popped
        self._state[i] = _RUNNING
        return i

    def release_early(self, i: int) -> bool:
        """Early submission: pending ``i``'s upstreams are all submitted (not all
        ended): it becomes READY now. False if it was not pending."""
        if self._state[i] != _PENDING:
            return False
        self._state[i] = _READY
        self._ready.push(self._graph.priority[i], i)
        return True

    def withdraw(self, i: int) -> None:
        """An early-released task (READY or RUNNING) goes back to PENDING: an
        upstream's attempt failed. Outside the transition table on purpose: only
        tasks released by ``release_early`` come back this way."""
        code = self._state[i]
        if code == _READY:
            self._stale += 1  # its heap entry stays; ``take`` passes over it
        elif code != _RUNNING:
            check_transition(code, _PENDING)  # raises
        self._state[i] = _PENDING

    def succeed(self, i: int) -> int:
        """Record a success; return how many tasks became ready because of it.

        In a ruled plan, tasks it skipped are added to ``skips``."""
        state = self._state
        if state[i] != _RUNNING:
            check_transition(state[i], _SUCCESS)  # raises: only RUNNING may succeed
        state[i] = _SUCCESS
        self.unfinished -= 1
        if self._rules:
            return self._settle(i, _SUCCEEDED)
        graph = self._graph
        offsets, priority = graph.offsets, graph.priority
        waiting = self._waiting
        successors = graph.successors[offsets[i] : offsets[i + 1]]
        buckets = self._buckets
        released = 0
        if buckets is not None:  # ReadyBuckets.push, inlined
            places = self._places
            for s in successors:
                left = waiting[s] - 1
                waiting[s] = left
                if not left and state[s] == _PENDING:
                    state[s] = _READY
                    place = priority[s]
                    bucket = buckets.get(place)
                    if bucket is None:
                        buckets[place] = s
                        heappush(places, place)
                    elif bucket.__class__ is int:
                        buckets[place] = deque((bucket, s))
                    else:
                        bucket.append(s)  # type: ignore[union-attr]
                    released += 1
            self._ready.size += released  # type: ignore[union-attr]
            return released
        heap, order = self._heap, self._order
        for s in successors:
            left = waiting[s] - 1
            waiting[s] = left
            # Only a PENDING task can reach zero here, so PENDING -> READY is legal.
            if not left and state[s] == _PENDING:
                state[s] = _READY
                if heap is None:
                    self._ready.push(priority[s], s)
                else:  # ReadyHeap.push, inlined
                    heappush(heap, priority[s] * SEQ + len(order))
                    order.append(s)
                released += 1
        return released

    def fail(self, i: int, status: TaskStatus) -> list[tuple[int, int]]:
        """Record a final failure; skip every pending descendant.

        Returns ``(skipped_task, upstream_that_caused_it)`` pairs in discovery
        order. Iterative, so graph depth is unbounded. In a ruled plan only the
        tasks whose rule can no longer be met are skipped, and dependents whose
        rule is now met become ready (see ``ready_count``).
        """
        self._move(i, code_of(status))
        self.unfinished -= 1
        if self._rules:
            self._settle(i, _FAILED)
            ruled_skips, self.skips = self.skips, []
            return ruled_skips
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

    def _settle(self, i: int, kind: int) -> int:
        """Tell ``i``'s pending dependents how it ended; decide their rules.

        Returns how many became ready; the skipped ones go to ``skips`` and
        tell their own dependents in turn (iteratively).
        """
        graph = self._graph
        offsets, successors, state = graph.offsets, graph.successors, self._state
        indegree, counts, rules = graph.indegree, self._counts, self._rules
        released = 0
        stack = [(i, kind)]
        while stack:
            u, kind = stack.pop()
            for k in range(offsets[u], offsets[u + 1]):
                s = successors[k]
                code = state[s]
                if code == _PENDING:
                    c = counts[s]
                    c[kind] += 1
                else:
                    if code < _FIRST_TERMINAL:  # early-released: counted in case it is withdrawn
                        counts[s][kind] += 1
                    continue
                rule = rules.get(s, TriggerRule.ALL_SUCCESS)
                d = decide(rule, indegree[s], c[0], c[1], c[2])
                if d is Decision.RUN:
                    state[s] = _READY
                    self._ready.push(graph.priority[s], s)
                    released += 1
                elif d is Decision.SKIP:
                    reason = skip_reason(rule, c[_FAILED])
                    self._move(s, _SKIPPED)
                    self.unfinished -= 1
                    self.skip_reasons[s] = reason
                    self.skips.append((s, u))
                    up = _FAILED if reason is SkipReason.UPSTREAM_FAILED else _RULE_SKIPPED
                    stack.append((s, up))
        return released

    def begin_cleanup(self) -> list[int]:
        """The run was stopped after a failure: end every unfinished task
        ``CANCELLED`` except the pending or ready cleanup tasks (``all_done``,
        ``always``), which run once their upstreams are done. Returns the
        tasks ended, in index order."""
        self.cleaning = True
        state, rules = self._state, self._rules
        ended = []
        for i in range(self._n):
            code = state[i]
            if code >= _FIRST_TERMINAL:
                continue
            if code in (_PENDING, _READY) and rules.get(i) in CLEANUP_RULES:
                continue
            self._move(i, _CANCELLED)
            ended.append(i)
        self.unfinished -= len(ended)
        self._ready.clear()
        self._stale = 0
        priority = self._graph.priority
        for i in range(self._n):
            if state[i] == _READY:
                self._ready.push(priority[i], i)
        for i in ended:
            self._settle(i, _FAILED)
        return ended

    def expand(self, parent: int, count: int, completed: Sequence[int] = ()) -> int:
        """Add ``count`` children of the running ``parent`` (run-time fan-out).

        The graph must have grown by them already (``Graph.grow``). They are
        ready at once, at the parent's place, except ``completed`` (offsets
        among them: children whose stored success a resumed run reuses),
        which start ``SUCCESS``. The parent stays ``RUNNING`` until the
        runtime ends it with ``succeed`` or ``fail`` once its children have
        ended; children have no dependents of their own, so their own
        ``succeed``/``fail`` releases and skips nothing. Returns the first
        child's index. Costs O(count); a run without fan-out never calls it.
        """
        if self._state[parent] != _RUNNING:
            check_transition(self._state[parent], _RUNNING)  # only a running task fans out
        first = self._n
        self._n += count
        state = self._state
        state.extend(bytes([_READY]) * count)
        self._waiting.extend([0] * count)
        if self._rules:
            self._counts.extend([0, 0, 0] for _ in range(count))
        for k in completed:
            state[first + k] = _SUCCESS
        self.unfinished += count - len(completed)
        place = self._graph.priority[parent]
        children = range(first, first + count)
        ready = [i for i in children if state[i] == _READY] if completed else children
        if isinstance(self._ready, ReadyBuckets):
            self._ready.push_all(place, ready)
        else:
            push = self._ready.push
            for i in ready:
                push(place, i)
        return first

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
        self._stale = 0
        self.unfinished -= len(ended)
        return ended
