"""The engine's instrumentation hook: spans and metrics beside the event stream.

An instrumentation (``wave_executor.otel``) installs an ``Observer`` with
``install()``. The engine reads ``current`` when an execution, a supervised
run or a remote call starts; with nothing installed that is one module
attribute checked per execution, and a DAG run's attempt loop is the very
same code (the run picks its attempt function once per worker). The event
stream is not involved: ``emit_events=False`` silences callbacks only.

The protocols here are the engine's side of the contract; they are private
and may change with the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Protocol

__all__ = [
    "AttemptProbe",
    "ExecutionProbe",
    "Observer",
    "WindowGauge",
    "current",
    "execution",
    "install",
]

#: A window to watch while its run lives: (kind, group name or None, current limit).
WindowGauge = tuple[str, Hashable | None, Callable[[], int]]


class AttemptProbe(Protocol):
    """One attempt (or one supervised run): begun current in the calling task's context."""

    def release(self) -> None:
        """The body has ended: make the context current before the attempt again."""

    def end(
        self, status: str, error: BaseException | None = None, retry_delay: float | None = None
    ) -> None:
        """The attempt's outcome; ``retry_delay`` is set when the task will be retried."""


class ExecutionProbe(Protocol):
    """One execution (a DAG, level or MetaDAG run), or one wave of a level run."""

    def attempt(self, task_id: Hashable, attempt: int, group: Hashable | None) -> AttemptProbe:
        """An attempt starts; its probe is current until ``release()``."""

    def task_ended(self, task_id: Hashable, status: str, error: str | None = None) -> None:
        """A task reached its final status (success, failed, timeout, skipped, cancelled)."""

    def track(self, ready: Callable[[], int], windows: Sequence[WindowGauge]) -> Callable[[], None]:
        """Watch a running engine's ready queue and windows; returns the call that stops it."""

    def child(self, name: str, attributes: Mapping[str, Any]) -> ExecutionProbe:
        """A part of this execution with a span of its own (a wave of a level run)."""

    def end(self, status: str, error: BaseException | None = None, **attributes: Any) -> None:
        """The execution ended (status: success, failed or cancelled)."""


class Observer(Protocol):
    """What an instrumentation installs."""

    def execution(
        self,
        kind: str,
        execution_id: str,
        run_id: str | None,
        total_tasks: int,
        node_types: Mapping[Hashable, str] | None = None,
    ) -> ExecutionProbe:
        """An execution starts, under the current context. ``kind``: dag, level or meta
        (whose attempts are its nodes, of ``node_types``)."""

    def supervised(self, reconciler: str, task_id: Hashable, run: int) -> AttemptProbe:
        """A run of a ``WaveReconciler`` task starts (in its own asyncio task)."""

    def restarted(self, reconciler: str, task_id: Hashable) -> None:
        """A reconciler started a task again."""

    def carry(self, body: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        """``body`` wrapped to run in another process under the current context (picklable)."""


#: The installed observer, or None (the default: the engine observes nothing).
current: Observer | None = None


def install(observer: Observer | None) -> None:
    """Install ``observer`` for every execution that starts from now on (None: remove it)."""
    global current
    current = observer


def execution(
    kind: str,
    execution_id: str,
    run_id: str | None,
    total_tasks: int,
    node_types: Mapping[Hashable, str] | None = None,
) -> ExecutionProbe | None:
    """The probe of an execution that starts now, or None when nothing observes."""
    observer = current
    if observer is None:
        return None
    return observer.execution(kind, execution_id, run_id, total_tasks, node_types)
