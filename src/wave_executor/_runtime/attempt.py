"""One attempt of one task: deadline, call, outcome.

The per-attempt timeout is enforced by a ``Watchdog`` that belongs to the
worker, not by an ``asyncio.timeout()`` per attempt: a timer handle per
attempt costs about 7 µs (creation, heap push, lazy cancel), more than the
whole rest of the scheduler's work for a task. The watchdog keeps one timer
per worker and re-arms it only when it fires, so with fast tasks and a long
timeout it costs nothing per task.

When the deadline passes, the watchdog cancels the worker's task; the
attempt turns that cancellation into ``AttemptTimeout`` using the same
``cancel``/``uncancel`` protocol as ``asyncio.timeout``, so a cancellation
from outside (the caller, the task group) is never mistaken for a timeout.

A body may swallow the cancellation. If it then returns at once, its output
stands, as with ``asyncio.timeout``. A watchdog made with ``recancel_every``
does not let it run on: a ``Reaper`` cancels again at that period and names
the task in a WARNING once it is late; an attempt that needed a second
cancellation is a timeout however it ends.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Any, TypeAlias

from wave_executor._core.backend import Backend, InlineBackend, RemoteOutput, remote_dep_outputs
from wave_executor._core.upstream import DEP_OUTPUTS
from wave_executor._runtime.reaper import Reaper, log_swallowing

__all__ = [
    "AttemptTimeout",
    "BackendSpec",
    "attempt_error",
    "UNSET",
    "NotAwaitableError",
    "TaskBody",
    "call_remote_aware",
    "Watchdog",
    "not_awaitable",
    "resolve_backends",
    "run_attempt",
    "with_backends",
]

TaskBody: TypeAlias = Callable[[Any, Any], Awaitable[Any]]
#: ``execute(backends=...)``: task id -> backend, or ``(task_id, spec) -> backend or None``.
BackendSpec: TypeAlias = Mapping[Any, Backend] | Callable[[Any, Any], Backend | None]


class AttemptTimeout(TimeoutError):
    """An attempt ran past its per-attempt timeout and was cancelled."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(f"timeout after {timeout:g}s")


class NotAwaitableError(TypeError):
    """The task executor returned something that cannot be awaited (a sync ``def``).

    Every attempt would fail alike, so it is not retried.
    """

    def __init__(self, returned: object) -> None:
        super().__init__(
            f"the task executor returned {returned!r} ({type(returned).__name__}), "
            "not an awaitable: define it with 'async def', or run plain functions "
            "with backend=ThreadBackend() (wave_executor.backends)"
        )


#: What ``pending`` holds until the task executor has returned.
UNSET: Any = object()


def not_awaitable(exc: Exception, pending: Any) -> bool:
    """Was ``exc`` the ``await`` of what the task executor returned refusing it?"""
    return type(exc) is TypeError and pending is not UNSET and not inspect.isawaitable(pending)


class Watchdog:
    """Enforces the deadline of whatever attempt its worker task is running."""

    __slots__ = (
        "_base",
        "_cancels",
        "_deadline",
        "_loop",
        "_overdue",
        "_reaper",
        "_recancel_every",
        "_task",
        "_task_id",
        "_timer",
        "_timer_at",
        "fired",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        task: asyncio.Task[Any],
        recancel_every: float | None = None,
    ) -> None:
        self._loop = loop
        self._task = task
        self._recancel_every = recancel_every
        self._deadline = math.inf
        self._task_id: Hashable = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf  # when the timer fires (inf: no timer)
        self._cancels = 0  # cancellations of the current attempt not yet taken back
        # The task's cancellation count when the attempt started: not always 0,
        # as a TaskGroup in a body can leave one behind on Python 3.11/3.12.
        self._base = 0
        self._overdue = False  # the attempt swallowed one and was cancelled again
        self._reaper: Reaper | None = None  # cancels again an attempt that swallowed ours
        #: Set by ``absorb()``: whether the attempt that just ended was cancelled by us.
        self.fired = False

    def arm(self, deadline: float, task_id: Hashable = None) -> None:
        self._deadline = deadline
        self._task_id = task_id
        self._base = self._task.cancelling()  # any cancellation after this is not stale
        if deadline < self._timer_at:  # rare: no timer yet, or a shorter limit than before
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(deadline, self._fire)
            self._timer_at = deadline

    def disarm(self) -> bool:
        """The attempt ended; True if it ended only after a second cancellation."""
        self._deadline = math.inf
        if self._cancels:  # the body swallowed our cancellation: take it back
            overdue = self._overdue
            self._settle()
            return overdue
        return False

    def absorb(self) -> bool:
        """In ``except CancelledError``: was this cancellation ours (and only ours)?"""
        self._deadline = math.inf
        self.fired = self._cancels > 0
        return self.fired and self._settle() <= self._base

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = math.inf
        if self._reaper is not None:
            self._reaper.stop()
            self._reaper = None

    def _settle(self) -> int:
        """Take our cancellations back; the count of the task's other cancellations."""
        remaining = 0
        for _ in range(self._cancels):
            remaining = self._task.uncancel()
        self._cancels, self._overdue = 0, False
        if self._reaper is not None:
            self._reaper.stop()
            self._reaper = None
        return remaining

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        deadline = self._deadline
        if deadline == math.inf:
            return
        if self._loop.time() >= deadline:
            self._cancels = 1
            self._task.cancel()
            if self._recancel_every is not None:
                self._reaper = Reaper(
                    self._loop, deadline, _always, self._cancel_again, self._warn,
                    self._recancel_every,
                ).start()  # fmt: skip
        else:
            self._timer = self._loop.call_at(deadline, self._fire)
            self._timer_at = deadline

    def _cancel_again(self) -> None:
        self._overdue = True
        self._cancels += 1
        self._task.cancel()

    def _warn(self, late: float) -> None:
        assert self._recancel_every is not None
        log_swallowing(None, [self._task_id], late, "its timeout", self._recancel_every)


def _always() -> bool:
    return True


async def run_attempt(
    body: TaskBody,
    task_id: Hashable,
    spec: Any,
    watchdog: Watchdog,
    limit: float,
    now: float,
) -> Any:
    """Await ``body(task_id, spec)`` within ``limit`` seconds from ``now``.

    Returns the output; raises ``AttemptTimeout`` on timeout,
    ``NotAwaitableError`` when ``body`` returned no awaitable, and lets any
    other exception of the body through.
    """
    if limit != math.inf:
        watchdog.arm(now + limit, task_id)
    pending = UNSET
    try:
        pending = body(task_id, spec)
        output = await pending
    except BaseException as exc:
        raise attempt_error(exc, watchdog, pending, limit)  # noqa: B904 (chained inside)
    if watchdog.disarm():
        raise AttemptTimeout(limit)
    return output


def attempt_error(
    exc: BaseException, watchdog: Watchdog, pending: Any, limit: float
) -> BaseException:
    """What an attempt raises when calling or awaiting its body raised ``exc``.

    Our own cancellation becomes ``AttemptTimeout``, and so does any
    exception of a body that needed a second cancellation; an ``await`` that
    refused what the body returned becomes ``NotAwaitableError``; anything
    else (SystemExit and the like included: never a timeout) goes through.
    The hot loop of the DAG runtime awaits bodies inline and uses this too.
    """
    if isinstance(exc, asyncio.CancelledError):
        if watchdog.absorb():
            return _chained(AttemptTimeout(limit), None)
        return exc
    if isinstance(exc, Exception):
        if watchdog.disarm():
            return _chained(AttemptTimeout(limit), exc)
        if not_awaitable(exc, pending):
            return _chained(NotAwaitableError(pending), None)
        return exc
    watchdog.disarm()
    return exc


def _chained(error: BaseException, cause: BaseException | None) -> BaseException:
    """``error`` as ``raise error from cause`` would leave it."""
    error.__cause__ = cause
    error.__suppress_context__ = True
    return error


# -- backends -----------------------------------------------------------------


def resolve_backends(
    tasks: Mapping[Any, Any], default: Backend | None, backends: BackendSpec | None
) -> dict[Any, Backend]:
    """The backend of each task that does not run on ``default``, checked before anything runs."""
    if default is not None:
        _check_backend(default, "backend")
    if backends is None:
        return {}
    chosen: dict[Any, Backend] = {}
    if isinstance(backends, Mapping):
        for task_id, backend in backends.items():
            if task_id in tasks:
                chosen[task_id] = _check_backend(backend, f"backends[{task_id!r}]")
    elif callable(backends):
        for task_id, spec in tasks.items():
            picked = backends(task_id, spec)
            if picked is not None and picked is not default:
                chosen[task_id] = _check_backend(picked, f"backends({task_id!r}, ...)")
    else:
        raise TypeError(
            "backends must be a mapping of task id to backend or a function "
            f"(task_id, spec) -> backend, got {type(backends).__name__}"
        )
    return chosen


def _check_backend(backend: object, where: str) -> Backend:
    if not callable(getattr(backend, "call", None)):
        raise TypeError(
            f"{where} must be a backend (with a call(body, task_id, spec)), got {backend!r}"
        )
    return backend  # type: ignore[return-value]


def with_backends(
    body: TaskBody,
    default: Backend | None,
    chosen: Mapping[Any, Backend],
    *,
    fetch_outputs: bool = False,
) -> TaskBody:
    """``body`` as the engine calls it: each attempt on its task's backend.

    With no backend but the inline one, ``body`` itself comes back: the
    default costs nothing per task. Outputs a backend left where they were
    made (``RemoteOutput``) are fetched for a task of another backend (in
    ``_dep_outputs``), and as soon as they are made when ``fetch_outputs``
    (a store must record them).
    """
    if default is not None and type(default) is InlineBackend:
        default = None
    # None stands for the inline backend: the engine calls the body itself.
    where: dict[Any, Backend | None] = {
        t: None if type(b) is InlineBackend else b
        for t, b in chosen.items()
        if default is not None or type(b) is not InlineBackend
    }
    if default is None and not where:
        return body
    used: Iterable[Backend | None] = [*where.values(), default]
    remote = any(getattr(b, "keeps_outputs", False) for b in used)
    if not remote:
        if not where:
            assert default is not None
            call = default.call

            def on_default(task_id: Any, spec: Any) -> Awaitable[Any]:
                return call(body, task_id, spec)

            return on_default

        def on_chosen(task_id: Any, spec: Any) -> Awaitable[Any]:
            backend = where.get(task_id, default)
            return body(task_id, spec) if backend is None else backend.call(body, task_id, spec)

        return on_chosen

    def with_remote(task_id: Any, spec: Any) -> Awaitable[Any]:
        backend = where.get(task_id, default)
        return call_remote_aware(body, backend, task_id, spec, fetch_outputs)

    return with_remote


async def call_remote_aware(
    body: TaskBody, backend: Backend | None, task_id: Any, spec: Any, fetch_outputs: bool
) -> Any:
    if not getattr(backend, "takes_remote_outputs", False):
        spec = await _fetched_dep_outputs(spec)
    if backend is None:
        pending = body(task_id, spec)
        if not inspect.isawaitable(pending):
            raise NotAwaitableError(pending)
        output = await pending
    else:
        output = await backend.call(body, task_id, spec)
    if fetch_outputs and isinstance(output, RemoteOutput):
        output = await output.fetch()
    return output


async def _fetched_dep_outputs(spec: Any) -> Any:
    """``spec`` with the remote outputs in its ``_dep_outputs`` fetched (a copy if any was)."""
    outputs = remote_dep_outputs(spec)
    if outputs is None:
        return spec
    fetched = {k: await v.fetch() if isinstance(v, RemoteOutput) else v for k, v in outputs.items()}
    return {**spec, DEP_OUTPUTS: fetched}
