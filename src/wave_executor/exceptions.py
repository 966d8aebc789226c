"""0.3.0 import path for the errors and the ``WaveSignal`` record."""

from __future__ import annotations

from wave_executor._core.records import WaveSignal
from wave_executor.errors import (
    CircuitBreakerOpenError,
    CircuitKeyError,
    GraphError,
    IllegalTransitionError,
    UnknownDependencyError,
    WaveCircularDependencyError,
    WaveExecutorError,
)

__all__ = [
    "CircuitBreakerOpenError",
    "CircuitKeyError",
    "GraphError",
    "IllegalTransitionError",
    "UnknownDependencyError",
    "WaveCircularDependencyError",
    "WaveExecutorError",
    "WaveSignal",
]
