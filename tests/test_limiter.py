from __future__ import annotations

import asyncio

import pytest

from wave_executor import AdaptiveSemaphore


async def test_fifo_limit_and_counters() -> None:
    sem = AdaptiveSemaphore(2, adaptive=False)
    order: list[int] = []

    async def user(k: int) -> None:
        async with sem:
            order.append(k)
            assert sem.active <= 2
            await asyncio.sleep(0.001)

    tasks = [asyncio.create_task(user(k)) for k in range(6)]
    await asyncio.sleep(0)
    assert sem.active == 2 and sem.waiting == 4 and sem.limit == 2
    await asyncio.gather(*tasks)
    assert order == list(range(6)) and sem.active == 0 and sem.waiting == 0


async def test_initial_below_min_val_is_honoured() -> None:
    assert AdaptiveSemaphore(1).limit == 1  # 0.3.0 clamped it up to min_val=2


async def test_backlog_does_not_shrink_the_window() -> None:
    sem = AdaptiveSemaphore(4, saturation_threshold=2)
    held = [asyncio.create_task(sem.acquire()) for _ in range(50)]
    await asyncio.sleep(0)
    assert sem.limit == 4 and sem.active == 4 and sem.waiting == 46
    for t in held:
        t.cancel()
    await asyncio.gather(*held, return_exceptions=True)
    for _ in range(4):
        await sem.release()
    assert sem.active == 0


async def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    sem = AdaptiveSemaphore(1)
    await sem.acquire()
    waiter = asyncio.create_task(sem.acquire())
    await asyncio.sleep(0)
    # Release hands the slot to the waiter, and the waiter is cancelled in the same instant.
    await sem.release()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert sem.active == 0
    await asyncio.wait_for(sem.acquire(), 1)
    assert sem.active == 1


async def test_set_limit_admits_waiters_at_once() -> None:
    sem = AdaptiveSemaphore(1)
    await sem.acquire()
    waiters = [asyncio.create_task(sem.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    sem.set_limit(4)
    await asyncio.wait_for(asyncio.gather(*waiters), 1)
    assert sem.active == 4
    with pytest.raises(ValueError, match=">= 1"):
        sem.set_limit(0)


async def test_release_without_acquire_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="released more times"):
        await AdaptiveSemaphore(2).release()


def test_bad_construction() -> None:
    with pytest.raises(ValueError, match="initial"):
        AdaptiveSemaphore(0)
    with pytest.raises(ValueError, match="min_val"):
        AdaptiveSemaphore(2, min_val=5, max_val=3)
