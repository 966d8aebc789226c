"""Switches for the event loops every test uses, set by environment variables.

- ``WAVE_TEST_EAGER=1`` (Python 3.12+): every event loop the tests create
  in the main thread (pytest-asyncio's, ``asyncio.run``'s, ``run_virtual``'s)
  gets ``asyncio.eager_task_factory``, so a task runs its first step at once.
- ``PYTHONASYNCIODEBUG=1``: asyncio's debug mode, which asyncio reads itself
  when a loop is made (slow callbacks logged, thread-unsafe calls refused,
  unawaited coroutines traced).

CI runs the suite once under each (``.ci/run``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from typing import Any

import pytest

EAGER = os.environ.get("WAVE_TEST_EAGER", "") not in ("", "0")
DEBUG = os.environ.get("PYTHONASYNCIODEBUG", "") not in ("", "0")

if EAGER:
    if sys.version_info < (3, 12):
        raise pytest.UsageError("WAVE_TEST_EAGER=1 needs Python 3.12+ (eager_task_factory)")
    _init = asyncio.BaseEventLoop.__init__

    def _eager_init(self: asyncio.BaseEventLoop, *args: Any, **kwargs: Any) -> None:
        _init(self, *args, **kwargs)
        # Loops made by the tests (in the main thread); not a library's own, such
        # as the loop distributed runs in a thread of its own for a LocalCluster.
        if threading.current_thread() is threading.main_thread():
            self.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined,unused-ignore]

    asyncio.BaseEventLoop.__init__ = _eager_init  # type: ignore[method-assign,unused-ignore]


def pytest_configure(config: pytest.Config) -> None:
    if DEBUG:  # pytest-asyncio's runner would otherwise turn debug mode off
        config.option.asyncio_debug = True


def pytest_report_header() -> str:
    modes = [name for name, on in (("eager task factory", EAGER), ("asyncio debug", DEBUG)) if on]
    return "event loops: " + (", ".join(modes) if modes else "default")
