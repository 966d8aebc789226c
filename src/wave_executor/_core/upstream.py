"""How a task body receives what ran before it, in one place for every mode.

A spec that is a dict gets the outputs under a new key of a copy; any other
spec is wrapped as ``{"spec": spec, key: outputs}``. The caller's spec is
never changed. ``_dep_outputs`` carries the outputs of a task's own
dependencies (DAG runs, level mode, the reconciler); ``_upstream_outputs``
those of a MetaDAG node's upstream nodes.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["DEP_OUTPUTS", "UPSTREAM_OUTPUTS", "with_outputs"]

DEP_OUTPUTS: Final = "_dep_outputs"
UPSTREAM_OUTPUTS: Final = "_upstream_outputs"


def with_outputs(spec: Any, key: str, outputs: Any) -> Any:
    """A copy of ``spec`` carrying ``outputs`` under ``key``."""
    if isinstance(spec, dict):
        return {**spec, key: outputs}
    return {"spec": spec, key: outputs}
