"""0.3.0 import path for configuration and result records."""

from __future__ import annotations

from wave_executor._core.config import AggregationStrategy, WaveConfig
from wave_executor._core.records import TaskResult
from wave_executor._core.retry import RetryPolicy
from wave_executor._core.waves import ExecutionContext, WaveDefinition, WaveResult

__all__ = [
    "AggregationStrategy",
    "ExecutionContext",
    "RetryPolicy",
    "TaskResult",
    "WaveConfig",
    "WaveDefinition",
    "WaveResult",
]
