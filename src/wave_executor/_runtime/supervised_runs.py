"""The asyncio side of supervised runs: start one, cancel one with a reason, report its exit.

A run is an asyncio task around ``run_attempt``, the attempt runner the DAG
executor uses, with its own ``Watchdog`` (armed only if the task has a
timeout: supervised tasks are long-running by default). The exit is
reported from the task's done callback, so it is known even for a run
cancelled before its first step; and because done callbacks run before
anyone awaiting the task resumes, ``await asyncio.wait(runs)`` returns only
after every exit has been recorded.

A body may swallow a cancellation (``except CancelledError: pass``, or an
``await`` in a ``finally``). The table never loses such a run: a run the
reconciler cancelled is handed to a ``Reaper`` (``reaper.py``), which
cancels it again until it ends and names it once it is late. A run still
alive ``RECANCEL_EVERY_S`` past its timeout swallowed the watchdog's
cancellation: it is cancelled the same way and ends ``"timeout"`` however
it ends.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import Any

from wave_executor._core.reconcile import SupervisedStatus
from wave_executor._runtime import observe
from wave_executor._runtime.attempt import AttemptTimeout, TaskBody, Watchdog, run_attempt
from wave_executor._runtime.reaper import (
    RECANCEL_EVERY_S,
    Reaper,
    log_ended_late,
    log_swallowing,
)

__all__ = ["TIMED_OUT", "Exit", "RunTable", "mark_ready"]

#: The cancel reason of a run that outlived its timeout by ignoring the watchdog.
TIMED_OUT = "timed_out"


@dataclass(frozen=True, slots=True)
class Exit:
    """How a run ended. ``cancelled`` is set when the reconciler cancelled it, with why."""

    status: SupervisedStatus
    output: Any = None
    error: str | None = None
    cancelled: str | None = None
    upstream: Hashable | None = None  # for cancelled == "upstream_restarted"


@dataclass(frozen=True, slots=True)
class _RunHandle:
    on_ready: Callable[[Hashable, int], None]
    task_id: Hashable
    run_id: int


@dataclass(slots=True)
class _Cancel:
    """Why a run was cancelled, and the reaper that cancels it again."""

    reason: str
    upstream: Hashable | None
    reaper: Reaper | None = None
    timeout_error: str = ""  # for TIMED_OUT: the AttemptTimeout message


_CURRENT_RUN: ContextVar[_RunHandle | None] = ContextVar("wave_executor_run", default=None)


def mark_ready() -> None:
    """Declare the calling supervised run ready: its dependents may start now.

    For long-running tasks (a server, a worker) that never end in "success":
    call it from the task body (or from a task it spawned) once the task
    serves. Idempotent; readiness ends with the run. Raises ``RuntimeError``
    outside a run of a ``WaveReconciler``.
    """
    handle = _CURRENT_RUN.get()
    if handle is None:
        raise RuntimeError("mark_ready() must be called from a task run by a WaveReconciler")
    handle.on_ready(handle.task_id, handle.run_id)


class RunTable:
    """At most one live run per task id; every run has a reconciler-wide id."""

    def __init__(
        self,
        body: TaskBody,
        on_exit: Callable[[Hashable, int, Exit], None],
        on_ready: Callable[[Hashable, int], None],
        name: str,
        reconciler_id: str = "",
    ) -> None:
        self._body = body
        self._rid = reconciler_id
        self._on_exit = on_exit
        self._on_ready = on_ready
        self._name = name
        self._runs: dict[Hashable, tuple[int, asyncio.Task[Any]]] = {}
        self._cancelling: dict[int, _Cancel] = {}
        self._overdue: dict[int, asyncio.TimerHandle] = {}  # timeouts past due, by run id
        self._probes: dict[int, observe.AttemptProbe] = {}  # observed runs (observe.py)
        self._seq = 0

    def __len__(self) -> int:
        return len(self._runs)

    def __contains__(self, task_id: Hashable) -> bool:
        return task_id in self._runs

    def tasks(self) -> set[asyncio.Task[Any]]:
        return {task for _, task in self._runs.values()}

    def task_ids(self) -> list[Hashable]:
        """The ids of the tasks that have a live run (cancelled or not)."""
        return list(self._runs)

    def reserve(self) -> int:
        """A new run id, handed out before the run starts so that its record can say
        "running" even if an eager task factory runs the body inside ``start``."""
        self._seq += 1
        return self._seq

    def start(
        self,
        loop: asyncio.AbstractEventLoop,
        task_id: Hashable,
        run_id: int,
        argument: Any,
        limit: float,
        number: int = 1,
    ) -> None:
        """Start run ``run_id`` of ``task_id`` (which must have no live run), its ``number``-th."""
        assert task_id not in self._runs, f"{task_id!r} already has a live run"
        coro = self._run(task_id, run_id, argument, limit, number)
        task = loop.create_task(coro, name=f"{self._name}: {task_id}")
        self._runs[task_id] = (run_id, task)
        task.add_done_callback(partial(self._done, task_id, run_id))
        if limit != math.inf:  # only fires if the body swallowed the watchdog's cancel
            at = loop.time() + limit + RECANCEL_EVERY_S
            self._overdue[run_id] = loop.call_at(at, self._time_out, task_id, run_id, limit)

    def cancel(
        self,
        task_id: Hashable,
        reason: str,
        upstream: Hashable | None = None,
        override: bool = False,
    ) -> asyncio.Task[Any] | None:
        """Cancel the live run of ``task_id``; the first reason given wins unless ``override``."""
        entry = self._runs.get(task_id)
        if entry is None:
            return None
        run_id, task = entry
        cancel = self._cancelling.get(run_id)
        if cancel is None:
            cancel = self._cancelling[run_id] = _Cancel(reason, upstream)
            loop = task.get_loop()
            cancel.reaper = Reaper(
                loop, loop.time(), partial(self._is_live, task_id, run_id), task.cancel,
                partial(self._warn, task_id, cancel),
            ).start()  # fmt: skip
        elif override:
            cancel.reason, cancel.upstream = reason, upstream
        task.cancel()
        return task

    def cancelling(self, run_id: int) -> bool:
        return run_id in self._cancelling

    def _is_live(self, task_id: Hashable, run_id: int) -> bool:
        entry = self._runs.get(task_id)
        return entry is not None and entry[0] == run_id and run_id in self._cancelling

    def _warn(self, task_id: Hashable, cancel: _Cancel, late: float) -> None:
        after = f"it was cancelled ({cancel.reason})"
        log_swallowing(self._name, [task_id], late, after, RECANCEL_EVERY_S)

    def _time_out(self, task_id: Hashable, run_id: int, limit: float) -> None:
        self._overdue.pop(run_id, None)
        if self._runs.get(task_id, (None,))[0] == run_id:
            self.cancel(task_id, TIMED_OUT)
            self._cancelling[run_id].timeout_error = str(AttemptTimeout(limit))

    async def _run(
        self, task_id: Hashable, run_id: int, argument: Any, limit: float, number: int
    ) -> Any:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        watchdog = Watchdog(loop, task)
        _CURRENT_RUN.set(_RunHandle(self._on_ready, task_id, run_id))  # this task's context only
        observer = observe.current
        probe = None
        if observer is not None:  # current in this task until the body ends; ended in _done
            probe = self._probes[run_id] = observer.supervised(self._rid, task_id, number)
        try:
            return await run_attempt(self._body, task_id, argument, watchdog, limit, loop.time())
        finally:
            watchdog.close()
            if probe is not None:
                probe.release()

    def _done(self, task_id: Hashable, run_id: int, task: asyncio.Task[Any]) -> None:
        if self._runs.get(task_id, (None,))[0] == run_id:
            del self._runs[task_id]
        exit_ = _exit_of(task)  # also retrieves the exception, so asyncio never logs it
        overdue = self._overdue.pop(run_id, None)
        if overdue is not None:
            overdue.cancel()
        cancel = self._cancelling.pop(run_id, None)
        if cancel is not None and cancel.reaper is not None:
            cancel.reaper.stop()
            if cancel.reaper.warned:
                late = cancel.reaper.late()
                log_ended_late(self._name, f"task {task_id!r}", late, "it was cancelled")
        if cancel is not None:
            if cancel.reason == TIMED_OUT:  # however it ended, it ran past its timeout
                exit_ = Exit(SupervisedStatus.TIMEOUT, error=cancel.timeout_error)
            else:
                exit_ = Exit(
                    SupervisedStatus.STOPPED, cancelled=cancel.reason, upstream=cancel.upstream
                )
        if self._probes:
            probe = self._probes.pop(run_id, None)
            if probe is not None:
                error = None if task.cancelled() else task.exception()
                probe.end(exit_.status.value, error)
        self._on_exit(task_id, run_id, exit_)


def _exit_of(task: asyncio.Task[Any]) -> Exit:
    if task.cancelled():  # by someone else than the reconciler
        return Exit(SupervisedStatus.FAILED, error="cancelled")
    exc = task.exception()
    if exc is None:
        return Exit(SupervisedStatus.SUCCESS, output=task.result())
    if isinstance(exc, AttemptTimeout):
        return Exit(SupervisedStatus.TIMEOUT, error=str(exc))
    return Exit(SupervisedStatus.FAILED, error=str(exc) or type(exc).__name__)
