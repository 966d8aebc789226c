"""``WaveConfig``: every 0.3.0 field with its default, plus a few of our own.

Validated on construction so that a bad value fails where it was written,
not deep inside a run.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache

from wave_executor._core.checks import (
    check_bool,
    check_exception_types,
    check_int,
    check_number,
)
from wave_executor._core.retry import RetryPolicy

__all__ = ["AggregationStrategy", "WaveConfig"]


class AggregationStrategy(Enum):
    """How level mode merges the outputs of one wave (0.3.0 names and values)."""

    SEMANTIC_MERGE = "semantic_merge"
    APPEND = "append"
    DEEP_MERGE = "deep_merge"
    FIRST = "first"
    LAST = "last"


@dataclass
class WaveConfig:
    """Execution settings. The first 21 fields are 0.3.0's, in 0.3.0's order.

    Ours, after them: ``retry_policy`` replaces ``max_retries`` and
    ``retry_backoff_factor`` with a full ``RetryPolicy``; ``overload_errors``
    declares exception types that mean "the service is overloaded" (besides
    HTTP 429/503 and timeouts), which shrink adaptive windows;
    ``adaptive_group_windows`` makes each group's budget an adaptive window
    too (its budget is then the ceiling).

    ``aggregation_strategy`` also accepts a member's value (``"append"``),
    stored as the member; anything else raises ``ValueError`` here.

    Every field is checked here, naming the field and the value: counts
    (``max_parallel_per_wave``, ``min_parallel``, the circuit thresholds, the
    budgets) are integers >= 1 (``max_retries`` >= 0), never floats, bools or
    NaN; durations and rates are numbers; switches are bools. A timeout of
    None means no limit (stored as ``math.inf``), as in 0.3.0.
    """

    max_parallel_per_wave: int = 10
    inter_wave_delay_ms: int = 0
    default_task_timeout: float = 120.0
    per_wave_timeout: float = 300.0
    total_execution_timeout: float = 3600.0
    allow_partial_success: bool = True
    min_success_rate: float = 0.7
    max_retries: int = 3
    retry_backoff_factor: float = 2.0
    aggregation_strategy: AggregationStrategy = AggregationStrategy.SEMANTIC_MERGE
    emit_events: bool = True
    stop_on_first_error: bool = False
    adaptive_batch_window: bool = True
    min_parallel: int = 2
    saturation_threshold: int = 20
    circuit_breaker_enabled: bool = True
    circuit_failure_threshold: int = 5
    circuit_success_threshold: int = 2
    circuit_recovery_timeout: float = 60.0
    specialist_budgets: dict[str, int] = field(default_factory=dict)
    default_specialist_budget: int = 10
    retry_policy: RetryPolicy | None = None
    overload_errors: tuple[type[BaseException], ...] = ()
    adaptive_group_windows: bool = False

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise ``ValueError``/``TypeError`` naming the first bad field. Runs when
        the config is made and again when a run starts (a field may have been
        set since)."""
        for name in _COUNTS:
            check_int(name, getattr(self, name), 1)
        check_int("max_retries", self.max_retries, 0)
        for name in _BOOLS:
            check_bool(name, getattr(self, name))
        check_number("circuit_recovery_timeout", self.circuit_recovery_timeout, at_least=0)
        for name in ("default_task_timeout", "total_execution_timeout", "per_wave_timeout"):
            if getattr(self, name) is None:  # 0.3.0 read None as "no limit"
                setattr(self, name, math.inf)
            check_number(name, getattr(self, name), above=0, hint=" (math.inf for no limit)")
        check_number("min_success_rate", self.min_success_rate, at_least=0, at_most=1)
        check_number("retry_backoff_factor", self.retry_backoff_factor, at_least=0)
        check_number("inter_wave_delay_ms", self.inter_wave_delay_ms, at_least=0, finite=True)
        _check_budgets(self.specialist_budgets)
        if self.retry_policy is not None and not isinstance(self.retry_policy, RetryPolicy):
            raise TypeError(
                f"retry_policy must be a RetryPolicy or None, got {self.retry_policy!r}"
            )
        check_exception_types("overload_errors", self.overload_errors)
        self.aggregation_strategy = _strategy(self.aggregation_strategy)

    def effective_retry_policy(self) -> RetryPolicy:
        """The policy in force: ``retry_policy`` or one built from the 0.3.0 fields."""
        if self.retry_policy is not None:
            return self.retry_policy
        return _legacy_policy(self.max_retries, self.retry_backoff_factor)

    @property
    def has_total_timeout(self) -> bool:
        return not math.isinf(self.total_execution_timeout)


#: Fields that count something: an ``int`` >= 1 (a float, a bool or NaN is refused).
_COUNTS = (
    "max_parallel_per_wave", "min_parallel", "circuit_failure_threshold",
    "circuit_success_threshold", "default_specialist_budget",
)  # fmt: skip
_BOOLS = (
    "allow_partial_success", "emit_events", "stop_on_first_error", "adaptive_batch_window",
    "circuit_breaker_enabled", "adaptive_group_windows",
)  # fmt: skip


def _check_budgets(budgets: object) -> None:
    """Group name -> budget, each an ``int`` >= 1 (a budget below 1 would never run the group)."""
    if not isinstance(budgets, Mapping):
        raise ValueError(
            f"specialist_budgets must be a mapping of group name to budget, got {budgets!r}"
        )
    for name, budget in budgets.items():
        if isinstance(budget, bool) or not isinstance(budget, numbers.Integral) or budget < 1:
            raise ValueError(
                f"specialist_budgets: the budget of group {name!r} must be an integer >= 1, "
                f"got {budget!r}"
            )


def _strategy(value: object) -> AggregationStrategy:
    """``value`` as an ``AggregationStrategy``: a member, or a string equal to a member's value."""
    if isinstance(value, AggregationStrategy):
        return value
    values = [s.value for s in AggregationStrategy]
    if isinstance(value, str) and value in values:
        return AggregationStrategy(value)
    raise ValueError(
        "aggregation_strategy must be an AggregationStrategy or one of its values "
        f"({', '.join(map(repr, values))}), got {value!r}"
    )


@lru_cache(maxsize=64)
def _legacy_policy(max_retries: int, backoff_factor: float) -> RetryPolicy:
    """Policies are immutable, so runs with the same 0.3.0 fields share one."""
    return RetryPolicy(max_retries=max_retries, backoff_factor=backoff_factor)
