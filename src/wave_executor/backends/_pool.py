"""Running a plain function in a ``concurrent.futures`` pool from the event loop."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import Executor
from typing import Any

from wave_executor._runtime import observe

__all__ = ["PoolBackend", "call_plain", "in_pool", "in_thread"]


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


async def in_thread(
    pool: Executor, body: Callable[[Any, Any], Any], task_id: Hashable, spec: Any
) -> Any:
    """``in_pool`` for a thread pool: the body runs in a copy of the caller's context
    (its context variables, a current trace span), as with ``asyncio.to_thread``."""
    context = contextvars.copy_context()
    future = pool.submit(context.run, call_plain, body, task_id, spec)
    return await asyncio.wrap_future(future)


class PoolBackend:
    """A backend over a ``concurrent.futures`` pool, made on first use.

    Subclasses say how to make the pool (``_new_pool``); the pool is shared
    by every run that uses the backend until ``close()``.
    """

    #: Whether the pool's workers are other processes, which get the trace context
    #: as a carrier (``observe.Observer.carry``) rather than a copy of the context.
    _processes = False

    def __init__(self) -> None:
        self._pool: Executor | None = None
        self._lock = threading.Lock()

    def _new_pool(self) -> Executor:
        raise NotImplementedError

    def call(self, body: Callable[[Any, Any], Any], task_id: Hashable, spec: Any) -> Awaitable[Any]:
        pool = self._pool
        if pool is None:
            pool = self._start()
        if not self._processes:
            return in_thread(pool, body, task_id, spec)
        observer = observe.current
        if observer is not None:
            body = observer.carry(body)
        return in_pool(pool, body, task_id, spec)

    def _start(self) -> Executor:
        with self._lock:
            if self._pool is None:
                self._pool = self._new_pool()
            return self._pool

    def close(self, wait: bool = True) -> None:
        """Shut the pool down; attempts not started are dropped. A later call starts a new one."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)

    def __exit__(self, *exc: object) -> None:
        self.close()
