from __future__ import annotations

import math

import pytest

from wave_executor import CircuitBreaker, CircuitState, RetryPolicy, WaveConfig


def test_default_delays_are_0_3_0s_schedule() -> None:
    policy = WaveConfig().effective_retry_policy()
    assert [policy.delay(k) for k in range(1, 8)] == [1, 2, 4, 8, 16, 32, 32]


def test_factor_zero_means_no_delay() -> None:
    policy = RetryPolicy(backoff_factor=0)
    assert [policy.delay(k) for k in (1, 2, 3)] == [0, 0, 0]


def test_factor_below_one_never_shrinks() -> None:
    policy = RetryPolicy(backoff_factor=0.5, base_delay=2.0)
    assert [policy.delay(k) for k in (1, 2, 3)] == [2.0, 2.0, 2.0]


def test_base_delay_and_cap() -> None:
    policy = RetryPolicy(base_delay=0.1, backoff_factor=3.0, max_delay=1.0)
    assert [round(policy.delay(k), 6) for k in (1, 2, 3, 4)] == [0.1, 0.3, 0.9, 1.0]


def test_huge_retry_numbers_do_not_overflow() -> None:
    assert RetryPolicy().delay(10_000) == 32.0


@pytest.mark.parametrize("u", [0.0, 0.3, 0.999])
def test_jitter_only_adds_and_stays_under_the_cap(u: float) -> None:
    policy = RetryPolicy(jitter=0.5, max_delay=100.0)
    assert policy.delay(3) <= policy.delay(3, u) <= policy.delay(3) * 1.5
    assert RetryPolicy(jitter=1.0, max_delay=4.0).delay(3, u) <= 4.0


def test_timeouts_are_retried_only_when_asked() -> None:
    assert not RetryPolicy().should_retry(1, timed_out=True)
    assert RetryPolicy(retry_timeouts=True).should_retry(1, timed_out=True)
    assert RetryPolicy(max_retries=2).should_retry(2, timed_out=False)
    assert not RetryPolicy(max_retries=2).should_retry(3, timed_out=False)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_retries": -1}, {"backoff_factor": -1.0}, {"max_delay": math.nan}, {"jitter": -0.1}],
)
def test_bad_policies_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_breaker_lifecycle_on_explicit_time() -> None:
    b = CircuitBreaker("svc", failure_threshold=3, success_threshold=2, recovery_timeout=10.0)
    for t in (0.0, 1.0):
        b.record_failure(now=t)
    assert b.state is CircuitState.CLOSED
    b.record_failure(now=2.0)
    assert b.state == CircuitState.OPEN  # type: ignore[comparison-overlap]
    assert not b.allow_request(now=11.9)
    assert b.retry_after(now=11.0) == pytest.approx(1.0)
    assert b.allow_request(now=12.0)  # the probe
    assert b.state is CircuitState.HALF_OPEN
    assert not b.allow_request(now=12.1)  # one probe at a time
    b.record_success(now=12.2)
    assert b.state is CircuitState.HALF_OPEN
    assert b.allow_request(now=12.3)
    b.record_success(now=12.4)
    assert b.state is CircuitState.CLOSED
    assert b.to_dict(now=13.0)["last_failure_age_s"] == 11.0


def test_a_failed_probe_reopens_the_circuit() -> None:
    b = CircuitBreaker("svc", 1, 1, 5.0)
    b.record_failure(now=0.0)
    assert b.allow_request(now=5.0)
    b.record_failure(now=5.5)
    assert b.state is CircuitState.OPEN
    assert not b.allow_request(now=10.0)
    assert b.allow_request(now=10.5)


def test_success_in_closed_state_resets_the_failure_streak() -> None:
    b = CircuitBreaker("svc", 2, 1, 5.0)
    b.record_failure(now=0.0)
    b.record_success(now=0.1)
    b.record_failure(now=0.2)
    assert b.state is CircuitState.CLOSED


def test_breaker_to_dict_keys_match_0_3_0() -> None:
    keys = set(CircuitBreaker("k", 5, 2, 60.0).to_dict())
    assert keys == {"key", "state", "failure_count", "success_count", "last_failure_age_s"}


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="max_parallel_per_wave"):
        WaveConfig(max_parallel_per_wave=0)
    with pytest.raises(ValueError, match="default_task_timeout"):
        WaveConfig(default_task_timeout=0)
    with pytest.raises(ValueError, match="min_success_rate"):
        WaveConfig(min_success_rate=1.5)
    assert WaveConfig(total_execution_timeout=math.inf).total_execution_timeout == math.inf
