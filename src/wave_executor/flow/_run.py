"""``FlowRun``: a finished flow run, read through the handles that built it."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, TypeVar

from wave_executor._core.records import DAGExecutionResult, TaskResult
from wave_executor._core.status import TaskStatus
from wave_executor.flow._handle import Handle, OutputUnavailableError

if TYPE_CHECKING:
    from wave_executor.flow._flow import Flow

__all__ = ["FlowRun"]

T = TypeVar("T")
D = TypeVar("D")


class FlowRun:
    """What ``Flow.run()`` returns: ``run[handle]`` is that call's output, typed.

    ``result`` is the engine's ``DAGExecutionResult`` (statuses, errors,
    durations, retries), keyed by the task ids of the calls
    (``handle.task_id``).
    """

    __slots__ = ("_flow", "_outputs", "result")

    def __init__(self, flow: Flow, result: DAGExecutionResult) -> None:
        self._flow = flow
        self.result = result
        self._outputs: dict[Any, Any] | None = None

    @property
    def succeeded(self) -> bool:
        """The run's success, by the run's policy (``DAGExecutionResult.succeeded``)."""
        return self.result.succeeded

    def __getitem__(self, handle: Handle[T]) -> T:
        """The output of ``handle``'s call; ``OutputUnavailableError`` if it did not succeed."""
        if handle.flow is not self._flow:
            raise ValueError(f"{handle!r} belongs to another flow than this run's")
        outputs = self._outputs
        if outputs is None:
            statuses = self.result.statuses()
            outputs = self._outputs = {
                t: out
                for t, out in self.result.outputs().items()
                if statuses[t] == TaskStatus.SUCCESS
            }
        try:
            value: T = handle._source.resolve(outputs)
        except OutputUnavailableError as exc:
            raise self._unavailable(exc.task_id) from None
        return value

    def get(self, handle: Handle[T], default: D) -> T | D:
        """The output of ``handle``'s call, or ``default`` if it did not succeed."""
        try:
            return self[handle]
        except OutputUnavailableError:
            return default

    def task_result(self, handle: Handle[object]) -> TaskResult:
        """The engine's record of ``handle``'s call (status, error, retries, duration)."""
        task_id = handle.task_id
        if task_id is None or handle.flow is not self._flow:
            raise ValueError(f"{handle!r} is not the handle of one call of this run's flow")
        return self.result.task_results[task_id]

    def _unavailable(self, task_id: Hashable) -> OutputUnavailableError:
        record = self.result.task_results.get(task_id)
        if record is None:
            return OutputUnavailableError(task_id, "did not run")
        detail = f"ended {TaskStatus(record.status).value}"
        if record.skip_reason:
            detail += f" ({record.skip_reason})"
        if record.error:
            detail += f": {record.error}"
        return OutputUnavailableError(task_id, detail)

    def __repr__(self) -> str:
        r = self.result
        return (
            f"<FlowRun of {self._flow.name!r}: {r.total_successful}/{r.total_tasks} succeeded, "
            f"succeeded={r.succeeded}>"
        )
