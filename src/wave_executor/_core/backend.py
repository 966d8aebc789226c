"""What a backend is: where one attempt of one task body runs, and how it stops.

The scheduler stays in the event loop whatever the backend: it decides what
runs when, enforces timeouts, retries and breakers, and records outcomes. A
backend only answers "run this attempt of ``body(task_id, spec)`` and give
me an awaitable of its output".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Protocol, runtime_checkable

from wave_executor._core.upstream import DEP_OUTPUTS

__all__ = ["Backend", "InlineBackend", "RemoteOutput", "remote_dep_outputs"]


@runtime_checkable
class Backend(Protocol):
    """Runs attempts of task bodies somewhere: the loop, a thread, a process, a cluster.

    ``call(body, task_id, spec)`` starts one attempt and returns an
    awaitable of its output; awaiting it raises what the body raised. It is
    called in the event loop and must not block.

    Cancellation: when the attempt's timeout passes, or the run stops, the
    task awaiting the awaitable is cancelled. The backend stops the attempt
    as far as it can when that happens (a coroutine in the loop is
    interrupted; a thread or a process cannot be, and its body runs to its
    end in the background, its output dropped; a Dask task is cancelled on
    the cluster, and a body already running there runs to its end).
    """

    def call(
        self, body: Callable[[Any, Any], Any], task_id: Hashable, spec: Any
    ) -> Awaitable[Any]: ...


class RemoteOutput:
    """An output that stayed where it was made (on a Dask cluster); ``fetch()`` brings it here.

    A backend that keeps outputs where they were made returns one of these
    as the task's output. A downstream task on the same backend receives it
    in ``_dep_outputs`` and hands it on by reference; any other backend's
    task receives the fetched value instead.
    """

    __slots__ = ()

    async def fetch(self) -> Any:
        raise NotImplementedError


def remote_dep_outputs(spec: Any) -> dict[Any, Any] | None:
    """The ``_dep_outputs`` of ``spec`` if one of them stayed where it was made, else None."""
    if not isinstance(spec, dict):
        return None
    outputs = spec.get(DEP_OUTPUTS)
    if not isinstance(outputs, dict) or not any(
        isinstance(v, RemoteOutput) for v in outputs.values()
    ):
        return None
    return outputs


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
