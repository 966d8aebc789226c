"""Trigger rules: when a task runs, given what its upstreams did.

Airflow's names, with these meanings for our statuses. An upstream is
*succeeded* (``success``), *failed* (``failed``, ``timeout``,
``cancelled``, or ``skipped`` because something above it failed) or
*skipped* (``skipped`` because its own rule was not met); *done* is any of
these. ``decide`` looks at the counts so far and says: run now, skip now
(the rule can no longer be met), or wait. A rule is decided as soon as the
counts settle it, so the ``one_*`` rules fire at the first upstream that
meets them and ``all_success`` skips at the first failure. A task without
upstreams always runs. Pure: no asyncio.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum, StrEnum
from typing import Any

__all__ = [
    "CLEANUP_RULES",
    "Decision",
    "SkipReason",
    "TriggerRule",
    "decide",
    "parse_rule",
    "parse_rules",
    "rule_skip_error",
    "skip_reason",
]


class TriggerRule(StrEnum):
    """When a task runs; ``ALL_SUCCESS`` is the default (0.3.0's only rule)."""

    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ALL_SKIPPED = "all_skipped"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"
    NONE_FAILED = "none_failed"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    NONE_SKIPPED = "none_skipped"
    ALWAYS = "always"


class SkipReason(StrEnum):
    """Why a task was skipped (``TaskResult.skip_reason``)."""

    UPSTREAM_FAILED = "upstream_failed"  # counts as a failure of the run
    RULE_NOT_MET = "rule_not_met"  # not a failure: the task was not needed


class Decision(IntEnum):
    WAIT = 0
    RUN = 1
    SKIP = 2


#: Rules whose tasks still run after ``stop_on_first_error`` stopped the run.
CLEANUP_RULES: frozenset[TriggerRule] = frozenset({TriggerRule.ALL_DONE, TriggerRule.ALWAYS})

#: Rules that a failed upstream can defeat: their skip is "upstream failed".
_FAILURE_SENSITIVE: frozenset[TriggerRule] = frozenset(
    {
        TriggerRule.ALL_SUCCESS,
        TriggerRule.ONE_SUCCESS,
        TriggerRule.NONE_FAILED,
        TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
    }
)

_R = TriggerRule
_D = Decision


def decide(rule: TriggerRule, total: int, succeeded: int, failed: int, skipped: int) -> Decision:
    """Run, skip or wait, for a task with ``total`` upstreams of which so many ended so."""
    if rule is _R.ALWAYS or total == 0:
        return _D.RUN
    done = succeeded + failed + skipped
    all_done = done == total
    if rule is _R.ALL_SUCCESS:
        if failed or skipped:
            return _D.SKIP
        return _D.RUN if all_done else _D.WAIT
    if rule is _R.ALL_FAILED:
        if succeeded or skipped:
            return _D.SKIP
        return _D.RUN if all_done else _D.WAIT
    if rule is _R.ALL_DONE:
        return _D.RUN if all_done else _D.WAIT
    if rule is _R.ALL_SKIPPED:
        if succeeded or failed:
            return _D.SKIP
        return _D.RUN if all_done else _D.WAIT
    if rule is _R.ONE_SUCCESS:
        if succeeded:
            return _D.RUN
        return _D.SKIP if all_done else _D.WAIT
    if rule is _R.ONE_FAILED:
        if failed:
            return _D.RUN
        return _D.SKIP if all_done else _D.WAIT
    if rule is _R.ONE_DONE:
        if succeeded or failed:
            return _D.RUN
        return _D.SKIP if all_done else _D.WAIT
    if rule is _R.NONE_FAILED:
        if failed:
            return _D.SKIP
        return _D.RUN if all_done else _D.WAIT
    if rule is _R.NONE_FAILED_MIN_ONE_SUCCESS:
        if failed:
            return _D.SKIP
        if not all_done:
            return _D.WAIT
        return _D.RUN if succeeded else _D.SKIP
    # NONE_SKIPPED
    if skipped:
        return _D.SKIP
    return _D.RUN if all_done else _D.WAIT


def skip_reason(rule: TriggerRule, failed: int) -> SkipReason:
    """Why a task whose rule said SKIP is skipped: a failure above it, or its rule."""
    if failed and rule in _FAILURE_SENSITIVE:
        return SkipReason.UPSTREAM_FAILED
    return SkipReason.RULE_NOT_MET


def parse_rule(name: object) -> TriggerRule:
    """The rule called ``name``; ``ValueError`` naming the valid ones otherwise."""
    try:
        return TriggerRule(name)  # type: ignore[arg-type]  # any str-like value
    except ValueError:
        valid = ", ".join(r.value for r in TriggerRule)
        raise ValueError(f"unknown trigger rule {name!r}; valid rules: {valid}") from None


def parse_rules(
    rules: Mapping[Any, object] | None, index: Mapping[Any, int]
) -> dict[int, TriggerRule]:
    """Task id -> rule name as task index -> rule, keeping only non-default rules.

    Raises ``ValueError`` for an unknown rule name or a task id not in the graph.
    """
    out: dict[int, TriggerRule] = {}
    if not rules:
        return out
    for task_id, name in rules.items():
        rule = parse_rule(name)
        i = index.get(task_id)
        if i is None:
            raise ValueError(f"trigger_rules names an unknown task: {task_id!r}")
        if rule is not TriggerRule.ALL_SUCCESS:
            out[i] = rule
    return out


def rule_skip_error(rule: TriggerRule, upstreams: Mapping[Any, str]) -> str:
    """The error of a task skipped because its rule can no longer be met."""
    shown = ", ".join(f"{d!r}: {s}" for d, s in upstreams.items())
    return f"skipped: trigger rule {rule.value} not met (upstreams: {shown})"
