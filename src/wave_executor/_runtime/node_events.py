"""MetaDAG events from the node-level run: ``NODE_*``, and the tasks' own events.

The node run's task events speak of nodes (its tasks are the nodes); this
sink, which the node run sends its events to, turns them into
``NODE_STARTED`` / ``NODE_COMPLETED`` / ``NODE_SKIPPED``.
With ``MetaDAG(task_events=True)`` it also passes on the events of the tasks
inside "dag" and "reconciler" nodes, each tagged with ``node_id``. A
single-task node that runs as a plain task of the node run (``direct_nodes``)
produces the same events, in the same order, as one with a run of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

from wave_executor._core.names import EventType
from wave_executor._runtime.direct_nodes import DirectNode, direct_escalation
from wave_executor._runtime.events import ENVELOPE, RunEvents

__all__ = ["NodeEvents"]


class NodeEvents:
    """The node run's event sink; made only when someone listens (``events.active``)."""

    active = True

    def __init__(
        self,
        events: RunEvents,
        direct: Mapping[Hashable, DirectNode],
        finished: Mapping[Hashable, Any],
        starts: dict[Hashable, float],
        clock: Callable[[], float],
        task_events: bool,
    ) -> None:
        self._events = events
        self._direct = direct
        self._finished = finished  # nodes whose body recorded an outcome
        self._starts = starts
        self._clock = clock
        self.task_events = task_events

    def forwarder(self, node_id: Hashable) -> Callable[[str, dict[str, Any]], None]:
        """A callback for a node's own executor: its task events, tagged with the node."""
        emit = self._events.emit

        def forward(event_type: str, event: dict[str, Any]) -> None:
            if event_type.startswith("TASK_"):
                data = {k: v for k, v in event.items() if k not in ENVELOPE}
                emit(event_type, event["task_id"], node_id=node_id, **data)

        return forward

    def emit(self, event_type: str, task_id: Hashable | None = None, **event: Any) -> None:
        """An event of the node run (its ``task_id`` is a node's id)."""
        node_id = task_id
        if event_type == EventType.TASK_SKIPPED:
            self._events.emit(
                EventType.NODE_SKIPPED, node_id, node_id=node_id, failed_deps=event["failed_deps"]
            )
            return
        node = self._direct.get(node_id)
        if node is not None:
            self._direct_event(event_type, event, node_id, node)
        elif event_type == EventType.TASK_FAILED and node_id not in self._finished:
            self._node_completed(node_id, event.get("status", "failed"))  # cut off

    def _direct_event(
        self, event_type: str, event: dict[str, Any], node_id: Hashable, node: DirectNode
    ) -> None:
        """The events a run of the node's own would give, in its order."""
        if event_type == EventType.TASK_STARTED:
            self._starts.setdefault(node_id, self._clock())
            self._events.emit(EventType.NODE_STARTED, node_id, node_id=node_id, node_type="dag")
            self._task_event(event_type, event, node_id, node)
        elif event_type == EventType.TASK_COMPLETED:
            self._task_event(event_type, event, node_id, node)
            self._events.emit(
                EventType.NODE_COMPLETED,
                node_id,
                node_id=node_id,
                status="success",
                duration_ms=event["duration_ms"],
            )
        elif event_type == EventType.TASK_RETRYING:
            self._task_event(event_type, event, node_id, node)
        elif event_type == EventType.TASK_FAILED:
            if "started" in event:
                # Cut off by the MetaDAG's total timeout. A node run of its own is
                # cancelled from outside then, which closes no task: nor does this.
                self._node_completed(node_id, event.get("status", "timeout"))
            else:
                self._task_event(event_type, event, node_id, node)
        elif event_type == EventType.TASK_ESCALATED:  # always right after the last TASK_FAILED
            escalation = direct_escalation(node, event["escalation"])
            self._task_event(event_type, {**event, "escalation": escalation}, node_id, node)
            self._node_completed(node_id, "failed")

    def _task_event(
        self, event_type: str, event: dict[str, Any], node_id: Hashable, node: DirectNode
    ) -> None:
        if self.task_events and node.settings.config.emit_events:  # as its own run would
            self._events.emit(event_type, node.task_id, node_id=node_id, **event)

    def _node_completed(self, node_id: Hashable, status: str) -> None:
        began = self._starts.get(node_id)
        duration_ms = 0.0 if began is None else (self._clock() - began) * 1000.0
        self._events.emit(
            EventType.NODE_COMPLETED,
            node_id,
            node_id=node_id,
            status=status,
            duration_ms=duration_ms,
        )
