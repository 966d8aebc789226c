"""``TqdmProgress``: a run's progress as a tqdm bar (needs ``tqdm``).

It uses ``tqdm.auto``, so in a Jupyter notebook (with ``ipywidgets``) the
bar is a widget and in a terminal it is text.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import IO, Any

from tqdm.auto import tqdm

from wave_executor._core.status import TaskStatus
from wave_executor.progress import CountingProgress

__all__ = ["TqdmProgress"]


class TqdmProgress(CountingProgress):
    """One tqdm bar per run, with the ok/failed/skipped counts as its postfix.

    ``file`` is where a text bar is written (tqdm's default, stderr, when
    None); ``leave`` keeps the finished bar on screen; ``tqdm_options`` go
    to ``tqdm`` as they are (``ncols``, ``colour``, ``mininterval``...).
    """

    def __init__(
        self,
        description: str = "tasks",
        *,
        file: IO[str] | None = None,
        leave: bool = True,
        **tqdm_options: Any,
    ) -> None:
        super().__init__()
        self.description = description
        self._file = file
        self._leave = leave
        self._options = tqdm_options
        self._bar: tqdm[Any] | None = None

    def start(self, total: int) -> None:
        super().start(total)
        self.close()
        self._bar = tqdm(
            total=total, desc=self.description, file=self._file, leave=self._leave,
            unit="task", **self._options,
        )  # fmt: skip

    def task_done(self, task_id: Hashable, status: TaskStatus) -> None:
        super().task_done(task_id, status)
        bar = self._bar
        if bar is not None:
            bar.set_postfix_str(self.summary(), refresh=False)
            bar.update(1)

    def add_total(self, count: int) -> None:
        super().add_total(count)
        bar = self._bar
        if bar is not None:
            bar.total = self.total
            bar.refresh()

    def close(self) -> None:
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.set_postfix_str(self.summary(), refresh=False)
            bar.close()
