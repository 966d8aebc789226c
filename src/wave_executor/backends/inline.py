"""The inline backend: bodies are coroutine functions awaited in the event loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any

__all__ = ["InlineBackend"]


class InlineBackend:
    """Today's behaviour and the default: ``body(task_id, spec)`` is called in the loop
    and what it returns is awaited.

    A timeout or a stop cancels the body at its next ``await``. A plain
    function that returns something not awaitable fails the task (not
    retried); run such functions with ``ThreadBackend`` or ``ProcessBackend``.
    The engine calls the body itself for this backend: choosing it costs
    nothing per task.
    """

    __slots__ = ()

    def call(self, body: Callable[[Any, Any], Any], task_id: Hashable, spec: Any) -> Awaitable[Any]:
        result: Awaitable[Any] = body(task_id, spec)
        return result

    def __repr__(self) -> str:
        return "InlineBackend()"
