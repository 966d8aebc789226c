"""What every executor holds beyond one run: its config, event callbacks, keyed
breakers and default backend."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from wave_executor._core.backend import Backend
from wave_executor._core.breaker import CircuitBreakerRegistry
from wave_executor._core.config import WaveConfig
from wave_executor._runtime.attempt import resolve_backends
from wave_executor._runtime.events import EventCallback, EventHub

__all__ = ["ExecutorBase"]


class ExecutorBase:
    """Event callbacks and breakers with an explicit key belong to the
    executor, so they are shared by its runs (and, for breakers, by any
    executor given the same registry)."""

    def __init__(
        self,
        config: WaveConfig | None = None,
        *,
        circuit_breakers: CircuitBreakerRegistry | None = None,
        backend: Backend | None = None,
    ) -> None:
        if config is not None and not isinstance(config, WaveConfig):
            raise TypeError(f"config must be a WaveConfig or None, got {config!r}")
        registry = circuit_breakers
        if registry is not None and not isinstance(registry, CircuitBreakerRegistry):
            raise TypeError(
                f"circuit_breakers must be a CircuitBreakerRegistry or None, got {registry!r}"
            )
        self.config = config if config is not None else WaveConfig()
        self._hub = EventHub()
        self._breakers = (
            circuit_breakers if circuit_breakers is not None else CircuitBreakerRegistry()
        )
        resolve_backends({}, backend, None)  # a backend that is not one: TypeError now
        #: Where task bodies run unless ``execute()`` says otherwise (None: in the loop).
        self.backend = backend

    @property
    def circuit_breakers(self) -> CircuitBreakerRegistry:
        """The executor's keyed breakers (pass it to another executor to share them)."""
        return self._breakers

    def on_event(self, callback: EventCallback) -> EventCallback:
        """Register ``callback(event_type, event)`` (sync or async); returns it, so it
        can be used as a decorator."""
        return self._hub.subscribe(callback)

    def remove_event_callback(self, callback: EventCallback) -> None:
        self._hub.unsubscribe(callback)

    def circuit_breaker_states(self) -> dict[Hashable, dict[str, Any]]:
        """States of the keyed breakers that exist."""
        return self._breakers.states()

    def reset_circuit_breakers(self) -> None:
        """Forget every breaker (all circuits closed)."""
        self._breakers.reset()
