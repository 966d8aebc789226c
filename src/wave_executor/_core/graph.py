"""The task graph, validated and compiled once per execution.

Task ids map to dense ints ``0..n-1`` (in the order of ``tasks``); successors
are stored in CSR form (one flat ``array`` of edges plus offsets), so a
million-task graph costs a few dozen bytes a task beyond the caller's own
dicts. Validation names unknown dependencies and reports a cycle as a path.

Priority is the *upward rank*: the longest path from a task to an exit,
counted in tasks or, when costs are given, summed over cost estimates. Tasks
are handed out in order of decreasing rank (ties by insertion order), which
is the classic critical-path-first list-scheduling rule.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, Iterable, Mapping
from wave_executor.errors import UnknownDependencyError, WaveCircularDependencyError

__all__ = ["Graph", "build_graph"]


class Graph:
    """An immutable, validated DAG over dense task indices."""

    __slots__ = ("ids", "index", "indegree", "offsets", "priority", "successors")

    def __init__(
        self,
        ids: list[Hashable],
        index: dict[Hashable, int],
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
        #: Heap key of each task: smaller goes first; ``key % n`` is the index.
        self.priority = priority

    def __len__(self) -> int:
        return len(self.ids)

    def successors_of(self, i: int) -> array[int]:
        return self.successors[self.offsets[i] : self.offsets[i + 1]]


def _zeros(typecode: str, n: int) -> array[int]:
    return array(typecode, [0]) * n


def _dependency_items(
    dependencies: Mapping[Hashable, Iterable[Hashable]], index: Mapping[Hashable, int]
) -> list[tuple[int, list[int]]]:
    """Resolve ids to indices, drop duplicate edges, and reject unknown ids."""
    resolved: list[tuple[int, list[int]]] = []
    for task_id, deps in dependencies.items():
        ti = index.get(task_id)
        if ti is None:
            raise UnknownDependencyError(task_id, task_id, role="key")
        if isinstance(deps, (str, bytes)):
            raise TypeError(
                f"dependencies of {task_id!r} must be a collection of task ids, "
                f"not a {type(deps).__name__} ({deps!r}); write {{{deps!r}}}"
            )
        if not deps:
            continue
        upstream: list[int] = []
        for dep in deps if isinstance(deps, (set, frozenset)) else dict.fromkeys(deps):
            di = index.get(dep)
            if di is None:
                raise UnknownDependencyError(task_id, dep)
            upstream.append(di)
        resolved.append((ti, upstream))
    return resolved


def _compile_edges(n: int, resolved: list[tuple[int, list[int]]]) -> tuple[array[int], ...]:
    """CSR successor lists and in-degrees from (task, [upstream...]) pairs."""
    outdeg = _zeros("q", n)
    indegree = _zeros("q", n)
    for ti, upstream in resolved:
        indegree[ti] = len(upstream)
        for di in upstream:
            outdeg[di] += 1
    offsets = _zeros("q", n + 1)
    total = 0
    for i in range(n):
        offsets[i] = total
        total += outdeg[i]
    offsets[n] = total
    successors = _zeros("q", total)
    cursor = outdeg  # reused: becomes the fill position of each row
    for i in range(n):
        cursor[i] = offsets[i]
    for ti, upstream in resolved:
        for di in upstream:
            successors[cursor[di]] = ti
            cursor[di] += 1
    return offsets, successors, indegree


def _topological_order(
    n: int, offsets: array[int], successors: array[int], indegree: array[int]
) -> array[int]:
    """Kahn's algorithm; the result is shorter than ``n`` when there is a cycle."""
    waiting = array("q", indegree)
    order = array("q", [i for i in range(n) if not waiting[i]])
    head = 0
    while head < len(order):
        i = order[head]
        head += 1
        for k in range(offsets[i], offsets[i + 1]):
            s = successors[k]
            waiting[s] -= 1
            if not waiting[s]:
                order.append(s)
    return order


def _cycle_error(
    ids: list[Hashable], offsets: array[int], successors: array[int], topo: array[int]
) -> WaveCircularDependencyError:
    """Name the tasks that lie on cycles (Tarjan, iterative) and one cycle path."""
    n = len(ids)
    done = bytearray(n)
    for i in topo:
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


def _upward_rank(
    n: int,
    offsets: array[int],
    successors: array[int],
    topo: array[int],
    cost: Mapping[int, float] | None,
) -> array[float]:
    rank = array("d", [0.0]) * n
    default = _default_cost(cost)
    for pos in range(n - 1, -1, -1):
        i = topo[pos]
        best = 0.0
        for k in range(offsets[i], offsets[i + 1]):
            r = rank[successors[k]]
            if r > best:
                best = r
        rank[i] = best + (1.0 if cost is None else cost.get(i, default))
    return rank


def _priority_keys(n: int, rank: array[float], integral: bool) -> array[int]:
    """Heap keys ``ordinal * n + index``: an int compares faster than a tuple."""
    if integral:
        top = int(max(rank, default=0.0))
        return array("q", [(top - int(rank[i])) * n + i for i in range(n)])
    order = sorted(range(n), key=rank.__getitem__, reverse=True)
    keys = _zeros("q", n)
    for ordinal, i in enumerate(order):
        keys[i] = ordinal * n + i
    return keys


def build_graph(
    tasks: Iterable[Hashable],
    dependencies: Mapping[Hashable, Iterable[Hashable]] | None,
    costs: Mapping[Hashable, float] | None = None,
) -> Graph:
    """Validate and compile a graph; raise before anything runs.

    Raises ``UnknownDependencyError`` (a ``ValueError``) for ids that are not
    tasks and ``WaveCircularDependencyError`` when there is a cycle.
    """
    ids = list(tasks)
    index = {task_id: i for i, task_id in enumerate(ids)}
    n = len(ids)
    if len(index) != n:
        raise ValueError("task ids must be unique")
    resolved = _dependency_items(dependencies or {}, index)
    offsets, successors, indegree = _compile_edges(n, resolved)
    del resolved
    topo = _topological_order(n, offsets, successors, indegree)
    if len(topo) < n:
        raise _cycle_error(ids, offsets, successors, topo)
    cost_by_index = _resolve_costs(costs, index)
    rank = _upward_rank(n, offsets, successors, topo, cost_by_index)
    priority = _priority_keys(n, rank, integral=cost_by_index is None)
    return Graph(ids, index, offsets, successors, indegree, priority)


def _resolve_costs(
    costs: Mapping[Hashable, float] | None, index: Mapping[Hashable, int]
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
        c = float(value)
        if not c >= 0.0:  # also rejects NaN
            raise ValueError(f"cost of task {task_id!r} must be a number >= 0, got {value!r}")
        resolved[i] = c
    return resolved


def _default_cost(costs: dict[int, float] | None) -> float:
    """Tasks without an estimate are assumed to cost the mean of the given ones."""
    if not costs:
        return 1.0
    return sum(costs.values()) / len(costs)

