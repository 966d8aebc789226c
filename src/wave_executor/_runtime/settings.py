"""What one DAG run needs to know, resolved once from ``WaveConfig`` and arguments."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from wave_executor._core.breaker import BreakerSettings
from wave_executor._core.config import WaveConfig
from wave_executor._core.graph import Graph
from wave_executor._core.retry import RetryPolicy
from wave_executor._core.window import Window

__all__ = [
    "GroupSpec",
    "KeyFunction",
    "Groups",
    "RunSettings",
    "group_budget",
    "resolve_groups",
    "run_settings",
]

#: ``groups=`` of ``execute()``: task id -> group name, or a function of (task id, spec).
GroupSpec: TypeAlias = Mapping[Any, Hashable] | Callable[[Any, Any], Hashable | None]
KeyFunction: TypeAlias = Callable[[Any, Any], Hashable | None]


@dataclass(frozen=True, slots=True)
class RunSettings:
    cap: int
    min_parallel: int
    adaptive: bool
    attempt_timeout: float
    total_timeout: float
    retry: RetryPolicy
    stop_on_first_error: bool
    allow_partial_success: bool
    min_success_rate: float
    inject_dep_outputs: bool
    breakers: BreakerSettings | None
    overload_errors: tuple[type[BaseException], ...] = ()
    #: Per-task retry policies, by task index.
    retry_overrides: Mapping[int, RetryPolicy] = field(default_factory=dict)
    #: Per-task attempt timeouts in seconds (``math.inf``: none), by task index.
    timeout_overrides: Mapping[int, float] = field(default_factory=dict)

    #: What tasks cut off by ``total_timeout`` say (level mode names a wave's budget).
    deadline_message: str | None = None

    def deadline_error(self) -> str:
        if self.deadline_message is not None:
            return self.deadline_message
        return f"total execution timeout ({self.total_timeout:g}s) reached"

    def retry_for(self, i: int) -> RetryPolicy:
        return self.retry_overrides.get(i, self.retry) if self.retry_overrides else self.retry

    def global_window(self) -> Window:
        if self.adaptive:
            return Window.adaptive(self.cap, self.min_parallel)
        return Window(self.cap)


@dataclass(frozen=True, slots=True)
class Groups:
    """Tasks split into groups, each with its own window. Group 0 holds the
    tasks that name no group; it has no limit of its own."""

    group_of: list[int]
    names: list[Hashable | None]
    windows: list[Window]


def run_settings(
    cfg: WaveConfig,
    graph: Graph,
    inject_dep_outputs: bool,
    retry_policies: Mapping[Any, RetryPolicy] | None,
    timeouts: Mapping[Any, float | None] | None = None,
) -> RunSettings:
    breakers = None
    if cfg.circuit_breaker_enabled:
        breakers = BreakerSettings(
            cfg.circuit_failure_threshold, cfg.circuit_success_threshold,
            cfg.circuit_recovery_timeout,
        )  # fmt: skip
    overrides: dict[int, RetryPolicy] = {}
    for task_id, policy in (retry_policies or {}).items():
        index = _index_of(graph, task_id, "a retry policy")
        if not isinstance(policy, RetryPolicy):
            raise TypeError(f"retry policy of {task_id!r} must be a RetryPolicy, got {policy!r}")
        overrides[index] = policy
    return RunSettings(
        cap=cfg.max_parallel_per_wave,
        min_parallel=cfg.min_parallel,
        adaptive=cfg.adaptive_batch_window,
        attempt_timeout=cfg.default_task_timeout,
        total_timeout=cfg.total_execution_timeout,
        retry=cfg.effective_retry_policy(),
        stop_on_first_error=cfg.stop_on_first_error,
        allow_partial_success=cfg.allow_partial_success,
        min_success_rate=cfg.min_success_rate,
        inject_dep_outputs=inject_dep_outputs,
        breakers=breakers,
        overload_errors=cfg.overload_errors,
        retry_overrides=overrides,
        timeout_overrides=_timeouts(graph, timeouts),
    )


def _timeouts(graph: Graph, timeouts: Mapping[Any, float | None] | None) -> dict[int, float]:
    out: dict[int, float] = {}
    for task_id, limit in (timeouts or {}).items():
        index = _index_of(graph, task_id, "a timeout")
        if limit is None:
            limit = math.inf
        if isinstance(limit, bool) or not isinstance(limit, int | float) or not limit > 0:
            raise ValueError(f"the timeout of {task_id!r} must be > 0 or None, got {limit!r}")
        out[index] = float(limit)
    return out


def resolve_groups(
    cfg: WaveConfig,
    graph: Graph,
    specs: Mapping[Any, Any],
    groups: GroupSpec | None,
    adaptive: bool | None = None,
) -> Groups | None:
    """Assign every task its group and build the group windows (None: no groups)."""
    if groups is None:
        return None
    names: list[Hashable | None] = [None]
    number: dict[Hashable, int] = {}
    group_of = [0] * len(graph)
    if callable(groups):
        for i, task_id in enumerate(graph.ids):
            group_of[i] = _number(task_id, groups(task_id, specs[task_id]), number, names)
    else:
        for task_id, name in groups.items():
            group_of[_index_of(graph, task_id, "a group")] = _number(task_id, name, number, names)
    if adaptive is None:
        adaptive = cfg.adaptive_group_windows
    windows = [Window(len(graph) + 1)]  # group 0: no limit beyond the global window
    for name in names[1:]:
        budget = group_budget(cfg, name)
        windows.append(Window.adaptive(budget, 1) if adaptive else Window(budget))
    return Groups(group_of, names, windows)


def group_budget(cfg: WaveConfig, name: Hashable) -> int:
    """How many tasks of group ``name`` may run at once (0.3.0 calls groups
    "specialists": ``specialist_budgets`` and ``default_specialist_budget``)."""
    budgets: Mapping[Any, int] = cfg.specialist_budgets
    budget = budgets.get(name, cfg.default_specialist_budget)
    if isinstance(budget, bool) or not isinstance(budget, numbers.Integral) or budget < 1:
        # WaveConfig.check() refuses these; this catches a mapping changed in place since
        raise ValueError(f"the budget of group {name!r} must be an integer >= 1, got {budget!r}")
    return budget


def _index_of(graph: Graph, task_id: Any, what: str) -> int:
    index = graph.index.get(task_id)
    if index is None:
        raise ValueError(f"{what} is given for task {task_id!r}, which is not defined in tasks")
    return index


def _number(
    task_id: Any, name: Hashable | None, number: dict[Hashable, int], names: list[Hashable | None]
) -> int:
    if name is None:
        return 0
    if not isinstance(name, Hashable):
        raise TypeError(f"the group of task {task_id!r} must be a hashable name, got {name!r}")
    g = number.get(name)
    if g is None:
        g = number[name] = len(names)
        names.append(name)
    return g
