"""The pure trigger-rule core: decisions on counts, names, skip kinds."""

from __future__ import annotations

import pytest

from wave_executor._core.triggers import (
    Decision,
    SkipReason,
    TriggerRule,
    decide,
    parse_rules,
    skip_reason,
)


def test_there_are_the_eleven_airflow_rules() -> None:
    assert len(TriggerRule) == 11
    assert TriggerRule("none_failed_min_one_success") is TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS


def test_a_task_without_upstreams_runs_whatever_its_rule() -> None:
    assert all(decide(rule, 0, 0, 0, 0) is Decision.RUN for rule in TriggerRule)


def test_one_rules_fire_while_other_upstreams_are_still_running() -> None:
    assert decide(TriggerRule.ONE_SUCCESS, 3, 1, 0, 0) is Decision.RUN
    assert decide(TriggerRule.ONE_FAILED, 3, 0, 1, 0) is Decision.RUN
    assert decide(TriggerRule.ONE_DONE, 3, 0, 0, 1) is Decision.WAIT
    assert decide(TriggerRule.ALL_DONE, 3, 1, 1, 0) is Decision.WAIT


def test_rules_that_can_no_longer_be_met_skip_at_once() -> None:
    assert decide(TriggerRule.ALL_SUCCESS, 3, 0, 1, 0) is Decision.SKIP
    assert decide(TriggerRule.ALL_FAILED, 3, 1, 0, 0) is Decision.SKIP
    assert decide(TriggerRule.NONE_SKIPPED, 3, 0, 0, 1) is Decision.SKIP
    assert decide(TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS, 2, 0, 0, 2) is Decision.SKIP


def test_a_failure_makes_the_skip_upstream_failed_only_for_rules_that_want_successes() -> None:
    assert skip_reason(TriggerRule.ALL_SUCCESS, 1) is SkipReason.UPSTREAM_FAILED
    assert skip_reason(TriggerRule.ALL_SUCCESS, 0) is SkipReason.RULE_NOT_MET
    assert skip_reason(TriggerRule.ALL_SKIPPED, 1) is SkipReason.RULE_NOT_MET


def test_parse_rules_keeps_only_the_non_default_rules_and_rejects_unknown_ones() -> None:
    index = {"a": 0, "b": 1}
    assert parse_rules({"a": "all_success", "b": "always"}, index) == {1: TriggerRule.ALWAYS}
    with pytest.raises(ValueError, match="unknown trigger rule"):
        parse_rules({"a": "ALL_DONE"}, index)
    with pytest.raises(ValueError, match="unknown task"):
        parse_rules({"c": "all_done"}, index)
