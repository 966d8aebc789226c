"""``RichProgress``: a run's progress as a rich progress bar (needs ``rich``)."""

from __future__ import annotations

from collections.abc import Hashable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as _Bar

from wave_executor._core.status import TaskStatus
from wave_executor.progress import CountingProgress

__all__ = ["RichProgress"]


class RichProgress(CountingProgress):
    """One bar per run: done/total, elapsed time, and ok/failed/skipped counts.

    ``console`` is where it draws (rich's default console when None);
    ``transient`` erases the bar when the run ends.
    """

    def __init__(
        self, description: str = "tasks", *, console: Console | None = None, transient: bool = False
    ) -> None:
        super().__init__()
        self.description = description
        self._console = console
        self._transient = transient
        self._bar: _Bar | None = None
        self._task: TaskID | None = None

    def start(self, total: int) -> None:
        super().start(total)
        self.close()
        self._bar = _Bar(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[summary]}"),
            console=self._console,
            transient=self._transient,
        )
        self._task = self._bar.add_task(self.description, total=total, summary=self.summary())
        self._bar.start()

    def task_done(self, task_id: Hashable, status: TaskStatus) -> None:
        super().task_done(task_id, status)
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=1, summary=self.summary())

    def add_total(self, count: int) -> None:
        super().add_total(count)
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=self.total)

    def close(self) -> None:
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.stop()
