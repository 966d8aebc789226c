"""Which circuit breaker guards a task, and what happens when one changes state.

A task's breaker key is, in order: what the ``circuit_key`` function of
``execute()`` returns; ``spec["circuit_key"]`` for a dict spec (0.3.0); the
task's group. A key function that raises, or a key that is not hashable,
raises ``CircuitKeyError`` naming the task, which fails that task alone.
Those keys live in the executor's registry (shared by its
runs, or by several executors when one registry is passed to them). With
none of them, the task id is the key, and that breaker lasts one run only:
0.3.0 kept task-id breakers forever, so a healthy function could be
failed fast by a previous run's trouble.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from wave_executor._core.breaker import BreakerSettings, CircuitBreaker, CircuitBreakerRegistry
from wave_executor._core.breaker import CircuitState as State
from wave_executor._core.logs import fields, get_logger
from wave_executor._core.names import EventType
from wave_executor._runtime.events import EventSink
from wave_executor._runtime.settings import Groups, KeyFunction
from wave_executor.errors import CircuitKeyError

__all__ = ["CircuitGate"]

log = get_logger("breaker")

_EVENT = {
    State.OPEN: EventType.CIRCUIT_OPENED,
    State.HALF_OPEN: EventType.CIRCUIT_HALF_OPEN,
    State.CLOSED: EventType.CIRCUIT_CLOSED,
}


def _hashable(key: Any, task_id: Any, what: str) -> Hashable:
    try:
        hash(key)
    except Exception as exc:
        why = f"{what} an unhashable {type(key).__name__} ({key!r}): {exc}"
        raise CircuitKeyError(task_id, why) from exc
    return key  # type: ignore[no-any-return]


class CircuitGate:
    """The breakers of one run, created lazily on a key's first failure."""

    def __init__(
        self,
        settings: BreakerSettings | None,
        shared: CircuitBreakerRegistry,
        key_function: KeyFunction | None,
        groups: Groups | None,
        events: EventSink,
        clock: Callable[[], float],
        run_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.shared = shared
        self.local = CircuitBreakerRegistry()
        self._key_function = key_function
        self._groups = groups
        self._events = events
        self._clock = clock
        self._run_id = run_id
        #: Fan-out: child index -> parent index, and the specs (None: no fan-out).
        self._parent_of: Mapping[int, int] | None = None
        self._specs: Mapping[Any, Any] = {}

    def inherit(self, parent_of: Mapping[int, int], specs: Mapping[Any, Any]) -> None:
        """Fan-out children share their parent's breaker unless the key function
        names one for them."""
        self._parent_of = parent_of
        self._specs = specs

    @property
    def enabled(self) -> bool:
        return self.settings is not None

    def key_of(self, i: int, task_id: Any, spec: Any) -> tuple[Hashable, CircuitBreakerRegistry]:
        if self._key_function is not None:
            try:
                key = self._key_function(task_id, spec)
            except (Exception, asyncio.CancelledError) as exc:  # a sync call: nobody cancelled it
                why = f"the circuit_key function raised {type(exc).__name__}: {exc}"
                raise CircuitKeyError(task_id, why) from exc
            if key is not None:
                return _hashable(key, task_id, "the circuit_key function returned"), self.shared
        parent_of = self._parent_of
        if parent_of is not None and i in parent_of:  # a fan-out child: its parent's key
            parent = task_id.parent
            return self.key_of(parent_of[i], parent, self._specs[parent])
        if isinstance(spec, dict) and "circuit_key" in spec:
            return _hashable(spec["circuit_key"], task_id, 'spec["circuit_key"] is'), self.shared
        if self._groups is not None:
            g = self._groups.group_of[i]
            if g:
                return self._groups.names[g], self.shared
        return task_id, self.local

    def find(self, i: int, task_id: Any, spec: Any) -> CircuitBreaker | None:
        key, registry = self.key_of(i, task_id, spec)
        return registry.get(key)

    def create(self, i: int, task_id: Any, spec: Any) -> CircuitBreaker | None:
        if self.settings is None:
            return None
        key, registry = self.key_of(i, task_id, spec)
        return registry.get_or_create(key, self.settings, self._clock)

    # -- calls that may change a breaker's state (and so log and emit an event) --
    # ``task_id`` and ``attempt`` name the attempt that moved it (for the log line).

    def admit(self, breaker: CircuitBreaker, now: float, task_id: Any, attempt: int) -> bool:
        before = breaker.state
        allowed = breaker.allow_request(now)
        self._changed(breaker, before, task_id, attempt)
        return allowed

    def success(self, breaker: CircuitBreaker, now: float, task_id: Any, attempt: int) -> None:
        before = breaker.state
        breaker.record_success(now)
        self._changed(breaker, before, task_id, attempt)

    def failure(self, breaker: CircuitBreaker, now: float, task_id: Any, attempt: int) -> None:
        before = breaker.state
        breaker.record_failure(now)
        self._changed(breaker, before, task_id, attempt)

    def _changed(self, breaker: CircuitBreaker, before: State, task_id: Any, attempt: int) -> None:
        after = breaker.state
        if after is before:
            return
        run_id = self._run_id
        log.info(
            "run %s: circuit %r %s -> %s (task %r, attempt %d)",
            run_id, breaker.key, before.value, after.value, task_id, attempt,
            extra=fields(run_id, task_id, attempt),
        )  # fmt: skip
        if self._events.active:
            self._events.emit(
                _EVENT[after],
                None,
                circuit_key=breaker.key,
                previous_state=before.value,
                failure_count=breaker.failure_count,
                success_count=breaker.success_count,
            )
