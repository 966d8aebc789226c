"""Task bodies for the process and Dask backends: module-level, so they pickle by reference."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def pid_and_deps(task_id: Any, spec: Any) -> tuple[int, Any]:
    """The worker's pid, and what the task received from its dependencies."""
    return os.getpid(), spec.get("_dep_outputs") if isinstance(spec, dict) else None


def square(task_id: Any, spec: Any) -> int:
    return int(spec["x"]) ** 2


def add_deps(task_id: Any, spec: Any) -> int:
    return int(sum(spec.get("_dep_outputs", {}).values())) + int(spec.get("x", 0))


class BodyError(ValueError):
    pass


def raise_body_error(task_id: Any, spec: Any) -> None:
    raise BodyError(f"bad input for {task_id}")


def sleep_for(task_id: Any, spec: Any) -> str:
    time.sleep(float(spec["seconds"]))
    return f"slept {task_id}"


def die_once(task_id: Any, spec: Any) -> str:
    """Kill the worker process running it the first time; succeed after that."""
    marker = Path(spec["marker"])
    if not marker.exists():
        marker.write_text("died")
        os._exit(1)
    return f"survived {task_id}"


def die_always(task_id: Any, spec: Any) -> str:
    os._exit(1)


def megabytes(task_id: Any, spec: Any) -> bytes:
    return b"x" * (int(spec["mb"]) * 1_000_000)


def length_of_deps(task_id: Any, spec: Any) -> int:
    return sum(len(v) for v in spec.get("_dep_outputs", {}).values())


def burn(task_id: Any, spec: Any) -> int:
    """CPU-bound work: a pure-Python loop of ``spec['n']`` steps."""
    total = 0
    for k in range(int(spec["n"])):
        total = (total + k * k) % 1_000_003
    return total


def noop(task_id: Any, spec: Any) -> None:
    return None


def items_of(task_id: Any, spec: Any) -> list[int]:
    """A fan-out parent: one item per number up to ``spec["n"]``."""
    return list(range(int(spec["n"])))


def pid_and_double(child_id: Any, item: int) -> tuple[int, int]:
    """A fan-out child: the worker's pid and twice the item."""
    return os.getpid(), 2 * item


def slow_add(task_id: Any, spec: Any) -> int:
    """Sleep ``spec['sleep']`` seconds, then add ``spec['x']`` to the dependencies' outputs."""
    time.sleep(float(spec.get("sleep", 0)))
    return add_deps(task_id, spec)


def slow_fail_once(task_id: Any, spec: Any) -> int:
    """Like ``slow_add``, but its first attempt fails (a marker file remembers it)."""
    time.sleep(float(spec.get("sleep", 0)))
    marker = Path(spec["marker"])
    if not marker.exists():
        marker.write_text("failed")
        raise BodyError(f"first attempt of {task_id}")
    return add_deps(task_id, spec)


def slow_fail(task_id: Any, spec: Any) -> int:
    time.sleep(float(spec.get("sleep", 0)))
    raise BodyError(f"{task_id} fails")


def by_task(task_id: Any, spec: Any) -> Any:
    """The body named by ``spec['body']`` (one of this module's)."""
    return globals()[spec.get("body", "slow_add")](task_id, spec)
