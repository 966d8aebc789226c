"""What a backend is: where one attempt of one task body runs, and how it stops.

The scheduler stays in the event loop whatever the backend: it decides what
runs when, enforces timeouts, retries and breakers, and records outcomes. A
backend only answers "run this attempt of ``body(task_id, spec)`` and give
me an awaitable of its output".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Protocol, runtime_checkable

from wave_executor._core.upstream import DEP_OUTPUTS

__all__ = [
    "Backend",
    "EarlySubmitter",
    "InlineBackend",
    "RemoteOutput",
    "Submission",
    "early_submitter",
    "remote_dep_outputs",
]


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


class Submission(Protocol):
    """One attempt handed to a backend that can take it before its upstreams end.

    ``remote`` is what a downstream task on the same backend receives in
    ``_dep_outputs`` while this attempt has not ended (the backend resolves it
    where the downstream runs); ``result()`` awaits the attempt's output as
    ``Backend.call`` would; ``cancel()`` withdraws it without waiting.
    """

    @property
    def remote(self) -> RemoteOutput: ...

    def result(self) -> Awaitable[Any]: ...

    def cancel(self) -> None: ...


@runtime_checkable
class EarlySubmitter(Protocol):
    """An optional capability of a backend: early submission.

    ``submit_early(body, task_id, spec, upstream)`` submits an attempt whose
    ``upstream`` submissions (on the same backend) may not have ended yet;
    the backend runs the body only once they have succeeded, with their
    outputs in place of their ``remote`` handles in ``spec``. It is called
    in the event loop and must not block. ``prepare_early()`` is awaited once
    per run before the first ``submit_early`` (to connect, for instance).
    The engine uses it only for a backend whose ``early_submission`` is true.
    """

    early_submission: bool

    async def prepare_early(self) -> None: ...

    def submit_early(
        self,
        body: Callable[[Any, Any], Any],
        task_id: Hashable,
        spec: Any,
        upstream: Sequence[Submission],
    ) -> Submission: ...


def early_submitter(backend: object) -> EarlySubmitter | None:
    """``backend`` if it offers early submission, has it on and keeps its outputs."""
    if (
        getattr(backend, "early_submission", False) is True
        and getattr(backend, "keeps_outputs", False)
        and callable(getattr(backend, "submit_early", None))
        and callable(getattr(backend, "prepare_early", None))
    ):
        return backend  # type: ignore[return-value]
    return None


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
