"""Adaptive concurrency: the AIMD policy, the semaphore, and the executor feeding it."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from tests.helpers import Probe, Recorder
from wave_executor import AdaptiveSemaphore, DAGExecutor, RetryPolicy, WaveConfig
from wave_executor._core.aimd import AIMDPolicy
from wave_executor._core.overload import is_overload, status_of_error
from wave_executor.testing import OverloadedError, RateLimitedService, run_virtual


def test_additive_increase_needs_a_full_window() -> None:
    p = AIMDPolicy(4, min_limit=1, max_limit=10)
    for _ in range(20):
        p.on_success(in_flight_at_admission=1)  # window mostly idle: no growth
    assert p.limit == 4
    for _ in range(4):
        p.on_success(in_flight_at_admission=4)
    assert p.limit == 5  # one window's worth of successes at the limit: +1


def test_never_above_max_or_below_min() -> None:
    p = AIMDPolicy(3, min_limit=2, max_limit=3)
    for _ in range(100):
        p.on_success(3)
    assert p.limit == 3
    for t in range(100):
        p.on_overload(admitted_at=float(t), now=float(t) + 0.5, in_flight_at_admission=3)
    assert p.limit == 2


def test_one_decrease_per_round_trip() -> None:
    p = AIMDPolicy(100, max_limit=100)
    assert p.on_overload(admitted_at=0.0, now=1.0, in_flight_at_admission=60) == 59
    # Calls admitted before that decrease are answered already.
    assert p.on_overload(admitted_at=0.5, now=1.1, in_flight_at_admission=80) == 59
    assert p.on_overload(admitted_at=1.0, now=2.0, in_flight_at_admission=59) == 53
    assert p.decreases == 2


def test_fast_convergence_to_the_concurrency_that_worked() -> None:
    p = AIMDPolicy(100, max_limit=100)
    assert p.on_overload(admitted_at=0.0, now=0.001, in_flight_at_admission=21) == 20


def test_probing_beyond_the_known_ceiling_is_slow() -> None:
    p = AIMDPolicy(100, max_limit=100, probe_slowdown=4)
    p.on_overload(0.0, 0.001, in_flight_at_admission=21)  # known good: 20
    assert p.limit == 20
    successes = 0
    while p.limit == 20:
        p.on_success(20)
        successes += 1
    assert successes == 4 * 20


def test_a_refused_probe_goes_back_to_the_known_level_without_a_cut() -> None:
    p = AIMDPolicy(100, max_limit=100, probe_slowdown=2)
    p.on_overload(0.0, 0.001, in_flight_at_admission=21)  # known good: 20
    while p.limit == 20:
        p.on_success(20)
    assert p.limit == 21  # the probe
    # Back to 20, the level that works, not to 18 (0.9 x 21): no capacity left unused.
    assert p.on_overload(1.0, 1.001, in_flight_at_admission=21) == 20
    successes = 0
    while p.limit == 20:
        p.on_success(20)
        successes += 1
    assert successes == 2 * 20  # and probing goes on at the slow pace


def test_a_success_above_the_known_level_raises_it() -> None:
    p = AIMDPolicy(100, max_limit=100, probe_slowdown=2)
    p.on_overload(0.0, 0.001, in_flight_at_admission=21)  # known good: 20
    while p.limit < 22:
        p.on_success(p.limit)  # the probe to 21 worked, with 21 in flight
    assert p.on_overload(1.0, 1.001, in_flight_at_admission=22) == 21


def test_refusals_while_the_window_only_shrinks_keep_the_known_level() -> None:
    """A spell of slots freed late: refused at 20, then at 18 a round trip later."""
    p = AIMDPolicy(100, max_limit=100)
    p.on_overload(0.0, 0.001, in_flight_at_admission=21)  # known good: 20
    assert p.on_overload(1.0, 1.001, in_flight_at_admission=20) == 18
    assert p.on_overload(1.001, 1.002, in_flight_at_admission=18) == 16
    successes = 0
    while p.limit < 20:
        p.on_success(p.limit)
        successes += 1
    # Back to 20 at the normal pace (+1 per window of successes), not 16x slower.
    assert successes == 16 + 17 + 18 + 19
    for _ in range(20 * 16 - 1):
        p.on_success(20)
    assert p.limit == 20  # beyond it, probing is slow again


def test_a_capacity_that_fell_is_learned_once_the_window_grew_again() -> None:
    p = AIMDPolicy(100, max_limit=100)
    p.on_overload(0.0, 0.001, in_flight_at_admission=21)  # known good: 20
    assert p.on_overload(1.0, 1.001, in_flight_at_admission=20) == 18
    while p.limit < 19:
        p.on_success(p.limit)
    # Refused again after growing: the service holds 18 now, and that is learned.
    assert p.on_overload(2.0, 2.001, in_flight_at_admission=19) == 17
    for _ in range(17):
        p.on_success(17)
    assert p.limit == 18  # up to the new level at the normal pace
    for _ in range(18 * 16 - 1):
        p.on_success(18)
    assert p.limit == 18  # beyond it slowly


def test_slow_start_doubles_per_round_trip_up_to_the_configured_limit() -> None:
    p = AIMDPolicy(100, max_limit=100, initial_window=10)
    assert p.limit == 10 and p.slow_start_until == 100
    rounds = []
    while p.slow_start_until:
        width = p.limit
        for _ in range(width):  # one round trip: every call of a full window succeeds
            p.on_success(in_flight_at_admission=width)
        rounds.append(p.limit)
    assert rounds == [20, 40, 80, 100]
    for _ in range(1000):
        p.on_success(100)
    assert p.limit == 100  # at max_limit: stays


def test_slow_start_needs_a_half_full_window() -> None:
    p = AIMDPolicy(100, max_limit=100, initial_window=10)
    for _ in range(50):
        p.on_success(in_flight_at_admission=4)  # under half of 10: an idle window
    assert p.limit == 10
    p.on_success(in_flight_at_admission=5)
    assert p.limit == 11


def test_the_first_overload_ends_slow_start() -> None:
    p = AIMDPolicy(100, max_limit=100, initial_window=10)
    for _ in range(30):
        p.on_success(in_flight_at_admission=p.limit)
    assert p.limit == 40
    assert p.on_overload(admitted_at=0.0, now=0.001, in_flight_at_admission=21) == 20
    assert p.slow_start_until == 0
    for _ in range(20):
        p.on_success(20)
    assert p.limit == 20  # beyond the level known to work: probing, not doubling


def test_slow_start_bounds() -> None:
    assert AIMDPolicy(8, max_limit=100, initial_window=10).slow_start_until == 0
    assert AIMDPolicy(100, min_limit=30, max_limit=100, initial_window=10).limit == 30
    p = AIMDPolicy(100, max_limit=100, initial_window=10)
    assert p.resize(50) == 50 and p.slow_start_until == 0
    with pytest.raises(ValueError, match="initial_window"):
        AIMDPolicy(10, initial_window=0)


def test_resize_by_hand() -> None:
    p = AIMDPolicy(10, max_limit=50)
    assert p.resize(40) == 40 and p.resize(500) == 50 and p.resize(0) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"min_limit": 5, "max_limit": 2}, "min_limit"), ({"backoff_ratio": 1.0}, "backoff_ratio")],
)
def test_bad_policy(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AIMDPolicy(3, **kwargs)


class HTTPError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.response = type("Response", (), {"status_code": status})()


class AioStyle(Exception):
    status = 503


class Throttled(Exception):
    pass


def test_overload_classification() -> None:
    assert is_overload(HTTPError(429)) and is_overload(HTTPError(503))
    assert not is_overload(HTTPError(500))
    assert is_overload(AioStyle()) and status_of_error(AioStyle()) == 503
    assert is_overload(Throttled(), declared=(Throttled,))
    assert not is_overload(Throttled())
    assert is_overload(ValueError(), timed_out=True)
    assert is_overload(OverloadedError())


async def drive(sem: AdaptiveSemaphore, service: RateLimitedService, calls: int) -> None:
    """Every call must succeed: retry (at once) on overload."""

    async def one(k: int) -> None:
        while True:
            try:
                async with sem.call():
                    await service.call(k)
                return
            except OverloadedError:
                continue

    await asyncio.gather(*(one(k) for k in range(calls)))


@pytest.mark.parametrize("adaptive", [True, False])
def test_goodput_against_a_rate_limited_service(adaptive: bool) -> None:
    """The goodput benchmark's setting, on the virtual clock: C=20, 10 ms, refusal after 1 ms."""

    async def main() -> tuple[RateLimitedService, AdaptiveSemaphore]:
        service = RateLimitedService(capacity=20, service_time=0.010, reject_after=0.001)
        sem = AdaptiveSemaphore(100, max_val=100, adaptive=adaptive)
        await drive(sem, service, 2000)
        return service, sem

    (service, sem), elapsed = run_virtual(main())
    ideal = 2000 * 0.010 / 20  # seconds at exactly C in flight
    assert service.served == 2000
    if adaptive:
        # Slow start: no burst of 100 against a service that holds 20.
        assert ideal / elapsed >= 0.97
        assert service.refused <= 3 * 2000 / 100
        stats = sem.statistics()
        assert stats.successes == 2000 and stats.overloads == service.refused
        assert sem.limit <= 21
    else:
        assert service.refused > 2000  # the fixed window of 100 hammers it


def test_dag_runs_slow_start_against_a_rate_limited_service() -> None:
    """The same service and targets with 2,000 tasks of one run, cap 100, adaptive."""

    async def main() -> RateLimitedService:
        service = RateLimitedService(capacity=20, service_time=0.010, reject_after=0.001)

        async def call(task_id: int, spec: Any) -> Any:
            return await service.call(task_id)

        config = WaveConfig(
            max_parallel_per_wave=100,
            retry_policy=RetryPolicy(max_retries=10_000, backoff_factor=0),
            circuit_breaker_enabled=False,
        )
        result = await DAGExecutor(config).execute(dict.fromkeys(range(2000)), {}, call)
        assert result.total_successful == 2000
        return service

    service, elapsed = run_virtual(main())
    assert 2000 * 0.010 / 20 / elapsed >= 0.97
    assert service.refused <= 3 * 2000 / 100
    assert service.peak == 20


async def drive_dag(service: RateLimitedService, calls: int) -> None:
    """The same calls as tasks of one DAG run, cap 100, adaptive, retried at once."""

    async def call(task_id: int, spec: Any) -> Any:
        return await service.call(task_id)

    config = WaveConfig(
        max_parallel_per_wave=100,
        retry_policy=RetryPolicy(max_retries=100_000, backoff_factor=0),
        circuit_breaker_enabled=False,
    )
    result = await DAGExecutor(config).execute(dict.fromkeys(range(calls)), {}, call)
    assert result.total_successful == calls


@pytest.mark.parametrize("capacity", [10, 50])
@pytest.mark.parametrize("runner", ["semaphore", "dag"])
def test_goodput_targets_hold_at_other_capacities(capacity: int, runner: str) -> None:
    """The targets are not tuned for C=20: C=10 and C=50, 200 round trips' worth of calls
    (at C=50, slow start from 10 costs about 3 % of a run of 100 round trips)."""
    calls = 200 * capacity

    async def main() -> RateLimitedService:
        service = RateLimitedService(capacity=capacity, service_time=0.010, reject_after=0.001)
        if runner == "dag":
            await drive_dag(service, calls)
        else:
            await drive(AdaptiveSemaphore(100, max_val=100), service, calls)
        return service

    service, elapsed = run_virtual(main())
    assert service.served == calls and service.peak == capacity
    assert calls * 0.010 / capacity / elapsed >= 0.97
    assert service.refused <= 3 * calls / 100


class LateRelease(RateLimitedService):
    """Frees a slot ``lag`` seconds after answering, for calls that end in ``spell``.

    The client sees its call done and sends the next one, which the service
    still counts as over capacity: refusals below the capacity the window had
    been using, as from a proxy that releases its connection count late.
    """

    def __init__(self, spell: tuple[float, float], lag: float) -> None:
        super().__init__(capacity=20, service_time=0.010, reject_after=0.001)
        self.spell, self.lag = spell, lag

    async def call(self, payload: Any = None) -> Any:
        if self.in_service >= self.capacity:
            self.refused += 1
            await asyncio.sleep(self.reject_after)
            raise OverloadedError("over capacity")
        self.in_service += 1
        self.peak = max(self.peak, self.in_service)
        await asyncio.sleep(self.service_time)
        loop = asyncio.get_running_loop()
        if self.spell[0] <= loop.time() < self.spell[1]:
            loop.call_later(self.lag, self._free)
        else:
            self._free()
        self.served += 1
        return payload

    def _free(self) -> None:
        self.in_service -= 1


@pytest.mark.parametrize("runner", ["semaphore", "dag"])
def test_slots_freed_late_for_a_moment_do_not_lower_the_window_for_long(runner: str) -> None:
    """2 ms of slots freed 3 ms late, mid-run: a burst of refusals at or below 20.

    The window falls back and regrows at the normal pace to 20, the level that
    worked; taking the refusals as the new ceiling (and probing back above
    them 16x slower) cost about 10 % of the goodput.
    """

    async def main() -> LateRelease:
        service = LateRelease(spell=(0.3, 0.302), lag=0.003)
        if runner == "dag":
            await drive_dag(service, 2000)
        else:
            await drive(AdaptiveSemaphore(100, max_val=100), service, 2000)
        return service

    service, elapsed = run_virtual(main())
    assert service.served == 2000
    assert 2000 * 0.010 / 20 / elapsed >= 0.95


def test_a_semaphore_without_slow_start_opens_at_initial() -> None:
    assert AdaptiveSemaphore(100, max_val=100, slow_start_from=None).limit == 100
    assert AdaptiveSemaphore(100, max_val=100).limit == 10
    assert AdaptiveSemaphore(100, max_val=100, adaptive=False).limit == 100


async def test_semaphore_feedback_and_statistics() -> None:
    sem = AdaptiveSemaphore(10, max_val=10)
    async with sem:
        sem.record_overload()
    assert sem.limit < 10
    before = sem.limit
    sem.set_limit(8)
    assert sem.limit == 8 != before
    with pytest.raises(Throttled):
        async with sem.call():
            raise Throttled
    assert sem.statistics().failures == 1  # not declared as overload: the window holds
    sem.overload_errors = (Throttled,)
    with pytest.raises(Throttled):
        async with sem.call():
            raise Throttled
    assert sem.limit < 8 and sem.active == 0


async def test_non_adaptive_semaphore_ignores_feedback() -> None:
    sem = AdaptiveSemaphore(5, adaptive=False)
    async with sem:
        sem.record_overload()
    assert sem.limit == 5


async def test_try_acquire() -> None:
    sem = AdaptiveSemaphore(1)
    admission = sem.try_acquire()
    assert admission is not None and admission.in_flight == 1
    assert sem.try_acquire() is None
    sem.release_nowait()


def test_executor_window_shrinks_on_overload_and_recovers_goodput() -> None:
    rec = Recorder()

    async def main() -> tuple[Any, RateLimitedService]:
        service = RateLimitedService(capacity=5, service_time=0.010)

        async def call(task_id: int, spec: Any) -> Any:
            return await service.call(task_id)

        policy = RetryPolicy(max_retries=50, backoff_factor=0)
        ex = DAGExecutor(WaveConfig(max_parallel_per_wave=40, retry_policy=policy))
        ex.on_event(rec)
        result = await ex.execute(dict.fromkeys(range(400)), {}, call)
        return result, service

    (result, service), elapsed = run_virtual(main())
    assert result.total_successful == 400
    assert service.refused <= 0.05 * 400 + 40  # the first burst, then rare
    changes = rec.of("CONCURRENCY_CHANGED")
    assert changes and changes[0]["limit"] <= 5
    assert elapsed <= 1.3 * (400 * 0.010 / 5)


def test_without_overload_the_adaptive_window_keeps_the_full_cap() -> None:
    probe = Probe(0.005)

    async def main(adaptive: bool) -> float:
        cfg = WaveConfig(max_parallel_per_wave=50, adaptive_batch_window=adaptive)
        await DAGExecutor(cfg).execute(dict.fromkeys(range(10_000)), {}, probe)
        return asyncio.get_running_loop().time()

    _, with_window = run_virtual(main(True))
    _, fixed = run_virtual(main(False))
    assert probe.peak == 50
    assert fixed == pytest.approx(10_000 / 50 * 0.005)
    # Slow start (10 -> 20 -> 40 -> 50) costs three round trips at part width, once.
    assert fixed < with_window <= fixed + 3 * 0.005 + 1e-9


def test_ordinary_failures_do_not_shrink_the_window() -> None:
    probe = Probe(0.01, fail_odd=True)

    async def main() -> Any:
        cfg = WaveConfig(max_parallel_per_wave=8, max_retries=0, circuit_breaker_enabled=False)
        return await DAGExecutor(cfg).execute(dict.fromkeys(range(200)), {}, probe)

    result, elapsed = run_virtual(main())
    assert result.total_failed == 100 and probe.peak == 8
    assert elapsed == pytest.approx(200 / 8 * 0.01)


async def test_specialist_semaphore_learns_from_the_run() -> None:
    sem = AdaptiveSemaphore(8, min_val=1, max_val=8)

    async def body(task_id: int, spec: Any) -> None:
        await asyncio.sleep(0.001)
        if task_id == 3:
            raise HTTPError(429)

    cfg = WaveConfig(max_retries=0, circuit_breaker_enabled=False)
    await DAGExecutor(cfg).execute(dict.fromkeys(range(10)), {}, body, specialist_semaphore=sem)
    stats = sem.statistics()
    assert stats.overloads == 1 and stats.successes == 9 and sem.limit < 8


async def test_concurrency_changed_is_sent_only_when_the_limit_changes() -> None:
    """Forty attempts admitted together all hit an overload; the window shrinks once
    (the others were admitted before that decrease), so one event, not forty."""
    gate = asyncio.Event()

    async def overloaded(task_id: Any, spec: Any) -> None:
        await gate.wait()
        raise OverloadedError("busy")

    async def release() -> None:
        await asyncio.sleep(0.05)
        gate.set()

    rec = Recorder()
    executor = DAGExecutor(
        WaveConfig(max_parallel_per_wave=40, retry_policy=RetryPolicy(max_retries=0))
    )
    executor.on_event(rec)
    opener = asyncio.create_task(release())
    result = await executor.execute({i: {} for i in range(40)}, None, overloaded)
    await opener
    assert result.total_failed == 40
    changes = rec.of("CONCURRENCY_CHANGED")
    limits = [40] + [e["limit"] for e in changes]
    assert 1 <= len(changes) < 40
    assert all(a != b for a, b in itertools.pairwise(limits))
