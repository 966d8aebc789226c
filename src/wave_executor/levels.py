"""Level mode: run a graph wave by wave (by dependency depth), with barriers.

See ``docs/levels.md``. The code lives in ``wave_executor._runtime.levels``
and ``wave_executor._core.aggregation``; this module is the import path.
"""

from __future__ import annotations

from wave_executor._core.config import AggregationStrategy
from wave_executor._core.waves import ExecutionContext, WaveDefinition, WaveResult
from wave_executor._runtime.levels import LevelExecutor

__all__ = [
    "AggregationStrategy",
    "ExecutionContext",
    "LevelExecutor",
    "WaveDefinition",
    "WaveResult",
]
