"""Retry policy features in the executor: predicates, deadline, jitter, overrides, history."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from wave_executor import DAGExecutor, RetryPolicy, WaveConfig
from wave_executor.testing import run_virtual


class Transient(Exception):
    pass


class Permanent(Exception):
    pass


def attempts_of(policy: RetryPolicy, errors: list[BaseException]) -> tuple[Any, list[float]]:
    """Run one task whose attempts raise ``errors`` in turn, then succeed."""
    times: list[float] = []

    async def body(task_id: str, spec: Any) -> str:
        times.append(asyncio.get_running_loop().time())
        if len(times) <= len(errors):
            raise errors[len(times) - 1]
        return "ok"

    async def main() -> Any:
        cfg = WaveConfig(retry_policy=policy, circuit_breaker_enabled=False)
        return await DAGExecutor(cfg).execute({"t": 1}, {}, body)

    result, _ = run_virtual(main())
    return result.task_results["t"], times


def test_retry_on_exception_types() -> None:
    policy = RetryPolicy(max_retries=5, base_delay=1, retry_on=(Transient,))
    tr, times = attempts_of(policy, [Transient(), Permanent("no")])
    assert tr.status == "failed" and tr.error == "no" and len(times) == 2


def test_retry_on_predicate() -> None:
    policy = RetryPolicy(max_retries=5, retry_on=lambda exc: "again" in str(exc))
    tr, _ = attempts_of(policy, [Transient("again"), Transient("again")])
    assert tr.status == "success" and tr.retry_count == 2


def test_retry_deadline_bounds_the_whole_affair() -> None:
    policy = RetryPolicy(max_retries=10, base_delay=1, backoff_factor=2, deadline=5.0)
    tr, times = attempts_of(policy, [Transient()] * 10)
    # Retries start at 1, 3, then 7 would pass the 5 s deadline.
    assert times == [0.0, 1.0, 3.0]
    assert tr.status == "failed"


def test_full_jitter_stays_within_the_delay_and_is_seedable() -> None:
    policy = RetryPolicy(max_retries=4, base_delay=1, jitter=1.0, jitter_mode="full", seed=7)
    _, first = attempts_of(policy, [Transient()] * 4)
    _, second = attempts_of(policy, [Transient()] * 4)
    assert first == second  # same seed, same delays
    gaps = [b - a for a, b in itertools.pairwise(first)]
    assert all(0 <= gap <= 2 ** (k) for k, gap in enumerate(gaps))
    assert gaps != [1.0, 2.0, 4.0, 8.0]


def test_proportional_jitter_keeps_the_lower_bounds() -> None:
    policy = RetryPolicy(max_retries=3, base_delay=1, jitter=0.5)
    _, times = attempts_of(policy, [Transient()] * 3)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    for k, gap in enumerate(gaps):
        assert 2**k <= gap <= 1.5 * 2**k


def test_bad_jitter_mode() -> None:
    with pytest.raises(ValueError, match="jitter_mode"):
        RetryPolicy(jitter_mode="wild")  # type: ignore[arg-type]


def test_per_task_retry_overrides() -> None:
    calls: dict[str, int] = {"a": 0, "b": 0}

    async def body(task_id: str, spec: Any) -> None:
        calls[task_id] += 1
        raise Transient(task_id)

    async def main() -> Any:
        cfg = WaveConfig(max_retries=0, circuit_breaker_enabled=False)
        return await DAGExecutor(cfg).execute(
            {"a": 1, "b": 2}, {}, body, retry_policies={"b": RetryPolicy(max_retries=3)}
        )

    run_virtual(main())
    assert calls == {"a": 1, "b": 4}

    async def unknown() -> Any:
        return await DAGExecutor().execute({"a": 1}, {}, body, retry_policies={"zz": RetryPolicy()})

    with pytest.raises(ValueError, match="not defined in tasks"):
        run_virtual(unknown())


def test_per_task_timeouts_override_the_default() -> None:
    async def body(task_id: str, spec: float) -> str:
        await asyncio.sleep(spec)
        return task_id

    async def main() -> Any:
        cfg = WaveConfig(max_retries=0, default_task_timeout=10.0, circuit_breaker_enabled=False)
        return await DAGExecutor(cfg).execute(
            {"short": 3.0, "long": 30.0, "default": 5.0, "none": 50.0},
            {},
            body,
            timeouts={"short": 2.0, "long": 40, "none": None},
        )

    result, elapsed = run_virtual(main())
    statuses = {t: r.status for t, r in result.task_results.items()}
    ok = "success"
    assert statuses == {"short": "timeout", "long": ok, "default": ok, "none": ok}
    assert result.task_results["short"].error == "timeout after 2s"
    assert result.task_results["short"].duration_ms == pytest.approx(2000.0)
    assert elapsed == pytest.approx(50.0)

    for bad in ({"short": 0}, {"short": -1.0}, {"short": "5"}, {"zz": 1.0}):

        async def invalid(bad: Any = bad) -> Any:
            return await DAGExecutor().execute({"short": 1.0}, {}, body, timeouts=bad)

        with pytest.raises(ValueError, match="timeout"):
            run_virtual(invalid())


def test_a_seeded_per_task_policy_is_reproducible_whatever_else_runs() -> None:
    """Each seeded policy draws from its own generator: other tasks' retries do not shift it."""
    seeded = RetryPolicy(max_retries=3, base_delay=1.0, jitter=1.0, seed=11)
    noisy = RetryPolicy(max_retries=3, base_delay=1.0, jitter=1.0)

    def starts_of_b(with_a: bool) -> list[float]:
        starts: list[float] = []

        async def body(task_id: str, spec: Any) -> None:
            if task_id == "b":
                starts.append(asyncio.get_running_loop().time())
            raise Transient(task_id)

        async def main() -> Any:
            tasks = {"a": 1, "b": 2} if with_a else {"b": 2}
            policies = {"b": seeded, **({"a": noisy} if with_a else {})}
            cfg = WaveConfig(circuit_breaker_enabled=False)
            return await DAGExecutor(cfg).execute(tasks, {}, body, retry_policies=policies)

        run_virtual(main())
        return starts

    alone = starts_of_b(with_a=False)
    assert len(alone) == 4
    assert starts_of_b(with_a=True) == alone
    assert starts_of_b(with_a=True) == alone


def test_escalation_keeps_every_attempt() -> None:
    policy = RetryPolicy(max_retries=2, base_delay=0.5)
    tr, _ = attempts_of(policy, [Transient("one"), ValueError("two"), Transient("three")])
    attempts = tr.output["escalation"]["attempts"]
    assert [a["error"] for a in attempts] == ["one", "two", "three"]
    assert [a["error_type"] for a in attempts] == ["Transient", "ValueError", "Transient"]
    assert [a["delay_s"] for a in attempts] == [0.5, 1.0, None]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert "intermittent" in tr.output["escalation"]["root_cause"]
