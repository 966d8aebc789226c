"""Running a plain function in a ``concurrent.futures`` pool from the event loop."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Hashable
from concurrent.futures import Executor
from typing import Any

__all__ = ["call_plain", "in_pool"]


def call_plain(body: Callable[[Any, Any], Any], task_id: Hashable, spec: Any) -> Any:
    """Call ``body`` in a worker thread or process; refuse an awaitable it returns."""
    result = body(task_id, spec)
    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if close is not None:
            close()  # a coroutine never awaited: no "never awaited" warning
        raise TypeError(
            f"the task executor returned an awaitable ({type(result).__name__}) on a "
            "thread or process backend, which runs plain functions: run 'async def' "
            "bodies on the default inline backend"
        )
    return result


async def in_pool(
    pool: Executor, body: Callable[[Any, Any], Any], task_id: Hashable, spec: Any
) -> Any:
    """Await ``body(task_id, spec)`` run in ``pool``.

    Cancelling the awaiting task cancels the pool's future: an attempt not
    started yet never starts; one that is running runs to its end in the
    background and its output is dropped.
    """
    future = pool.submit(call_plain, body, task_id, spec)
    return await asyncio.wrap_future(future)
