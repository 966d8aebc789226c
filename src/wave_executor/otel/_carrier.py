"""The trace context carried to a body that runs in another process (W3C carrier)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import context, propagate

__all__ = ["CarriedBody", "carried"]


@dataclass(frozen=True, slots=True)
class CarriedBody:
    """``body`` with the trace context it was submitted in, made current where it runs.

    Pickled to the worker process (or Dask worker) with the body: the worker
    needs ``wave_executor`` and ``opentelemetry-api`` importable, and its own
    tracer provider for the body's spans to be exported from there.
    """

    body: Callable[[Any, Any], Any]
    carrier: dict[str, str]

    def __call__(self, task_id: Any, spec: Any) -> Any:
        token = context.attach(propagate.extract(self.carrier))
        try:
            return self.body(task_id, spec)
        finally:
            context.detach(token)


def carried(body: Callable[[Any, Any], Any]) -> CarriedBody:
    """``body`` with the current trace context (the attempt's span) in a carrier."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return CarriedBody(body, carrier)
