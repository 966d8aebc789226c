"""A task graph as mermaid, as Graphviz dot, and laid out in columns for SVG."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["depths", "to_dot", "to_mermaid"]


def _all_nodes(deps: Mapping[str, Iterable[str]]) -> list[str]:
    seen: dict[str, None] = {}
    for task, ups in deps.items():
        seen.setdefault(task)
        for up in ups:
            seen.setdefault(up)
    return list(seen)


def _mermaid_id(name: str, taken: dict[str, str]) -> str:
    if name not in taken:
        base = re.sub(r"[^A-Za-z0-9_]", "_", name) or "t"
        candidate, k = base, 1
        while candidate in taken.values():
            k += 1
            candidate = f"{base}_{k}"
        taken[name] = candidate
    return taken[name]


def to_mermaid(deps: Mapping[str, Iterable[str]]) -> str:
    """``flowchart LR`` with one node per task and an arrow from each dependency."""
    ids: dict[str, str] = {}
    lines = ["flowchart LR"]
    for name in _all_nodes(deps):
        label = name.replace('"', "#quot;")
        lines.append(f'    {_mermaid_id(name, ids)}["{label}"]')
    for task, ups in deps.items():
        for up in ups:
            lines.append(f"    {_mermaid_id(up, ids)} --> {_mermaid_id(task, ids)}")
    return "\n".join(lines) + "\n"


def _dot_quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(deps: Mapping[str, Iterable[str]]) -> str:
    """A Graphviz ``digraph`` (``dot -Tsvg`` draws it)."""
    lines = ["digraph pipeline {", "    rankdir=LR;", "    node [shape=box, style=rounded];"]
    for name in _all_nodes(deps):
        lines.append(f"    {_dot_quote(name)};")
    for task, ups in deps.items():
        for up in ups:
            lines.append(f"    {_dot_quote(up)} -> {_dot_quote(task)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def depths(deps: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Each task's column: the length of the longest chain of dependencies above it."""
    nodes = _all_nodes(deps)
    ups = {n: list(deps.get(n, ())) for n in nodes}
    depth: dict[str, int] = {}
    for start in nodes:
        stack = [start]
        while stack:
            n = stack[-1]
            if n in depth:
                stack.pop()
                continue
            missing = [u for u in ups[n] if u not in depth]
            if missing:
                stack.extend(missing)
                continue
            depth[n] = 1 + max((depth[u] for u in ups[n]), default=-1)
            stack.pop()
    return depth
