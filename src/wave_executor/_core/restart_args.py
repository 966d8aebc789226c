"""Per-task restart settings as ``WaveReconciler.update()`` takes them (pure).

Each setting is one value for every task or a mapping task id -> value
(unlisted tasks get the default). The reconciler builds its desired state
from them; MetaDAG checks a reconciler node's settings with the same rules
when the node is added, so both refuse the same values with the same words.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from wave_executor._core.restart import RestartPolicy

__all__ = ["RestartArgs", "restart_args"]

T = TypeVar("T")


class RestartArgs:
    """One value per task of each restart setting."""

    __slots__ = ("attempts", "base", "policy", "timeout")

    def __init__(
        self,
        policy: dict[Any, RestartPolicy],
        attempts: dict[Any, int],
        base: dict[Any, float],
        timeout: dict[Any, float | None],
    ) -> None:
        self.policy = policy
        self.attempts = attempts
        self.base = base
        self.timeout = timeout


def restart_args(
    tasks: Mapping[Any, Any],
    policies: Mapping[Any, str] | str | None,
    max_restart_attempts: Mapping[Any, int] | int | None,
    restart_backoff_base: Mapping[Any, float] | float | None,
    timeouts: Mapping[Any, float | None] | float | None,
) -> RestartArgs:
    """Check the settings and give each task its values; ValueError names the bad one."""
    return RestartArgs(
        _per_task("policies", policies, tasks, RestartPolicy.ON_FAILURE, _policy),
        _per_task("max_restart_attempts", max_restart_attempts, tasks, 5, _attempts),
        _per_task("restart_backoff_base", restart_backoff_base, tasks, 3.0, _base),
        _per_task("timeouts", timeouts, tasks, None, _timeout),
    )


def _per_task(
    name: str,
    value: Any,
    tasks: Mapping[Any, Any],
    default: Any,
    convert: Callable[[Any, Any], T],
) -> dict[Any, T]:
    """One value per task from a dict (unlisted tasks get ``default``) or a single value."""
    if value is None:
        value = default
    if isinstance(value, Mapping):
        for task_id in value:
            if task_id not in tasks:
                raise ValueError(
                    f"{name} given for task {task_id!r}, which is not defined in tasks"
                )
        return {task_id: convert(task_id, value.get(task_id, default)) for task_id in tasks}
    one = convert(None, value)
    return dict.fromkeys(tasks, one)


def _where(task_id: Any) -> str:
    return "" if task_id is None else f" for task {task_id!r}"


def _policy(task_id: Any, value: Any) -> RestartPolicy:
    try:
        return RestartPolicy(value)
    except (ValueError, TypeError):
        raise ValueError(
            f"unknown restart policy {value!r}{_where(task_id)}; use 'no', 'on-failure' or 'always'"
        ) from None


def _attempts(task_id: Any, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"max_restart_attempts{_where(task_id)} must be an int >= 0, got {value!r}"
        )
    return value


def _base(task_id: Any, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ValueError(
            f"restart_backoff_base{_where(task_id)} must be a number >= 0, got {value!r}"
        )
    return float(value)


def _timeout(task_id: Any, value: Any) -> float | None:
    if value is None or value == math.inf:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"timeout{_where(task_id)} must be > 0 seconds or None, got {value!r}")
    return float(value)
