"""The thread backend: plain (blocking) functions in a bounded thread pool."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from wave_executor.backends._pool import PoolBackend

__all__ = ["ThreadBackend"]


class ThreadBackend(PoolBackend):
    """Runs each attempt of a plain ``def body(task_id, spec)`` in a thread of its own pool.

    At most ``max_workers`` bodies run at once (default: Python's
    ``ThreadPoolExecutor`` default, ``min(32, cpu_count + 4)``); attempts
    beyond that wait in the pool's queue, and their timeout runs while they
    wait. The pool is made on first use and shared by every run that uses
    this backend; ``close()`` (or ``with ThreadBackend() as backend:``) shuts
    it down. A timeout or a stop ends the attempt at once, but a thread
    cannot be interrupted: the body runs to its end in the background and
    holds its thread until then.
    """

    def __init__(self, max_workers: int | None = None, *, thread_name_prefix: str = "wave") -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        super().__init__()
        self.max_workers = max_workers
        self._prefix = thread_name_prefix

    def _new_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.max_workers, self._prefix)

    def __enter__(self) -> ThreadBackend:
        return self

    def __repr__(self) -> str:
        return f"ThreadBackend(max_workers={self.max_workers})"
