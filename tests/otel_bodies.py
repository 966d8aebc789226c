"""Bodies for the OpenTelemetry tests that run in other processes: module-level, so they
pickle by reference."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace


def current_span_ids(task_id: Any, spec: Any) -> tuple[int, int]:
    """The trace and span id current where the body runs (the attempt's, when carried)."""
    context = trace.get_current_span().get_span_context()
    return context.trace_id, context.span_id
