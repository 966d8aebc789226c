"""The fault-injection harness: exception kinds, call-site counters, checks, tallies.

A campaign test runs a scenario once without a fault to count how many
times each call site (a task body, an event callback, a store method...)
is called, then once per ``(kind, site, k)``: the site raises an exception
of ``kind`` at its ``k``-th call, for every ``k`` of the clean run. Every
fault injected is tallied in ``TALLY`` with the outcome the caller saw, and
``tests/faults/conftest.py`` prints the tally at the end of the session.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Protocol


class Boom(Exception):
    """An ordinary exception of the user's own."""


class Abort(BaseException):
    """A ``BaseException`` of the user's own (not an ``Exception``)."""


#: The exception kinds injected, by name.
KINDS: dict[str, Callable[[], BaseException]] = {
    "Exception": lambda: Boom("injected fault"),
    "ValueError": lambda: ValueError("injected fault"),
    "CancelledError": asyncio.CancelledError,
    "KeyboardInterrupt": KeyboardInterrupt,
    "SystemExit": lambda: SystemExit(3),
    "BaseException": lambda: Abort("injected fault"),
}
#: Kinds that are "stop the program" signals: they must reach the caller.
FATAL = ("KeyboardInterrupt", "SystemExit", "BaseException")
#: Kinds an ordinary failure is made of.
ORDINARY = ("Exception", "ValueError", "CancelledError")

#: (family, site, kind, outcome) -> faults injected.
TALLY: Counter[tuple[str, str, str, str]] = Counter()


def tally(family: str, site: str, kind: str, outcome: str) -> None:
    TALLY[family, site, kind, outcome] += 1


@dataclass
class Faults:
    """Counts calls per site; raises ``kind`` at the ``k``-th call of ``site``."""

    site: str | None = None
    k: int = 0
    kind: str = "Exception"
    calls: Counter[str] = field(default_factory=Counter)
    fired: BaseException | None = None

    def hit(self, site: str) -> None:
        """Called at the start of every call into user code at ``site``."""
        self.calls[site] += 1
        if site == self.site and self.calls[site] == self.k and self.fired is None:
            self.fired = exc = KINDS[self.kind]()
            raise exc


def watch_events(target: Any, faults: Faults) -> None:
    """Register a sync and an async event callback on ``target``, each a fault site
    (``callback.sync``, ``callback.async``)."""

    def on_sync(event_type: str, event: dict[str, Any]) -> None:
        faults.hit("callback.sync")

    async def on_async(event_type: str, event: dict[str, Any]) -> None:
        faults.hit("callback.async")
        await asyncio.sleep(0)

    target.on_event(on_sync)
    target.on_event(on_async)


def outcome_of(fired: BaseException | None, raised: BaseException | None) -> str:
    """How a fault ended, for the tally."""
    if fired is None:
        return "not reached"
    if raised is None:
        return "run completed"
    if raised is fired or type(raised) is type(fired):
        return f"{type(fired).__name__} reached the caller"
    return f"{type(raised).__name__} reached the caller"


def open_timers(loop: asyncio.AbstractEventLoop) -> list[asyncio.TimerHandle]:
    """Timer handles still armed on ``loop`` (asyncio keeps them in ``_scheduled``)."""
    scheduled: list[asyncio.TimerHandle] = getattr(loop, "_scheduled", [])
    return [h for h in scheduled if not h.cancelled()]


def pending_tasks(loop: asyncio.AbstractEventLoop) -> set[asyncio.Task[Any]]:
    """Tasks of ``loop`` not done, besides the one asking."""
    try:
        current = asyncio.current_task(loop)
    except RuntimeError:
        current = None
    return {t for t in asyncio.all_tasks(loop) if t is not current and not t.done()}


@contextmanager
def no_new_threads() -> Iterator[None]:
    """Fails if a thread started inside the block is still alive after it."""
    before = set(threading.enumerate())
    yield
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for t in left:  # a pool thread may take a moment to notice its shutdown
        t.join(timeout=2.0)
    left = [t for t in left if t.is_alive()]
    assert not left, f"threads left behind: {left}"


@contextmanager
def loop_torn_down(kind: str) -> Iterator[None]:
    """Collects, quietly, what asyncio leaves when a ``KeyboardInterrupt`` or
    ``SystemExit`` tears the event loop down mid-run.

    asyncio re-raises those out of the loop, then cancels the tasks left; when
    one of them raises it again while being cancelled, the loop closes with
    the others still pending. Their coroutines are closed when collected, and
    one that awaits in a ``finally`` (to release a store, to end its event
    delivery) cannot: Python reports "coroutine ignored GeneratorExit", and
    async event callbacks queued meanwhile were never awaited. That is
    asyncio's teardown, not the library's; collecting here keeps it out of
    the next test's report.
    """
    if kind not in ("KeyboardInterrupt", "SystemExit"):
        yield
        return
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if "ignored GeneratorExit" not in str(unraisable.exc_value):
            previous(unraisable)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "coroutine .* was never awaited")
        sys.unraisablehook = hook
        try:
            yield
            gc.collect()
        finally:
            sys.unraisablehook = previous


def forget_frames(*errors: BaseException | None) -> None:
    """Drop the tracebacks of exceptions kept for the checks: their frames hold
    what a torn-down loop left, which ``loop_torn_down`` must collect itself."""
    for error in errors:
        if error is not None:
            error.__traceback__ = None


def run(
    main: Coroutine[Any, Any, Any],
    loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
) -> None:
    """``asyncio.run(main)``; then close what a torn-down loop left pending.

    When a ``KeyboardInterrupt`` or ``SystemExit`` tears the loop down, the
    tasks it could not cancel stay pending on the closed loop; their
    coroutines are closed here, at once, rather than whenever they are
    collected (in the middle of a later test).
    """
    loops: list[asyncio.AbstractEventLoop] = []

    def make() -> asyncio.AbstractEventLoop:
        loop = loop_factory()
        loops.append(loop)
        return loop

    try:
        with asyncio.Runner(loop_factory=make) as runner:
            runner.run(main)
    finally:
        for loop in loops:
            for task in asyncio.all_tasks(loop):
                if not task.done():
                    with suppress(RuntimeError):  # "coroutine ignored GeneratorExit"
                        task.get_coro().close()  # type: ignore[union-attr,unused-ignore]


TERMINAL_EVENTS = ("TASK_COMPLETED", "TASK_FAILED", "TASK_SKIPPED")


def terminal_counts(events: list[tuple[str, dict[str, Any]]]) -> Counter[Any]:
    """task id -> number of terminal events received for it."""
    return Counter(e["task_id"] for t, e in events if t in TERMINAL_EVENTS)


class Scenario(Protocol):
    """A fault run: its faults, what it raised, and the coroutine that runs it."""

    faults: Faults
    raised: BaseException | None

    def _main(self) -> Coroutine[Any, Any, None]: ...


def run_scenario(scenario: Scenario) -> None:
    """Run ``scenario`` with no new thread allowed and a torn-down loop closed.

    An exception raised in a task of the run escapes the event loop itself
    (asyncio re-raises it out of ``run()``, then cancels the caller's
    coroutine): it becomes what the scenario raised. After a
    ``KeyboardInterrupt`` or ``SystemExit`` the frames the errors hold are
    dropped, so what the torn-down loop left is collected at once.
    """
    with no_new_threads(), loop_torn_down(scenario.faults.kind):
        try:
            run(scenario._main())
        except BaseException as exc:
            scenario.raised = exc
        if scenario.faults.kind in ("KeyboardInterrupt", "SystemExit"):
            forget_frames(scenario.raised, scenario.faults.fired)
