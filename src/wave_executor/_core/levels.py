"""Level mode's partition of a graph into waves by dependency depth.

A task's depth is the length of the longest dependency chain from a root
to it (roots have depth 0); wave ``k`` holds the tasks of depth ``k``, in
task order. Tasks of one wave never depend on each other, and every
dependency of a task lies in an earlier wave.
"""

from __future__ import annotations

from wave_executor._core.graph import Graph

__all__ = ["depths", "waves_of"]


def depths(graph: Graph) -> list[int]:
    """Depth of every task index (Kahn's order over a validated, acyclic graph)."""
    n = len(graph)
    depth = [0] * n
    remaining = graph.indegree.tolist()
    offsets, successors = graph.offsets, graph.successors
    frontier = [i for i in range(n) if remaining[i] == 0]
    while frontier:
        i = frontier.pop()
        below = depth[i] + 1
        for e in range(offsets[i], offsets[i + 1]):
            s = successors[e]
            if depth[s] < below:
                depth[s] = below
            remaining[s] -= 1
            if remaining[s] == 0:
                frontier.append(s)
    return depth


def waves_of(graph: Graph) -> list[list[int]]:
    """Task indices grouped by depth: ``result[k]`` is wave ``k``, in task order."""
    depth = depths(graph)
    waves: list[list[int]] = [[] for _ in range(max(depth, default=-1) + 1)]
    for i, k in enumerate(depth):
        waves[k].append(i)
    return waves
