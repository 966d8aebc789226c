"""0.3.0 import path for the DAG executor and its companions."""

from __future__ import annotations

from wave_executor._core.breaker import CircuitBreaker, CircuitState
from wave_executor._core.records import DAGExecutionResult, EscalationReport
from wave_executor._runtime.executor import DAGExecutor
from wave_executor._runtime.limiter import AdaptiveSemaphore
from wave_executor.errors import CircuitBreakerOpenError

__all__ = [
    "AdaptiveSemaphore",
    "CircuitBreaker",
    "CircuitBreakerOpenError",
    "CircuitState",
    "DAGExecutionResult",
    "DAGExecutor",
    "EscalationReport",
]
