"""The task graph, validated and compiled once per execution.

Task ids map to dense ints ``0..n-1`` (in the order of ``tasks``); successors
are stored in CSR form (one flat ``array`` of edges plus offsets), so a
million-task graph costs a few dozen bytes a task beyond the caller's own
dicts. Validation names unknown dependencies and reports a cycle as a path.

Priority is the *upward rank*: the longest path from a task to an exit,
counted in tasks or, when costs are given, summed over cost estimates. Tasks
are handed out in order of decreasing rank, ties going to the task that
became ready first: the classic critical-path-first list-scheduling rule.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, Iterable, Mapping
from itertools import accumulate
from typing import Any

from wave_executor.errors import UnknownDependencyError, WaveCircularDependencyError

__all__ = ["Graph", "build_graph"]


class Graph:
    """An immutable, validated DAG over dense task indices."""

    __slots__ = ("ids", "indegree", "index", "offsets", "priority", "successors")

    def __init__(
        self,
        ids: list[Any],
        index: dict[Any, int],
        offsets: array[int],
        successors: array[int],
        indegree: array[int],
        priority: array[int],
    ) -> None:
        self.ids = ids
        self.index = index
        self.offsets = offsets
        self.successors = successors
        self.indegree = indegree
        #: Each task's dispatch place (upward rank, as a small int): smaller goes first.
        self.priority = priority

    def __len__(self) -> int:
        return len(self.ids)

    def grow(self, ids: list[Any], place: int) -> int:
        """Append tasks without edges (run-time fan-out children); return the first index.

        The only change a graph allows after it is built: new tasks have no
        predecessors and no successors in the CSR arrays (their parent
        waits for them through the run's fan-out book), so nothing that is
        already compiled moves. They take dispatch place ``place``.
        """
        first = len(self.ids)
        count = len(ids)
        index = self.index
        clash = next((task_id for task_id in ids if task_id in index), None)
        if clash is not None or len(set(ids)) != count:
            raise ValueError(f"task ids must be unique; {clash!r} is there already")
        index.update(zip(ids, range(first, first + count), strict=True))
        self.ids.extend(ids)
        last = self.offsets[-1]
        self.offsets.extend(array("q", [last]) * count)
        self.indegree.extend(_zeros("q", count))
        self.priority.extend(array("q", [place]) * count)
        return first


def _zeros(typecode: str, n: int) -> array[int]:
    return array(typecode, [0]) * n


class _Edges:
    """Edges grouped by downstream task: the predecessors of ``t`` are
    ``sources[lo[t]:hi[t]]``; ``targets`` runs parallel to ``sources``.

    Plain lists while the graph is built: their items are the very int
    objects of ``index`` (no boxing), and list loops beat array loops. Only
    the compiled successor arrays outlive the build.
    """

    __slots__ = ("hi", "lo", "sources", "targets")

    def __init__(self, n: int) -> None:
        self.sources: list[int] = []
        self.targets: list[int] = []
        self.lo = _zeros("q", n)
        self.hi = _zeros("q", n)


def _resolve(dependencies: Mapping[Any, Iterable[Any]], index: Mapping[Any, int]) -> _Edges:
    """Map ids to indices and check them.

    A dependency listed twice is kept twice: every count and traversal
    stays consistent (a task then waits for two releases by the same
    upstream, which come together), so deduplicating would only cost time.
    """
    edges = _Edges(len(index))
    sources, targets, lo, hi = edges.sources, edges.targets, edges.lo, edges.hi
    position = index.__getitem__
    for task_id, deps in dependencies.items():
        ti = index.get(task_id)
        if ti is None:
            raise UnknownDependencyError(task_id, task_id, role="key")
        if not deps:
            continue
        if isinstance(deps, (str, bytes)):
            raise TypeError(
                f"dependencies of {task_id!r} must be a collection of task ids, "
                f"not a {type(deps).__name__} ({deps!r}); write {{{deps!r}}}"
            )
        start = len(sources)
        try:
            sources.extend(map(position, deps))
        except KeyError:
            missing = next(d for d in deps if d not in index)
            raise UnknownDependencyError(task_id, missing) from None
        except TypeError:  # deps is not iterable, or holds an unhashable id
            raise _bad_dependencies(task_id, deps) from None
        end = len(sources)
        lo[ti] = start
        hi[ti] = end
        targets += [ti] * (end - start)
    return edges


def _bad_dependencies(task_id: Any, deps: object) -> TypeError:
    if not isinstance(deps, Iterable):
        return TypeError(
            f"dependencies of {task_id!r} must be a collection of task ids, got {deps!r}"
        )
    bad = next((d for d in deps if not isinstance(d, Hashable)), deps)
    return TypeError(f"dependencies of {task_id!r} name {bad!r}, which cannot be a task id")


def _without_edges(dependencies: Mapping[Any, Iterable[Any]], index: Mapping[Any, int]) -> bool:
    """True if no task has a dependency (keys are still checked)."""
    for task_id, deps in dependencies.items():
        if task_id not in index:
            raise UnknownDependencyError(task_id, task_id, role="key")
        if deps:
            return False
    return True


def _compile_successors(n: int, edges: _Edges) -> tuple[array[int], array[int], array[int]]:
    """CSR successor lists (offsets, successors) and out-degrees."""
    counts = [0] * n
    for d in edges.sources:
        counts[d] += 1
    outdeg = array("q", counts)
    offsets = array("q", accumulate(counts, initial=0))
    filled: list[int] = [0] * len(edges.sources)
    cursor = offsets.tolist()
    for d, t in zip(edges.sources, edges.targets, strict=True):
        filled[cursor[d]] = t
        cursor[d] += 1
    return offsets, array("q", filled), outdeg


def _rank_from_exits(
    n: int, edges: _Edges, outdeg: array[int], cost: Mapping[int, float] | None
) -> tuple[array[float], list[int]]:
    """Upward ranks by Kahn's algorithm run backwards from the exits.

    One pass does both jobs: it computes every rank, and the tasks it never
    reaches are exactly those on or upstream of a cycle (``order`` is then
    shorter than ``n``).
    """
    remaining = array("q", outdeg)
    best = array("d", [0.0]) * n
    rank = array("d", [0.0]) * n
    sources, lo, hi = edges.sources, edges.lo, edges.hi
    order = [i for i in range(n) if not outdeg[i]]
    default = _default_cost(cost)
    for v in order:  # grows while we walk it
        r = best[v] + (1.0 if cost is None else cost.get(v, default))
        rank[v] = r
        for u in sources[lo[v] : hi[v]]:
            if r > best[u]:
                best[u] = r
            left = remaining[u] - 1
            remaining[u] = left
            if not left:
                order.append(u)
    return rank, order


def _cycle_error(
    ids: list[Any], offsets: array[int], successors: array[int], reached: list[int]
) -> WaveCircularDependencyError:
    """Name the tasks that lie on cycles (Tarjan, iterative) and one cycle path."""
    n = len(ids)
    done = bytearray(n)
    for i in reached:
        done[i] = 1
    low = [0] * n
    num = [0] * n
    on_stack = bytearray(n)
    stack: list[int] = []
    counter = 1
    members: list[int] = []
    for root in range(n):
        if done[root] or num[root]:
            continue
        work = [(root, offsets[root])]
        num[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = 1
        while work:
            v, k = work[-1]
            if k < offsets[v + 1]:
                work[-1] = (v, k + 1)
                w = successors[k]
                if done[w]:
                    continue
                if not num[w]:
                    num[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = 1
                    work.append((w, offsets[w]))
                elif on_stack[w]:
                    low[v] = min(low[v], num[w])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] == num[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack[w] = 0
                    component.append(w)
                    if w == v:
                        break
                self_loop = v in successors[offsets[v] : offsets[v + 1]]
                if len(component) > 1 or self_loop:
                    members.extend(component)
    path = _one_cycle(members, offsets, successors)
    return WaveCircularDependencyError({ids[i] for i in members}, [ids[i] for i in path])


def _one_cycle(members: list[int], offsets: array[int], successors: array[int]) -> list[int]:
    """Walk inside the cyclic tasks until a task repeats: that loop is a cycle."""
    if not members:
        return []
    on_cycle = set(members)
    seen: dict[int, int] = {}
    path: list[int] = []
    v = members[0]
    while v not in seen:
        seen[v] = len(path)
        path.append(v)
        v = next(s for s in successors[offsets[v] : offsets[v + 1]] if s in on_cycle)
    cycle = path[seen[v] :]
    # Dependencies point upstream -> downstream; show the cycle in that direction.
    return [*cycle, cycle[0]]


def _priority_ranks(n: int, rank: array[float], integral: bool) -> array[int]:
    """Each task's place in the dispatch order as a small int: lower goes first.

    Equal places are broken at run time by the order tasks became ready.
    """
    if integral:
        top = int(max(rank, default=0.0))
        return array("q", [top - int(rank[i]) for i in range(n)])
    order = sorted(range(n), key=rank.__getitem__, reverse=True)
    places = _zeros("q", n)
    place, previous = -1, None
    for i in order:
        if rank[i] != previous:
            place, previous = place + 1, rank[i]
        places[i] = place
    return places


def build_graph(
    tasks: Iterable[Any],
    dependencies: Mapping[Any, Iterable[Any]] | None,
    costs: Mapping[Any, float] | None = None,
) -> Graph:
    """Validate and compile a graph; raise before anything runs.

    Raises ``UnknownDependencyError`` (a ``ValueError``) for ids that are not
    tasks and ``WaveCircularDependencyError`` when there is a cycle.
    """
    ids = list(tasks)
    try:
        index = {task_id: i for i, task_id in enumerate(ids)}
    except TypeError:
        bad = next(t for t in ids if not isinstance(t, Hashable))
        raise TypeError(f"task ids must be hashable, got {bad!r}") from None
    n = len(ids)
    if len(index) != n:
        raise ValueError("task ids must be unique")
    if costs is None and _without_edges(dependencies or {}, index):
        # Common for small runs (a wave, a single-task node): nothing to compile.
        return Graph(ids, index, _zeros("q", n + 1), array("q"), _zeros("q", n), _zeros("q", n))
    edges = _resolve(dependencies or {}, index)
    offsets, successors, outdeg = _compile_successors(n, edges)
    cost_by_index = _resolve_costs(costs, index)
    rank, reached = _rank_from_exits(n, edges, outdeg, cost_by_index)
    if len(reached) < n:
        raise _cycle_error(ids, offsets, successors, reached)
    indegree = array("q", [h - lo for lo, h in zip(edges.lo, edges.hi, strict=True)])
    del edges
    priority = _priority_ranks(n, rank, integral=cost_by_index is None)
    return Graph(ids, index, offsets, successors, indegree, priority)


def _resolve_costs(
    costs: Mapping[Any, float] | None, index: Mapping[Any, int]
) -> dict[int, float] | None:
    if costs is None:
        return None
    resolved: dict[int, float] = {}
    if not costs:
        return resolved
    for task_id, value in costs.items():
        i = index.get(task_id)
        if i is None:
            raise UnknownDependencyError(task_id, task_id, role="cost")
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not value >= 0.0:  # also rejects NaN
            raise ValueError(f"cost of task {task_id!r} must be a number >= 0, got {value!r}")
        resolved[i] = float(value)
    return resolved


def _default_cost(costs: Mapping[int, float] | None) -> float:
    """Tasks without an estimate are assumed to cost the mean of the given ones."""
    if not costs:
        return 1.0
    return sum(costs.values()) / len(costs)
