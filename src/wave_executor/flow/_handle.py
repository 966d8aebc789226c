"""Handles: the typed stand-in for a task call's output while a flow is built.

A ``Handle[T]`` is what calling a task returns; passing it to another task
is what draws the edge, and its type parameter is what lets mypy check that
edge. At run time an argument is a *source*: a small picklable recipe that
turns the outputs of the task's upstreams into the value the function gets
(so a task may also run in a process). Sources read only the outputs of
upstreams that succeeded; one whose output is missing raises
``OutputUnavailableError`` naming it.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from wave_executor.flow._flow import Flow

__all__ = [
    "Const",
    "DictOf",
    "Handle",
    "ListOf",
    "OutputUnavailableError",
    "Ref",
    "Source",
    "sorted_values",
]

T_co = TypeVar("T_co", covariant=True)


class OutputUnavailableError(LookupError):
    """A task's output was asked for, but the task did not succeed (or did not run).

    Raised by ``FlowRun[handle]`` after a run, and inside a run by a task
    whose trigger rule let it run although an upstream whose output it
    takes as an argument did not succeed (``all_done`` cleanup steps).
    """

    def __init__(self, task_id: Hashable, detail: str = "did not succeed") -> None:
        self.task_id = task_id
        super().__init__(f"the output of task {task_id!r} is unavailable: it {detail}")


class Source:
    """How one argument's value is made from the outputs of upstream tasks."""

    __slots__ = ()

    def deps(self) -> tuple[Hashable, ...]:
        return ()

    def resolve(self, outputs: Mapping[Any, Any]) -> Any:
        raise NotImplementedError


class Const(Source):
    """A plain value given when the flow was built."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def resolve(self, outputs: Mapping[Any, Any]) -> Any:
        return self.value


class Ref(Source):
    """The output of one task (``as_list``: a fanned-out task's ``{0: .., 1: ..}`` as a list)."""

    __slots__ = ("as_list", "task_id")

    def __init__(self, task_id: Hashable, as_list: bool = False) -> None:
        self.task_id = task_id
        self.as_list = as_list

    def deps(self) -> tuple[Hashable, ...]:
        return (self.task_id,)

    def resolve(self, outputs: Mapping[Any, Any]) -> Any:
        try:
            value = outputs[self.task_id]
        except KeyError:
            raise OutputUnavailableError(self.task_id) from None
        return sorted_values(value) if self.as_list else value


def sorted_values(output: Mapping[int, Any]) -> list[Any]:
    """A fanned-out sequence's ``{index: output}`` back in the order of its items."""
    return [output[k] for k in sorted(output)]


class ListOf(Source):
    """A list of several sources' values (``Flow.gather``)."""

    __slots__ = ("items",)

    def __init__(self, items: tuple[Source, ...]) -> None:
        self.items = items

    def deps(self) -> tuple[Hashable, ...]:
        return tuple(d for item in self.items for d in item.deps())

    def resolve(self, outputs: Mapping[Any, Any]) -> Any:
        return [item.resolve(outputs) for item in self.items]


class DictOf(Source):
    """A dict of several sources' values under the given keys (``Flow.gather_dict``)."""

    __slots__ = ("items", "keys")

    def __init__(self, keys: tuple[Any, ...], items: tuple[Source, ...]) -> None:
        self.keys = keys
        self.items = items

    def deps(self) -> tuple[Hashable, ...]:
        return tuple(d for item in self.items for d in item.deps())

    def resolve(self, outputs: Mapping[Any, Any]) -> Any:
        return {k: item.resolve(outputs) for k, item in zip(self.keys, self.items, strict=True)}


class Handle(Generic[T_co]):
    """The output of a task call (of type ``T_co``), to pass to other tasks of the same flow.

    Calling a task returns one; it holds no value while the flow is built.
    After the run, ``run[handle]`` reads the value. A handle is read-only,
    hence covariant: a ``Handle[bool]`` may go where a ``Handle[int]`` is
    expected.
    """

    __slots__ = ("_flow", "_source")

    def __init__(self, flow: Flow, source: Source) -> None:
        self._flow = flow
        self._source = source

    @property
    def task_id(self) -> Hashable | None:
        """The id of the task whose output this is (None for a ``gather`` of several)."""
        source = self._source
        return source.task_id if isinstance(source, Ref) else None

    @property
    def flow(self) -> Flow:
        return self._flow

    def __bool__(self) -> bool:
        raise TypeError(
            "a Handle has no value while the flow is built: branch inside a task, "
            "or read run[handle] after the run"
        )

    def __repr__(self) -> str:
        task_id = self.task_id
        what = repr(task_id) if task_id is not None else "gathered"
        return f"<Handle {what} of {self._flow.name!r}>"
