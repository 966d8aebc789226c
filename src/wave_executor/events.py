"""Event names, stop reasons and typed event payloads (see ``docs/events.md``)."""

from __future__ import annotations

from wave_executor._core.event_payloads import (
    EventEnvelope,
    RunTotals,
    TaskCompletedPayload,
    TaskFailedPayload,
    TaskRetryingPayload,
    TaskSkippedPayload,
)
from wave_executor._core.names import EventType, RunOutcome, StopReason

__all__ = [
    "EventEnvelope",
    "EventType",
    "RunOutcome",
    "RunTotals",
    "StopReason",
    "TaskCompletedPayload",
    "TaskFailedPayload",
    "TaskRetryingPayload",
    "TaskSkippedPayload",
]
