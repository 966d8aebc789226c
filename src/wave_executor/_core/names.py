"""Closed sets of names, each a ``StrEnum``: event types, stop reasons, run outcomes.

Members are ``str`` subclasses, so code written against plain strings
(``event_type == "TASK_FAILED"``, ``result.stopped_reason ==
"total_timeout"``) keeps working, and JSON sees plain strings. The payload
of every event is listed in ``docs/events.md``; ``_core/event_payloads.py``
types the common ones.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["EventType", "RunOutcome", "StopReason"]


class EventType(StrEnum):
    """Every event a callback can receive, by who sends it."""

    # DAG runs and level mode
    EXECUTION_STARTED = "EXECUTION_STARTED"
    EXECUTION_COMPLETED = "EXECUTION_COMPLETED"
    TASK_STARTED = "TASK_STARTED"
    TASK_COMPLETED = "TASK_COMPLETED"
    TASK_RETRYING = "TASK_RETRYING"
    TASK_FAILED = "TASK_FAILED"
    TASK_ESCALATED = "TASK_ESCALATED"
    TASK_SKIPPED = "TASK_SKIPPED"
    CONCURRENCY_CHANGED = "CONCURRENCY_CHANGED"
    CIRCUIT_OPENED = "CIRCUIT_OPENED"
    CIRCUIT_HALF_OPEN = "CIRCUIT_HALF_OPEN"
    CIRCUIT_CLOSED = "CIRCUIT_CLOSED"
    # level mode only
    WAVE_STARTED = "WAVE_STARTED"
    WAVE_COMPLETED = "WAVE_COMPLETED"
    # MetaDAG
    META_EXECUTION_STARTED = "META_EXECUTION_STARTED"
    META_EXECUTION_COMPLETED = "META_EXECUTION_COMPLETED"
    NODE_STARTED = "NODE_STARTED"
    NODE_COMPLETED = "NODE_COMPLETED"
    NODE_SKIPPED = "NODE_SKIPPED"
    # WaveReconciler (it also sends TASK_STARTED, TASK_COMPLETED, TASK_FAILED, TASK_SKIPPED)
    RECONCILER_STARTED = "RECONCILER_STARTED"
    RECONCILER_STOPPED = "RECONCILER_STOPPED"
    DESIRED_STATE_UPDATED = "DESIRED_STATE_UPDATED"
    TASK_PENDING = "TASK_PENDING"
    TASK_READY = "TASK_READY"
    TASK_STOPPED = "TASK_STOPPED"
    TASK_BLOCKED = "TASK_BLOCKED"
    TASK_RESTART_SCHEDULED = "TASK_RESTART_SCHEDULED"


class StopReason(StrEnum):
    """Why a run ended before every task had its own outcome."""

    #: ``WaveConfig.total_execution_timeout`` passed.
    TOTAL_TIMEOUT = "total_timeout"
    #: A task failed for good under ``stop_on_first_error``.
    STOP_ON_FIRST_ERROR = "stop_on_first_error"
    #: Level mode: a wave had tasks that did not succeed (``allow_partial_success=False``).
    ALLOW_PARTIAL_SUCCESS = "allow_partial_success"
    #: Level mode: a wave's success rate was below ``min_success_rate``.
    MIN_SUCCESS_RATE = "min_success_rate"


class RunOutcome(StrEnum):
    """How one execution of a durable run ended, as a store records it."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
