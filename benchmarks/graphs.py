"""Deterministic task-graph generators shared by every benchmark.

Each generator returns ``(tasks, dependencies)`` in exactly the shape that
``DAGExecutor.execute`` takes: ``tasks`` maps a task id (``"t0"``, ``"t1"``, ...) to a spec
(``None`` here, so that the spec costs nothing and every implementation sees the same input),
and ``dependencies`` maps a task id to the list of ids it waits for. Tasks without
dependencies are left out of ``dependencies``, as callers normally do.

Standard library only: the 0.3.0 baseline runs in a virtual environment that has nothing but
wave-executor 0.3.0, and this module must import there too.
"""

from __future__ import annotations

import gc
import math
import random
from collections.abc import Callable
from typing import Any

Graph = tuple[dict[str, Any], dict[str, list[str]]]

#: Mean number of dependencies of a task in a "layered" graph (first layer excluded).
LAYERED_MEAN_IN_DEGREE = 2.5
#: Share of a layered task's dependencies taken from the layer right above it; the rest come
#: from any earlier layer, so that the graph has long edges as well as local ones.
LAYERED_LOCAL_SHARE = 0.8


def _ids(n: int) -> list[str]:
    """Task ids ``t0..t{n-1}``; ids, not ints, because real callers use names."""
    return [f"t{i}" for i in range(n)]


def independent(n: int, seed: int = 0) -> Graph:
    """``n`` tasks and no edges: pure dispatch cost, nothing to resolve."""
    del seed
    return dict.fromkeys(_ids(n)), {}


def chain(n: int, seed: int = 0) -> Graph:
    """``t0 -> t1 -> ... -> t{n-1}``: no parallelism at all, one wake-up per task."""
    del seed
    ids = _ids(n)
    deps = {ids[i]: [ids[i - 1]] for i in range(1, n)}
    return dict.fromkeys(ids), deps


def fanout_fanin(n: int, seed: int = 0) -> Graph:
    """One root, ``n - 2`` middle tasks that all wait on it, one sink that waits on them all.

    This stresses a single task with a huge out-degree and another with a huge in-degree.
    """
    del seed
    if n < 3:
        return chain(n)
    ids = _ids(n)
    root, middle, sink = ids[0], ids[1:-1], ids[-1]
    deps: dict[str, list[str]] = {t: [root] for t in middle}
    deps[sink] = list(middle)
    return dict.fromkeys(ids), deps


def layer_width(n: int) -> int:
    """Width of a layer: about ``sqrt(n)``, clamped to 10..1000.

    ``sqrt(n)`` keeps both the number of layers and the parallelism inside a layer growing
    with ``n``, so neither a wide-flat nor a deep-narrow pattern dominates at any size.
    """
    return max(10, min(1000, round(math.sqrt(n))))


def layered(n: int, seed: int = 0) -> Graph:
    """Random layered DAG with mean in-degree ~2.5 (outside the first layer).

    Tasks are cut into consecutive layers of :func:`layer_width` tasks. Every task outside the
    first layer takes 1..4 distinct dependencies (uniform, mean 2.5); each one is drawn from
    the previous layer with probability :data:`LAYERED_LOCAL_SHARE`, else from any earlier task.
    """
    rng = random.Random(seed)
    rand = rng.random  # bound method: this loop runs ~2.5 n times
    ids = _ids(n)
    width = layer_width(n)
    deps: dict[str, list[str]] = {}
    for start in range(width, n, width):
        prev_lo = start - width
        for i in range(start, min(start + width, n)):
            k = 1 + int(rand() * 4)
            picked: set[int] = set()
            while len(picked) < k:
                if rand() < LAYERED_LOCAL_SHARE:
                    picked.add(prev_lo + int(rand() * width))
                else:
                    picked.add(int(rand() * start))
            deps[ids[i]] = [ids[j] for j in sorted(picked)]
    return dict.fromkeys(ids), deps


def random_dag(n: int, seed: int = 0) -> Graph:
    """Random DAG over ``t0..t{n-1}`` with edges only from earlier to later tasks.

    Task ``i`` takes ``min(i, k)`` distinct dependencies among ``t0..t{i-1}``, ``k`` uniform in
    0..5 (mean 2.5), so about one task in six is a root and edges of every length occur. Used
    by the makespan check, where this irregularity is what separates good dispatch orders
    from bad ones (a layered graph forgives almost any order).
    """
    rng = random.Random(seed)
    ids = _ids(n)
    deps: dict[str, list[str]] = {}
    for i in range(1, n):
        k = min(i, rng.randint(0, 5))
        if k:
            deps[ids[i]] = [ids[j] for j in sorted(rng.sample(range(i), k))]
    return dict.fromkeys(ids), deps


#: The shapes of the overhead matrix.
SHAPES: dict[str, Callable[[int, int], Graph]] = {
    "independent": independent,
    "chain": chain,
    "fanout_fanin": fanout_fanin,
    "layered": layered,
}


def build(shape: str, n: int, seed: int = 0) -> Graph:
    """Build the graph called ``shape``; raise ``KeyError`` naming the known shapes.

    The cyclic GC is paused while building: the input is millions of fresh containers and
    nothing in it is garbage, so collections would only slow the setup down (they are not
    part of any measurement; the GC is back on, at its defaults, before anything is timed).
    """
    try:
        generator = SHAPES[shape]
    except KeyError:
        raise KeyError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}") from None
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return generator(n, seed)
    finally:
        if was_enabled:
            gc.enable()


def edge_count(dependencies: dict[str, list[str]]) -> int:
    """Count edges, for reporting the mean in-degree actually generated."""
    return sum(len(d) for d in dependencies.values())
