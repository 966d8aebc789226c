"""``WaveReconciler``: keeps a desired set of long-running tasks alive.

It holds a *desired state* (task specs, dependencies, restart policies) and
makes the running tasks match it: starts tasks once their dependencies are
satisfied, restarts them by policy with capped exponential backoff, blocks
crash loops, and applies hot updates. It reacts to change (a task exits,
``update()`` is called, a restart timer fires), not to a poll tick;
``poll_interval_s`` is only the period of a safety-net resync.

See ``docs/reconciler.md`` for the restart rules and the differences from 0.3.0.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Any

from wave_executor._core.checks import check_number, is_number
from wave_executor._core.config import WaveConfig
from wave_executor._core.graph import build_graph
from wave_executor._core.reconcile import (
    CheckpointStore,
    ReconcileStatus,
    ReconcileTaskSpec,
    ReconcileTaskState,
    SupervisedStatus,
)
from wave_executor._core.restart import RestartPolicy, RestartSettings
from wave_executor._core.restart_args import restart_args
from wave_executor._runtime.events import EventCallback
from wave_executor._runtime.supervised_runs import mark_ready
from wave_executor._runtime.supervisor import Supervisor, SupervisorSettings

__all__ = [
    "CheckpointStore",
    "InMemoryCheckpointStore",
    "ReconcileStatus",
    "ReconcileTaskSpec",
    "ReconcileTaskState",
    "RestartPolicy",
    "RestartSettings",
    "SupervisedStatus",
    "WaveReconciler",
    "mark_ready",
]

_Entry = tuple[ReconcileTaskSpec, ReconcileTaskState, set[Any]]
_S = SupervisedStatus


class WaveReconciler:
    """Supervises long-running async tasks against a desired state.

    ``task_executor(task_id, spec)`` runs one task. ``config`` contributes
    ``max_parallel_per_wave`` (runs at once) and ``emit_events``; its
    ``default_task_timeout`` does *not* apply: a supervised run has no
    timeout unless ``update(timeouts=...)`` sets one. ``restart_settings``
    holds the reconciler-wide restart knobs (backoff cap, jitter, crash-loop
    window, healthy-run reset, ``rest_for_one``).
    """

    def __init__(
        self,
        task_executor: Callable[[Any, Any], Awaitable[Any]],
        config: WaveConfig | None = None,
        poll_interval_s: float = 2.0,
        checkpoint_store: CheckpointStore | None = None,
        reconciler_id: str = "default",
        inject_dep_outputs: bool = False,
        *,
        restart_settings: RestartSettings | None = None,
    ) -> None:
        if not callable(task_executor):
            raise TypeError(f"task_executor must be an async callable, got {task_executor!r}")
        check_number("poll_interval_s", poll_interval_s, above=0, hint=" (math.inf: no resync)")
        if config is not None and not isinstance(config, WaveConfig):
            raise TypeError(f"config must be a WaveConfig or None, got {config!r}")
        if not isinstance(reconciler_id, str):
            raise TypeError(f"reconciler_id must be a string, got {reconciler_id!r}")
        if checkpoint_store is not None and not callable(
            getattr(checkpoint_store, "save_reconciler_state", None)
        ):
            raise TypeError(
                "checkpoint_store must have the CheckpointStore methods "
                f"(save_reconciler_state, load_reconciler_state), got {checkpoint_store!r}"
            )
        if restart_settings is not None and not isinstance(restart_settings, RestartSettings):
            raise TypeError(
                f"restart_settings must be a RestartSettings or None, got {restart_settings!r}"
            )
        self.task_executor = task_executor
        self.config = config if config is not None else WaveConfig()
        self.poll_interval_s = poll_interval_s
        self.reconciler_id = reconciler_id
        self.restart_settings = (
            restart_settings if restart_settings is not None else RestartSettings()
        )
        settings = SupervisorSettings(
            cap=self.config.max_parallel_per_wave,
            resync_s=poll_interval_s,
            inject_dep_outputs=inject_dep_outputs,
            emit_events=self.config.emit_events,
            restart=self.restart_settings,
        )
        self._sup = Supervisor(task_executor, settings, reconciler_id, checkpoint_store)
        self._stops: set[asyncio.Future[None]] = set()  # stop() calls still waiting

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Start supervising (idempotent). The first start restores from the checkpoint store.

        Called while a ``stop()`` is still waiting for runs to end, it waits
        for that stop to return first (so the stop's runs are not followed
        by new ones it would wait for too), then starts. A ``stop()`` called
        while this is still restoring wins: this returns without starting.
        """
        while self._stops:
            await asyncio.wait(set(self._stops))
        await self._sup.start()

    async def stop(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 (see below)
        """Start nothing more; cancel and await every run (they end "stopped").

        No asyncio task of the reconciler survives this call. A later
        ``start()`` resumes the tasks that were stopped here.

        A run whose body swallows cancellation is cancelled again every
        second and named in a WARNING (logger ``wave_executor.cancel``) once it is
        5 s late. With ``timeout=None`` this waits for it as long as it
        takes; otherwise, after ``timeout`` seconds, ``TimeoutError`` names
        the tasks still running. They stay tracked and keep being cancelled,
        and a later ``stop()`` waits for them again (and only then flushes).
        A ``timeout`` argument, not ``asyncio.timeout()`` around the call: a
        cancelled ``stop()`` could not say which tasks held it up.
        """
        if timeout is not None and (not is_number(timeout) or not timeout >= 0):  # NaN too
            raise ValueError(f"timeout must be >= 0 seconds or None, got {timeout!r}")
        done = asyncio.get_running_loop().create_future()
        self._stops.add(done)
        try:
            await self._sup.stop(timeout)
        finally:
            self._stops.discard(done)
            done.set_result(None)

    async def __aenter__(self) -> WaveReconciler:
        """``async with WaveReconciler(...) as r:`` starts it ..."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """... and stops it on the way out, waiting for every run as ``stop()`` does."""
        await self.stop()

    @property
    def running(self) -> bool:
        return self._sup.running

    # -- desired state ---------------------------------------------------------

    async def update(
        self,
        tasks: Mapping[Any, Any],
        dependencies: Mapping[Any, Iterable[Any]] | None = None,
        policies: Mapping[Any, str] | str | None = None,
        max_restart_attempts: Mapping[Any, int] | int | None = None,
        restart_backoff_base: Mapping[Any, float] | float | None = None,
        *,
        timeouts: Mapping[Any, float | None] | float | None = None,
        keep_unspecified: bool = False,
    ) -> None:
        """Replace the desired state; safe while running.

        New tasks start as soon as their dependencies allow; a task whose
        spec changed is cancelled and restarted with a fresh restart quota;
        unchanged tasks are not touched; removed tasks are cancelled, awaited
        and end "stopped" before this returns -- unless a run swallows
        cancellation: this waits for it 5 s at most, then leaves it to the
        reconciler (still "running", cancelled again every second, named in a
        WARNING) so that one bad task never holds the caller. ``dependencies`` replaces the
        previous dependencies entirely and takes effect at once.

        ``policies``, ``max_restart_attempts``, ``restart_backoff_base`` and
        ``timeouts`` take a dict ``task_id -> value`` (unlisted tasks get the
        default: "on-failure", 5, 3.0 s, no timeout) or one value for all.

        By default each call states the whole desired state: what it leaves
        out gets the default (no dependencies, the default restart settings),
        whatever an earlier call set. With ``keep_unspecified=True``, a task
        already known keeps the dependencies and restart settings this call
        does not give it: an argument left at ``None`` keeps them for every
        task, and a dict keeps them for the tasks it does not list (new tasks
        still get the defaults). ``tasks`` is still the whole set of tasks, so
        a task left out of it is removed either way. To clear a kept value,
        give it: ``dependencies={"b": []}``, ``timeouts={"b": math.inf}``.

        Raises ``ValueError`` for a dependency on an unknown task (naming it),
        an unknown policy, or settings for tasks not in ``tasks``;
        ``WaveCircularDependencyError`` for a cycle. Nothing changes then.
        """
        if keep_unspecified and isinstance(tasks, Mapping):
            dependencies = self._kept_dependencies(tasks, dependencies)
        specs, deps = _desired_state(
            tasks, dependencies, policies, max_restart_attempts, restart_backoff_base, timeouts
        )
        if keep_unspecified:
            given = (policies, max_restart_attempts, restart_backoff_base, timeouts)
            specs = _kept_settings(specs, self._sup.desired, given)
        await self._sup.wait_ended(self._sup.apply(specs, deps))
        await self._sup.settle()

    def _kept_dependencies(
        self, tasks: Mapping[Any, Any], dependencies: Mapping[Any, Iterable[Any]] | None
    ) -> dict[Any, Iterable[Any]]:
        """The current dependencies of the tasks still wanted, overridden by those given.

        A kept dependency on a task that ``tasks`` leaves out is refused (it
        would otherwise vanish unnoticed).
        """
        given = dependencies or {}
        kept: dict[Any, Iterable[Any]] = {}
        for task_id, upstream in self._sup.deps.items():
            if task_id not in tasks or task_id in given:
                continue
            gone = [d for d in upstream if d not in tasks]
            if gone:
                raise ValueError(
                    f"task {task_id!r} keeps its dependencies {list(upstream)!r} "
                    f"(keep_unspecified=True), but {gone[0]!r} is not in tasks; "
                    f"give its dependencies to change them: dependencies={{{task_id!r}: [...]}}"
                )
            kept[task_id] = upstream
        kept.update(given)
        return kept

    # -- observation -----------------------------------------------------------

    def on_event(self, callback: EventCallback) -> EventCallback:
        """Register ``callback(event_type, event)``, sync or async; returns it (a decorator)."""
        return self._sup.events.subscribe(callback)

    def remove_event_callback(self, callback: EventCallback) -> None:
        self._sup.events.unsubscribe(callback)

    def get_status(self) -> ReconcileStatus:
        """Counts by status over every task the reconciler knows (removed ones are "stopped")."""
        states = {task_id: record.status for task_id, record in self._sup.records.items()}
        counts = Counter(states.values())
        return ReconcileStatus(
            desired_task_count=len(self._sup.desired),
            running_count=counts[_S.RUNNING],
            success_count=counts[_S.SUCCESS],
            failed_count=counts[_S.FAILED] + counts[_S.TIMEOUT],
            pending_count=counts[_S.PENDING],
            stopped_count=counts[_S.STOPPED],
            blocked_count=counts[_S.BLOCKED],
            task_states=dict(states),
            uptime_s=self._sup.uptime(),
            reconcile_cycle=self._sup.cycles,
            skipped_count=counts[_S.SKIPPED],
        )

    def get_task_state(self, task_id: Hashable) -> ReconcileTaskState:
        """A snapshot of one task's state; raises ``KeyError`` for an unknown id."""
        return self._sup.snapshot(self._sup.records[task_id])

    async def wait_until_complete(
        self,
        timeout: float = 300.0,  # noqa: ASYNC109 (0.3.0's signature)
        poll_interval: float = 0.1,
    ) -> bool:
        """True once every task not under "always" is terminal; False after ``timeout`` s.

        A task waiting to restart is "pending", so this never returns True
        while a restart is due. It wakes on state changes; ``poll_interval``
        is accepted for 0.3.0 compatibility and unused.
        """
        if timeout is not None and (not is_number(timeout) or math.isnan(timeout)):
            raise ValueError(f"timeout must be a number of seconds, got {timeout!r}")
        return await self._sup.wait_complete(timeout)


class InMemoryCheckpointStore:
    """A ``CheckpointStore`` in this process's memory (for tests and single processes).

    It deep-copies what it saves and what it loads, so the store and a
    reconciler never share a live object; removed tasks are deleted. Specs
    and outputs must be deep-copyable.
    """

    def __init__(self) -> None:
        self._data: dict[str, dict[Any, _Entry]] = {}

    async def save_reconciler_state(
        self,
        reconciler_id: str,
        task_id: Any,
        spec: ReconcileTaskSpec | None,
        state: ReconcileTaskState,
        deps: set[Any],
    ) -> None:
        if spec is None:
            await self.delete_reconciler_state(reconciler_id, task_id)
            return
        entry = copy.deepcopy((spec, state, set(deps)))
        self._data.setdefault(reconciler_id, {})[task_id] = entry

    async def delete_reconciler_state(self, reconciler_id: str, task_id: Any) -> None:
        self._data.get(reconciler_id, {}).pop(task_id, None)

    async def load_reconciler_state(
        self, reconciler_id: str
    ) -> tuple[dict[Any, ReconcileTaskSpec], dict[Any, ReconcileTaskState], dict[Any, set[Any]]]:
        entries = copy.deepcopy(self._data.get(reconciler_id, {}))
        specs = {task_id: entry[0] for task_id, entry in entries.items()}
        states = {task_id: entry[1] for task_id, entry in entries.items()}
        deps = {task_id: entry[2] for task_id, entry in entries.items()}
        return specs, states, deps

    def task_ids(self, reconciler_id: str) -> list[Any]:
        """The tasks stored for ``reconciler_id`` (for inspection)."""
        return list(self._data.get(reconciler_id, {}))


# -- argument checking ---------------------------------------------------------


#: ``ReconcileTaskSpec`` fields set by ``update()``'s restart arguments, in their order.
_SETTINGS = ("restart_policy", "max_restart_attempts", "restart_backoff_base", "timeout_s")


def _kept_settings(
    specs: dict[Hashable, ReconcileTaskSpec],
    current: Mapping[Hashable, ReconcileTaskSpec],
    given: tuple[Any, ...],
) -> dict[Hashable, ReconcileTaskSpec]:
    """``specs`` with the restart settings ``given`` leaves out taken from ``current``."""
    out: dict[Hashable, ReconcileTaskSpec] = {}
    for task_id, spec in specs.items():
        old = current.get(task_id)
        if old is not None:
            kept = {
                name: getattr(old, name)
                for name, value in zip(_SETTINGS, given, strict=True)
                if value is None or (isinstance(value, Mapping) and task_id not in value)
            }
            if kept:
                spec = dataclasses.replace(spec, **kept)
        out[task_id] = spec
    return out


def _desired_state(
    tasks: Mapping[Any, Any],
    dependencies: Mapping[Any, Iterable[Any]] | None,
    policies: Mapping[Any, str] | str | None,
    max_restart_attempts: Mapping[Any, int] | int | None,
    restart_backoff_base: Mapping[Any, float] | float | None,
    timeouts: Mapping[Any, float | None] | float | None,
) -> tuple[dict[Hashable, ReconcileTaskSpec], dict[Hashable, tuple[Hashable, ...]]]:
    """Validate ``update()``'s arguments and build the desired state from them."""
    if not isinstance(tasks, Mapping):
        raise TypeError(f"tasks must be a mapping task_id -> spec, got {type(tasks).__name__}")
    if dependencies is not None and not isinstance(dependencies, Mapping):
        raise TypeError(
            f"dependencies must be a mapping of task id to its dependencies, got {dependencies!r}"
        )
    deps: dict[Any, Any] = {}
    for task_id, upstream in (dependencies or {}).items():
        # Strings go through unchanged so that build_graph names the mistake.
        text = isinstance(upstream, str | bytes)
        try:
            deps[task_id] = upstream if text else list(dict.fromkeys(upstream))
        except TypeError:  # build_graph names the task and the value
            deps[task_id] = upstream
    build_graph(tasks, deps)  # unknown ids -> ValueError naming them; cycles
    args = restart_args(tasks, policies, max_restart_attempts, restart_backoff_base, timeouts)
    specs = {
        t: ReconcileTaskSpec(
            t, spec, args.policy[t], args.attempts[t], args.base[t], args.timeout[t]
        )
        for t, spec in tasks.items()
    }
    return specs, {task_id: tuple(up) for task_id, up in deps.items() if up}
