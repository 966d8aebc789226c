"""A typed API over ``DAGExecutor``: decorated functions wired by handles (docs/flow.md).

``Flow``, ``Handle`` and ``FlowRun`` are also exported from ``wave_executor``;
the task classes are here for annotations.
"""

from wave_executor.flow._flow import Flow
from wave_executor.flow._handle import Handle, OutputUnavailableError
from wave_executor.flow._options import TaskOptions, TriggerRuleName
from wave_executor.flow._plan import Call, FlowPlan, MapCall, MapChild, run_call
from wave_executor.flow._run import FlowRun
from wave_executor.flow._tasks import (
    Task0,
    Task1,
    Task2,
    Task3,
    Task4,
    Task5,
    Task6,
    TaskAny,
    TaskBase,
    TaskDecorator,
    task,
)

__all__ = [
    "Call",
    "Flow",
    "FlowPlan",
    "FlowRun",
    "Handle",
    "MapCall",
    "MapChild",
    "OutputUnavailableError",
    "Task0",
    "Task1",
    "Task2",
    "Task3",
    "Task4",
    "Task5",
    "Task6",
    "TaskAny",
    "TaskBase",
    "TaskDecorator",
    "TaskOptions",
    "TriggerRuleName",
    "run_call",
    "task",
]
