"""The per-task options of a flow task, as given to ``@flow.task(...)``.

Each option maps onto one per-task mapping of ``DAGExecutor.execute``:
``retries`` -> ``retry_policies``, ``timeout`` -> ``timeouts``, ``group``
-> ``groups``, ``trigger_rule`` -> ``trigger_rules``, ``cost`` ->
``priority_costs``, ``backend`` -> ``backends``. They are checked when the
task is declared, so a typo fails at import, not in the middle of a run.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from wave_executor._core.retry import RetryPolicy
from wave_executor._core.triggers import parse_rule
from wave_executor.backends.protocol import Backend

__all__ = ["TaskOptions", "TriggerRuleName"]

#: The names of ``wave_executor._core.triggers.TriggerRule`` (docs/trigger-rules.md).
TriggerRuleName: TypeAlias = Literal[
    "all_success",
    "all_failed",
    "all_done",
    "all_skipped",
    "one_success",
    "one_failed",
    "one_done",
    "none_failed",
    "none_failed_min_one_success",
    "none_skipped",
    "always",
]


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """What ``@flow.task(...)`` says about how a task runs; None: the run's default.

    ``retries``: a ``RetryPolicy``, or a number of retries with the backoff
    of the run's config. ``timeout``: seconds per attempt (``math.inf`` for
    none; None keeps the config's ``default_task_timeout``). ``group``: a
    group of ``WaveConfig.specialist_budgets``. ``cost``: a cost estimate
    for critical-path ordering. ``backend``: where a plain ``def`` runs
    (default: the flow's thread backend).
    """

    name: str | None = None
    retries: RetryPolicy | int | None = None
    timeout: float | None = None
    group: Hashable | None = None
    trigger_rule: TriggerRuleName = "all_success"
    cost: float | None = None
    backend: Backend | None = None

    def __post_init__(self) -> None:
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise ValueError(f"a task name must be a non-empty string, got {self.name!r}")
        retries = self.retries
        if (
            retries is not None
            and not isinstance(retries, RetryPolicy)
            and (isinstance(retries, bool) or not isinstance(retries, int) or retries < 0)
        ):
            raise ValueError(f"retries must be a RetryPolicy or an int >= 0, got {retries!r}")
        timeout = self.timeout
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
        ):
            raise ValueError(f"timeout must be > 0 seconds (math.inf: none), got {timeout!r}")
        parse_rule(self.trigger_rule)  # ValueError naming the valid rules
        cost = self.cost
        if cost is not None and (
            isinstance(cost, bool) or not isinstance(cost, int | float) or not 0 <= cost < math.inf
        ):
            raise ValueError(f"cost must be a finite number >= 0, got {cost!r}")
        if self.backend is not None and not callable(getattr(self.backend, "call", None)):
            raise TypeError(f"backend must be a backend (with a call method), got {self.backend!r}")
