"""The engine's side of ``progress=``: calls the user's object, never lets it break a run.

A run without ``progress=`` has no feed at all (``None``): the engine tests
for it once per finished task and pays nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

from wave_executor._core.logs import fields, get_logger
from wave_executor._core.status import TaskStatus
from wave_executor.progress import Progress

__all__ = ["ProgressFeed", "feed_for"]

log = get_logger("progress")


class ProgressFeed:
    """Forwards one run's progress to a ``Progress``; logs its first error only."""

    __slots__ = ("_errors", "_progress", "_run_id")

    def __init__(self, progress: Progress, run_id: str) -> None:
        for method in ("start", "task_done", "close"):
            if not callable(getattr(progress, method, None)):
                raise TypeError(
                    f"progress must have start(total), task_done(task_id, status) and "
                    f"close() methods; {progress!r} has no {method}()"
                )
        self._progress = progress
        self._run_id = run_id
        self._errors = 0

    def start(self, total: int) -> None:
        try:
            self._progress.start(total)
        except (Exception, asyncio.CancelledError):
            self._failed("start", None)

    def task_done(self, task_id: Hashable, status: TaskStatus) -> None:
        try:
            self._progress.task_done(task_id, status)
        except (Exception, asyncio.CancelledError):
            self._failed("task_done", task_id)

    def add_total(self, count: int) -> None:
        """A fan-out grew the run; told only to objects that have ``add_total``."""
        add = getattr(self._progress, "add_total", None)
        if add is None:
            return
        try:
            add(count)
        except (Exception, asyncio.CancelledError):
            self._failed("add_total", None)

    def close(self) -> None:
        try:
            self._progress.close()
        except (Exception, asyncio.CancelledError):
            self._failed("close", None)

    def _failed(self, method: str, task_id: Hashable | None) -> None:
        """The first error of the run is logged with its traceback; later ones are not."""
        self._errors += 1
        if self._errors == 1:
            log.exception(
                "run %s: progress %r failed in %s(); its later errors in this run are not logged",
                self._run_id, self._progress, method,
                extra=fields(self._run_id, task_id),
            )  # fmt: skip


def feed_for(progress: Progress | None, run_id: str) -> ProgressFeed | None:
    """The feed of a run, or None without ``progress=`` (checked before anything runs)."""
    return None if progress is None else ProgressFeed(progress, run_id)
