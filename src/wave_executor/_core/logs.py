"""The library's loggers: one hierarchy under ``wave_executor``, quiet by default.

Every record a ``wave_executor`` logger makes carries three attributes for
formatters and filters: ``run_id`` (the run's execution id, the events'
``execution_id``; a reconciler's ``reconciler_id``), ``task_id`` and
``attempt`` (1 for a task's first attempt, or a reconciler task's run
number), each ``None`` where it does not apply. A call site passes what it
knows with ``extra=fields(...)``; a filter on each logger fills in the rest,
so a ``%(run_id)s`` format never fails on a record of ours.

The root ``wave_executor`` logger has a ``NullHandler``: an application
that configures no logging sees nothing (not even WARNINGs through
``logging.lastResort``), and one that does gets every record propagated.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

__all__ = ["FIELDS", "ROOT", "fields", "get_logger"]

#: The root of the hierarchy; ``wave_executor.run``, ``.breaker``, ... below it.
ROOT = "wave_executor"
#: The attributes every record of ours carries (``None`` when not applicable).
FIELDS = ("run_id", "task_id", "attempt")


class _Fields(logging.Filter):
    """Gives a record the ``FIELDS`` its call site did not pass (as ``None``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        attributes = record.__dict__
        for name in FIELDS:
            if name not in attributes:
                attributes[name] = None
        return True


_FILTER = _Fields()
logging.getLogger(ROOT).addHandler(logging.NullHandler())


def get_logger(name: str = "") -> logging.Logger:
    """The logger ``wave_executor.<name>`` (the root one for ``""``), with the fields filter."""
    logger = logging.getLogger(f"{ROOT}.{name}" if name else ROOT)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


def fields(
    run_id: str | None = None, task_id: Hashable | None = None, attempt: int | None = None
) -> dict[str, Any]:
    """The ``extra=`` mapping of a record: its run, task and attempt."""
    return {"run_id": run_id, "task_id": task_id, "attempt": attempt}
