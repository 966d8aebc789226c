"""Progress reporting for runs: the ``Progress`` interface and a counting base.

Give any object with these three methods to ``DAGExecutor.execute(...,
progress=...)``, ``LevelExecutor.execute(..., progress=...)`` or
``MetaDAG.execute(progress=...)``:

- ``start(total)`` once, before anything runs, with the number of tasks
  (nodes, for a MetaDAG);
- ``task_done(task_id, status)`` once per task as it reaches its final
  status (a ``TaskStatus``: success, failed, timeout, skipped or
  cancelled); retries in between are not reported; a resumed run reports
  its restored tasks as successes right after ``start``;
- ``close()`` once, when the run ends, however it ends (also when it is
  cancelled or raises);
- optionally ``add_total(count)``, when a run-time fan-out adds ``count``
  child tasks (each then reported by ``task_done`` like any task); an
  object without it is simply not told, and sees more tasks done than
  ``total``.

The engine calls it directly, not through the event stream, so progress
works with ``WaveConfig(emit_events=False)``; calls come from the event
loop's thread, so they should be quick. A progress object that raises is
logged once per run (logger ``wave_executor.progress``) and otherwise
ignored: a broken display never breaks a run. One object follows one run at
a time.

Ready-made displays, imported only when used: ``wave_executor.progress.rich.
RichProgress`` and ``wave_executor.progress.tqdm.TqdmProgress`` (the
``progress`` extra: ``pip install "wave-executor[progress]"``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from typing import Protocol, runtime_checkable

from wave_executor._core.status import TaskStatus

__all__ = ["CountingProgress", "Progress"]


@runtime_checkable
class Progress(Protocol):
    """What a run reports its progress to (see the module docstring)."""

    def start(self, total: int) -> None:
        """The run begins; ``total`` tasks will each be reported once."""

    def task_done(self, task_id: Hashable, status: TaskStatus) -> None:
        """Task ``task_id`` reached its final ``status``."""

    def close(self) -> None:
        """The run ended: release the display."""


class CountingProgress:
    """A ``Progress`` that counts; the adapters extend it with a display.

    ``total`` and ``done`` are the run's figures; ``counts`` maps each final
    status to how many tasks ended with it.
    """

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.counts: Counter[TaskStatus] = Counter()

    def start(self, total: int) -> None:
        self.total, self.done = total, 0
        self.counts = Counter()

    def task_done(self, task_id: Hashable, status: TaskStatus) -> None:
        self.done += 1
        self.counts[status] += 1

    def add_total(self, count: int) -> None:
        """A fan-out added ``count`` child tasks to the run."""
        self.total += count

    def close(self) -> None:
        pass

    @property
    def failed(self) -> int:
        """Tasks that ended failed, timed out or cancelled."""
        counts = self.counts
        return counts[TaskStatus.FAILED] + counts[TaskStatus.TIMEOUT] + counts[TaskStatus.CANCELLED]

    def summary(self) -> str:
        """``"ok 8, failed 1, skipped 2"``: the counts a display shows beside its bar."""
        parts = [f"ok {self.counts[TaskStatus.SUCCESS]}"]
        if self.failed:
            parts.append(f"failed {self.failed}")
        if self.counts[TaskStatus.SKIPPED]:
            parts.append(f"skipped {self.counts[TaskStatus.SKIPPED]}")
        return ", ".join(parts)
