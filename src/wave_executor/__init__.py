"""wave-executor: dependency-aware async task scheduling.

Each task starts the moment its own dependencies have succeeded; when more
tasks are ready than slots, the one on the longest remaining chain goes
first. See the README for a tour.
"""

from wave_executor._core.breaker import CircuitBreaker, CircuitBreakerRegistry, CircuitState
from wave_executor._core.config import AggregationStrategy, WaveConfig
from wave_executor._core.fan_out import ChildId
from wave_executor._core.names import EventType, StopReason
from wave_executor._core.records import (
    DAGExecutionResult,
    EscalationReport,
    TaskResult,
    WaveSignal,
)
from wave_executor._core.retry import RetryPolicy
from wave_executor._core.status import TaskStatus
from wave_executor._core.waves import ExecutionContext, WaveDefinition, WaveResult
from wave_executor._runtime.executor import DAGExecutor
from wave_executor._runtime.levels import LevelExecutor
from wave_executor._runtime.limiter import AdaptiveSemaphore, Admission, LimiterStatistics
from wave_executor._version import __version__
from wave_executor.errors import (
    CircuitBreakerOpenError,
    CircuitKeyError,
    GraphError,
    UnknownDependencyError,
    WaveCircularDependencyError,
    WaveExecutorError,
)
from wave_executor.flow import Flow, FlowRun, Handle
from wave_executor.meta import MetaDAG, MetaDAGNodeResult, MetaDAGNodeSpec, MetaDAGResult
from wave_executor.reconciler import (
    ReconcileStatus,
    ReconcileTaskSpec,
    ReconcileTaskState,
    RestartPolicy,
    RestartSettings,
    WaveReconciler,
)

__all__ = [
    "AdaptiveSemaphore",
    "Admission",
    "AggregationStrategy",
    "CircuitBreaker",
    "CircuitBreakerOpenError",
    "CircuitKeyError",
    "CircuitBreakerRegistry",
    "CircuitState",
    "ChildId",
    "DAGExecutionResult",
    "DAGExecutor",
    "EscalationReport",
    "EventType",
    "ExecutionContext",
    "Flow",
    "FlowRun",
    "GraphError",
    "Handle",
    "LevelExecutor",
    "LimiterStatistics",
    "MetaDAG",
    "MetaDAGNodeResult",
    "MetaDAGNodeSpec",
    "MetaDAGResult",
    "ReconcileStatus",
    "ReconcileTaskSpec",
    "ReconcileTaskState",
    "RestartPolicy",
    "RestartSettings",
    "RetryPolicy",
    "StopReason",
    "TaskResult",
    "TaskStatus",
    "UnknownDependencyError",
    "WaveCircularDependencyError",
    "WaveConfig",
    "WaveDefinition",
    "WaveExecutorError",
    "WaveReconciler",
    "WaveResult",
    "WaveSignal",
    "__version__",
]
