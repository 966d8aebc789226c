"""The process backend: picklable plain functions in a ``ProcessPoolExecutor``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from wave_executor.backends._pool import PoolBackend

if TYPE_CHECKING:  # multiprocessing is imported on first use, not with wave_executor
    from concurrent.futures import ProcessPoolExecutor

__all__ = ["ProcessBackend"]

StartMethod = Literal["spawn", "forkserver"]


class ProcessBackend(PoolBackend):
    """Runs each attempt of a plain ``def body(task_id, spec)`` in a worker process.

    For CPU-bound bodies: they use other cores. The body, the task id, the
    spec (with ``_dep_outputs``, if injected) and the output are pickled, so
    the body must be a module-level function and all of them picklable.
    Worker processes start with ``start_method`` ("spawn", the default, or
    "forkserver"), never by forking the process that runs the event loop.
    The pool is made on first use; ``close()`` (or a ``with`` block) shuts it
    down. A timeout or a stop ends the attempt at once, but the body runs
    to its end in its process and holds that process until then.
    """

    _processes = True

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        start_method: StartMethod = "spawn",
        max_tasks_per_child: int | None = None,
    ) -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        if start_method not in ("spawn", "forkserver"):
            raise ValueError(f"start_method must be 'spawn' or 'forkserver', got {start_method!r}")
        super().__init__()
        self.max_workers = max_workers
        self.start_method = start_method
        self._max_tasks_per_child = max_tasks_per_child

    def _new_pool(self) -> ProcessPoolExecutor:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context(self.start_method)
        return ProcessPoolExecutor(
            self.max_workers, mp_context=context, max_tasks_per_child=self._max_tasks_per_child
        )

    def __enter__(self) -> ProcessBackend:
        return self

    def __repr__(self) -> str:
        return f"ProcessBackend(max_workers={self.max_workers}, start_method={self.start_method!r})"
