"""``WaveReconciler`` and its records (0.3.0 import path).

The supervisor lives in ``wave_executor._runtime``; this module re-exports
it. See ``docs/reconciler.md`` for the restart rules and the differences
from 0.3.0.
"""

from __future__ import annotations

from wave_executor._core.reconcile import (
    CheckpointStore,
    ReconcileStatus,
    ReconcileTaskSpec,
    ReconcileTaskState,
    SupervisedStatus,
)
from wave_executor._core.restart import RestartPolicy, RestartSettings
from wave_executor._runtime.reconciler import InMemoryCheckpointStore, WaveReconciler
from wave_executor._runtime.supervised_runs import mark_ready

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
