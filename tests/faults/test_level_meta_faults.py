"""Every kind of exception at every call into user code of a level run and a MetaDAG run.

The same sites as a DAG run where they exist (task bodies, sync and async
event callbacks, the ``circuit_key`` and ``groups`` functions), on the
virtual clock: no store, so no thread. An ordinary exception must leave the
caller a result, with one terminal event per task; a ``KeyboardInterrupt``,
``SystemExit`` or ``BaseException`` of the user's own from a body or a key
function reaches the caller (a callback's own ``BaseException`` is logged
like any callback error).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.faults.harness import (
    KINDS,
    Faults,
    forget_frames,
    loop_torn_down,
    no_new_threads,
    open_timers,
    outcome_of,
    pending_tasks,
    run,
    tally,
    terminal_counts,
    watch_events,
)
from wave_executor import LevelExecutor, MetaDAG, MetaDAGNodeSpec, RetryPolicy, WaveConfig
from wave_executor.testing import VirtualClockEventLoop

TASKS = {t: {"n": n} for n, t in enumerate("abcdef")}
DEPS = {"b": ["a"], "c": ["a"], "d": ["b", "c"], "f": ["e"]}
CONFIG = WaveConfig(
    max_parallel_per_wave=3, retry_policy=RetryPolicy(max_retries=1, base_delay=0.5)
)


def user_code(faults: Faults) -> dict[str, Callable[..., Any]]:
    """The scenario's user code, every piece a fault site."""
    attempts: dict[Any, int] = {}

    async def body(task_id: Any, spec: Any) -> Any:
        faults.hit("body.call")
        attempts[task_id] = attempts.get(task_id, 0) + 1
        await asyncio.sleep(1)
        faults.hit("body.resume")
        if task_id == "e" and attempts[task_id] == 1:
            raise ConnectionError("e failed once")
        return task_id

    def key_of(task_id: Any, spec: Any) -> str:
        faults.hit("circuit_key")
        return "service"

    def group_of(task_id: Any, spec: Any) -> str | None:
        faults.hit("groups")
        return "left" if task_id in ("b", "e") else None

    return {
        "body": body,
        "key_of": key_of,
        "group_of": group_of,
    }


async def level_run(faults: Faults, events: list[tuple[str, dict[str, Any]]]) -> Any:
    code = user_code(faults)
    executor = LevelExecutor(CONFIG)
    executor.on_event(lambda t, e: events.append((t, e)))
    watch_events(executor, faults)
    return await executor.execute(
        TASKS, DEPS, code["body"], circuit_key=code["key_of"], groups=code["group_of"]
    )


async def meta_run(faults: Faults, events: list[tuple[str, dict[str, Any]]]) -> Any:
    code = user_code(faults)
    meta = MetaDAG(task_events=True)
    meta.add_node(MetaDAGNodeSpec("first", TASKS, code["body"], task_dependencies=DEPS))
    meta.add_node(MetaDAGNodeSpec("second", {"x": {}, "y": {}}, code["body"]), depends_on="first")
    meta.on_event(lambda t, e: events.append((t, e)))
    watch_events(meta, faults)
    return await meta.execute()


RUNS: dict[str, Callable[[Faults, list[tuple[str, dict[str, Any]]]], Awaitable[Any]]] = {
    "LevelExecutor": level_run,
    "MetaDAG": meta_run,
}
SITES = {
    "LevelExecutor": [
        "body.call",
        "body.resume",
        "callback.sync",
        "callback.async",
        "circuit_key",
        "groups",
    ],
    "MetaDAG": ["body.call", "body.resume", "callback.sync", "callback.async"],
}
#: Called before anything runs: an ordinary exception there may reach the caller.
MAY_RAISE = {"groups"}


def one_run(entry: str, faults: Faults) -> tuple[Any, BaseException | None, list[Any]]:
    events: list[tuple[str, dict[str, Any]]] = []
    raised: BaseException | None = None
    result: Any = None

    async def main() -> Any:
        nonlocal raised, result
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(3600):
                result = await RUNS[entry](faults, events)
        except GeneratorExit:  # the loop was torn down (KeyboardInterrupt): let it close us
            raise
        except BaseException as exc:
            raised = exc
        await asyncio.sleep(0)
        assert not pending_tasks(loop), pending_tasks(loop)
        assert not open_timers(loop), open_timers(loop)
        if isinstance(raised, TimeoutError) and faults.fired is not None:
            raise AssertionError(f"{entry} hung after {faults.fired!r}")

    with no_new_threads(), loop_torn_down(faults.kind):
        try:
            run(main(), VirtualClockEventLoop)
        except BaseException as exc:  # KeyboardInterrupt, SystemExit escape the loop
            raised = exc
        if faults.kind in ("KeyboardInterrupt", "SystemExit"):
            forget_frames(raised, faults.fired)
    return result, raised, events


#: A KeyboardInterrupt or SystemExit inside a MetaDAG (task groups within task
#: groups) makes asyncio close the loop with tasks still pending, and on
#: Python 3.11 that leaves the interpreter's C recursion counter off: a later
#: compile() (pytest rewriting a module) fails with "SystemError: AST
#: constructor recursion depth mismatch". They are injected into DAG, level
#: and reconciler runs, not here.
SKIP = {("MetaDAG", "KeyboardInterrupt"), ("MetaDAG", "SystemExit")}
CASES = [
    (entry, site, kind)
    for entry, sites in SITES.items()
    for site in sites
    for kind in KINDS
    if (entry, kind) not in SKIP
]


@pytest.mark.parametrize(("entry", "site", "kind"), CASES)
def test_a_fault_at_every_call_of_a_site(entry: str, site: str, kind: str) -> None:
    clean = Faults()
    _, raised, _ = one_run(entry, clean)
    assert raised is None, raised
    calls = clean.calls[site]
    assert calls > 0, f"{entry} never calls {site}"
    for k in range(1, calls + 1):
        faults = Faults(site, k, kind)
        _, raised, events = one_run(entry, faults)
        assert faults.fired is not None
        tally(entry.lower(), site, kind, outcome_of(faults.fired, raised))
        fatal = kind in ("KeyboardInterrupt", "SystemExit") or (
            kind == "BaseException" and not site.startswith("callback.")
        )
        if fatal:
            assert type(raised) is type(faults.fired), f"{kind} at {site}: {raised!r}"
        elif site in MAY_RAISE:
            assert raised is None or type(raised) is type(faults.fired), raised
        else:
            assert raised is None, f"{kind} at {site} reached the caller: {raised!r}"
            task_events = [(t, e) for t, e in events if t.startswith("TASK_")]
            counts = terminal_counts(task_events)
            assert all(n == 1 for n in counts.values()), counts
