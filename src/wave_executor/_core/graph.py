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
from collections.abc import Hashable, Iterable, Mapping, Sequence
from itertools import accumulate, chain, islice, repeat
from operator import add, ge, itemgetter, mul, sub
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
    """Edges grouped by downstream task, in the order ``dependencies`` gives them.

    ``keys[j]`` is the index of the ``j``-th task that has dependencies,
    ``counts[j]`` how many, and ``sources`` holds all of them back to back
    (so the edges of ``keys[j]`` are the ``counts[j]`` items of ``sources``
    after those of ``keys[:j]``). Lists or tuples while the graph is built:
    their items are the very int objects of ``index`` (no boxing), and they
    are quicker to walk than arrays. Only the compiled arrays outlive the
    build.
    """

    __slots__ = ("counts", "keys", "sources")

    def __init__(self, keys: Sequence[int], counts: list[int], sources: Sequence[int]) -> None:
        self.keys = keys
        self.counts = counts
        self.sources = sources


#: Containers whose iteration has no side effects and cannot be a string of ids.
_PLAIN_DEPENDENCIES = frozenset({list, tuple, set, frozenset})


def _resolve_plain(
    dependencies: Mapping[Any, Iterable[Any]], index: dict[Any, int]
) -> _Edges | None:
    """Map ids to indices with C-level loops; ``None`` if anything is unusual.

    Covers the usual input: a dict of lists, tuples or sets of known ids.
    Anything else (a string, a generator, an unknown or unhashable id)
    returns ``None`` and :func:`_resolve` goes through it task by task,
    which names the problem. Nothing here has side effects, so redoing the
    work there is safe.
    """
    if not isinstance(dependencies, dict):
        return None
    groups = dependencies.values()
    if not set(map(type, groups)) <= _PLAIN_DEPENDENCIES:
        return None
    counts = list(map(len, groups))
    try:
        keys = _positions(index, dependencies, len(counts))
        sources = _positions(index, chain.from_iterable(groups), sum(counts))
    except Exception:  # _resolve raises the precise error
        return None
    return _Edges(keys, counts, sources)


def _positions(index: Mapping[Any, int], ids: Iterable[Any], count: int) -> Sequence[int]:
    """``[index[i] for i in ids]``, as fast as the standard library can look them up.

    ``itemgetter`` does every lookup in one C call (a quarter quicker than
    ``map``); it returns a bare item, not a tuple, when given one id.
    """
    if count > 1:
        found: tuple[int, ...] = itemgetter(*ids)(index)
        return found
    return list(map(index.__getitem__, ids))


def _resolve(dependencies: Mapping[Any, Iterable[Any]], index: Mapping[Any, int]) -> _Edges:
    """Map ids to indices and check them, one task at a time.

    A dependency listed twice is kept twice: every count and traversal
    stays consistent (a task then waits for two releases by the same
    upstream, which come together), so deduplicating would only cost time.
    """
    keys: list[int] = []
    counts: list[int] = []
    sources: list[int] = []
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
        keys.append(ti)
        counts.append(len(sources) - start)
    return _Edges(keys, counts, sources)


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


def _compile_successors(n: int, edges: _Edges) -> tuple[array[int], array[int]]:
    """CSR successor lists: ``offsets`` (``n + 1`` items) and ``successors``.

    A counting sort of the edges by upstream task; it is stable, so each
    task's successors keep the order in which ``dependencies`` named them.
    The fill writes straight into arrays: smaller to walk than lists of
    int objects, and they are what the graph keeps.
    """
    sources, keys, indegree = edges.sources, edges.keys, edges.counts
    outdegree = [0] * n
    for d in sources:
        outdegree[d] += 1
    offsets = array("q", accumulate(outdegree, initial=0))
    cursor = offsets[:-1]
    filled = _zeros("q", len(sources))
    targets: Iterable[int]  # the downstream task of each edge, parallel to sources
    if len(keys) == len(sources) and 0 not in indegree:  # one dependency each
        targets = keys
    else:  # each key, as a 1-tuple, repeated as often as it has dependencies
        targets = chain.from_iterable(map(mul, zip(keys), indegree))
    for d, t in zip(sources, targets, strict=True):
        c = cursor[d]
        filled[c] = t
        cursor[d] = c + 1
    return offsets, filled


#: Marks a task whose rank is final in :func:`_rank_in_given_order`.
_DONE = -1


def _rank_in_given_order(n: int, edges: _Edges, weight: list[Any] | None) -> list[Any] | None:
    """Upward ranks in one backward pass over ``dependencies``; ``None`` if that cannot work.

    Usual input lists a task's dependencies before the task itself. Walked
    backwards, every task then comes after all of its successors, so its
    rank is final when it is reached, and it pushes that rank up to its
    predecessors. A task pushed to after it was done (the order is not
    topological, or there is a cycle) loses its ``_DONE`` mark; counting
    the marks finds that, and the caller falls back to
    :func:`_rank_from_exits`.

    Without weights the result is ``rank - 1`` (cheaper to merge; the
    priorities only use differences); with weights it is the rank.
    """
    keys = edges.keys
    best: list[Any] = [0] * n if weight is None else [0.0] * n
    rank: list[Any] = [0] * n
    upstream = reversed(edges.sources)  # each task's predecessors, last task first
    if weight is None:
        for t, k in zip(reversed(keys), reversed(edges.counts), strict=True):
            rank[t] = r = best[t] + 1
            best[t] = _DONE
            for d in islice(upstream, k):
                if r > best[d]:
                    best[d] = r
    else:
        for t, k in zip(reversed(keys), reversed(edges.counts), strict=True):
            rank[t] = r = best[t] + weight[t]
            best[t] = _DONE
            for d in islice(upstream, k):
                if r > best[d]:
                    best[d] = r
    if best.count(_DONE) != len(keys):
        return None
    if weight is None:  # keys: r + _DONE; the others: best (= rank - 1, as rank is 0)
        return list(map(add, rank, best))
    return [r if b == _DONE else b + w for r, b, w in zip(rank, best, weight, strict=True)]


def _rank_from_exits(
    n: int, edges: _Edges, outdeg: list[int], weight: list[Any] | None
) -> tuple[list[Any], list[int]]:
    """Upward ranks by Kahn's algorithm run backwards from the exits.

    Works for any order of ``dependencies``. One pass does both jobs: it
    computes every rank, and the tasks it never reaches are exactly those
    on or upstream of a cycle (``order`` is then shorter than ``n``).
    Without weights the ranks are ``rank - 1``, as in :func:`_rank_in_given_order`.
    """
    lo = [0] * n
    hi = [0] * n
    end = 0
    for t, k in zip(edges.keys, edges.counts, strict=True):
        lo[t] = end
        end += k
        hi[t] = end
    remaining = outdeg[:]
    best: list[Any] = [0] * n if weight is None else [0.0] * n
    rank: list[Any] = [0] * n
    sources = edges.sources
    order = [i for i in range(n) if not outdeg[i]]
    for v in order:  # grows while we walk it
        r = best[v] + (1 if weight is None else weight[v])
        rank[v] = r
        for u in sources[lo[v] : hi[v]]:
            if r > best[u]:
                best[u] = r
            left = remaining[u] - 1
            remaining[u] = left
            if not left:
                order.append(u)
    if weight is None:
        rank = [r - 1 for r in rank]
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


def _priority_ranks(rank: list[Any], integral: bool) -> array[int]:
    """Each task's place in the dispatch order as a small int: lower goes first.

    Equal places are broken at run time by the order tasks became ready.
    """
    if integral:
        return array("q", map(sub, repeat(max(rank, default=0)), rank))
    places = {r: place for place, r in enumerate(sorted(set(rank), reverse=True))}
    return array("q", map(places.__getitem__, rank))


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
    dependencies = dependencies or {}
    if costs is None and _without_edges(dependencies, index):
        # Common for small runs (a wave, a single-task node): nothing to compile.
        return Graph(ids, index, _zeros("q", n + 1), array("q"), _zeros("q", n), _zeros("q", n))
    edges = _resolve_plain(dependencies, index) or _resolve(dependencies, index)
    offsets, successors = _compile_successors(n, edges)
    weight = _weights(costs, index, n)
    rank = _rank_in_given_order(n, edges, weight)
    if rank is None:
        outdeg = list(map(sub, offsets[1:], offsets[:-1]))
        rank, reached = _rank_from_exits(n, edges, outdeg, weight)
        if len(reached) < n:
            raise _cycle_error(ids, offsets, successors, reached)
    indegree = [0] * n
    for t, k in zip(edges.keys, edges.counts, strict=True):
        indegree[t] = k
    del edges
    return Graph(
        ids,
        index,
        offsets,
        successors,
        array("q", indegree),
        _priority_ranks(rank, integral=weight is None),
    )


def _weights(
    costs: Mapping[Any, float] | None, index: Mapping[Any, int], n: int
) -> list[float] | None:
    """Each task's cost estimate (``None`` without ``costs``); checks ``costs``.

    Tasks without an estimate are assumed to cost the mean of the given ones.
    """
    if costs is None:
        return None
    positions, values = _plain_costs(costs, index) or _checked_costs(costs, index)
    default = sum(values) / len(values) if values else 1.0
    weight = [default] * n
    for i, value in zip(positions, values, strict=True):
        weight[i] = value
    return weight


def _plain_costs(
    costs: Mapping[Any, float], index: Mapping[Any, int]
) -> tuple[list[int], list[float]] | None:
    """Positions and values of a dict of valid costs in C-level loops; else ``None``."""
    if not isinstance(costs, dict) or not set(map(type, costs.values())) <= {float, int}:
        return None
    try:
        values = list(map(float, costs.values()))
        positions = list(map(index.__getitem__, costs))
    except Exception:  # _checked_costs raises the precise error
        return None
    if not all(map(ge, values, repeat(0.0))):  # also catches NaN
        return None
    return positions, values


def _checked_costs(
    costs: Mapping[Any, float], index: Mapping[Any, int]
) -> tuple[list[int], list[float]]:
    """Positions and values of the costs, checked one by one."""
    positions: list[int] = []
    values: list[float] = []
    for task_id, value in costs.items():
        i = index.get(task_id)
        if i is None:
            raise UnknownDependencyError(task_id, task_id, role="cost")
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not value >= 0.0:  # also rejects NaN
            raise ValueError(f"cost of task {task_id!r} must be a number >= 0, got {value!r}")
        positions.append(i)
        values.append(float(value))
    return positions, values
