"""Tasks of a flow: decorated functions whose calls add typed nodes to the flow.

``typing.ParamSpec`` cannot say "each parameter of type ``T`` also takes a
``Handle[T]``", so there is one task class per arity (``Task0`` ... ``Task6``)
whose ``__call__`` lists the parameters as ``A | Handle[A]``; the decorator
picks the class by overloads on the function's signature. Functions with
more than six parameters, or keyword-only ones, get ``TaskAny``, whose
arguments mypy does not check (the flow still checks their number when the
call is made). Parameters are positional at the call, as in the function.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pickle
from collections.abc import Callable, Coroutine, Hashable, Iterable, Mapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast, overload

from wave_executor._core.retry import RetryPolicy
from wave_executor.backends.inline import InlineBackend
from wave_executor.backends.protocol import Backend
from wave_executor.flow._handle import Handle
from wave_executor.flow._options import TaskOptions, TriggerRuleName

if TYPE_CHECKING:
    from wave_executor.flow._flow import Flow

#: The flow of the innermost ``with flow:`` block (where unbound tasks record calls).
_current: ContextVar[Flow | None] = ContextVar("wave_executor_flow", default=None)


def current_flow(task_name: str) -> Flow:
    flow = _current.get()
    if flow is None:
        raise RuntimeError(
            f"task {task_name!r} belongs to no flow: call it inside 'with flow:' "
            "(or define it with @flow.task)"
        )
    return flow


def enter_flow(flow: Flow) -> Token[Flow | None]:
    return _current.set(flow)


def exit_flow(token: Token[Flow | None]) -> None:
    _current.reset(token)


__all__ = [
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
    "current_flow",
    "enter_flow",
    "exit_flow",
    "task",
]

R = TypeVar("R")
K = TypeVar("K")
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")
E = TypeVar("E")
F = TypeVar("F")

#: ``after=``: handles a call waits for without taking their outputs.
After = Iterable[Handle[object]]

_UNSET: Any = object()


class TaskBase(Generic[R]):
    """What every task class shares: the function, its options, how calls become nodes.

    A task is also what a worker process unpickles to find the function: it
    pickles by reference (module and qualified name), like the function it
    replaced, so a task defined at module level can run on a
    ``ProcessBackend``.
    """

    def __init__(
        self,
        flow: Flow | None,
        fn: Callable[..., Any],
        options: TaskOptions,
        origin: TaskBase[Any] | None,
    ) -> None:
        functools.update_wrapper(cast(Any, self), fn)  # __module__, __qualname__, __doc__
        self._qualname: str = getattr(fn, "__qualname__", "")
        self._flow = flow
        self._fn = fn
        self._options = options
        self._origin = origin if origin is not None else self
        self._signature = inspect.signature(fn)
        self.is_async = inspect.iscoroutinefunction(fn)
        if (
            self.is_async
            and options.backend is not None
            and type(options.backend) is not (InlineBackend)
        ):
            raise ValueError(
                f"task {self.name!r}: an 'async def' runs in the event loop; backend= is for "
                "plain functions (a thread, a process or a cluster runs them)"
            )

    @property
    def fn(self) -> Callable[..., Any]:
        """The decorated function, unchanged (call it directly in unit tests)."""
        return self._fn

    @property
    def name(self) -> str:
        """The base of the ids of this task's calls (the function's name unless renamed)."""
        return self._options.name or str(getattr(self._fn, "__name__", type(self._fn).__name__))

    @property
    def options(self) -> TaskOptions:
        return self._options

    @property
    def flow(self) -> Flow | None:
        """The flow this task belongs to (``flow.task``), or None: the current flow's."""
        return self._flow

    def with_options(
        self,
        *,
        name: str | None = _UNSET,
        retries: RetryPolicy | int | None = _UNSET,
        timeout: float | None = _UNSET,
        group: Hashable | None = _UNSET,
        trigger_rule: TriggerRuleName = _UNSET,
        cost: float | None = _UNSET,
        backend: Backend | None = _UNSET,
    ) -> Self:
        """The same task with some options changed, for some of its calls."""
        given = {
            "name": name, "retries": retries, "timeout": timeout, "group": group,
            "trigger_rule": trigger_rule, "cost": cost, "backend": backend,
        }  # fmt: skip
        changes: dict[str, Any] = {k: v for k, v in given.items() if v is not _UNSET}
        return type(self)(self._flow, self._fn, replace(self._options, **changes), self._origin)

    def _call(self, args: tuple[Any, ...], kwargs: Mapping[str, Any], after: After) -> Handle[R]:
        try:
            self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"task {self.name!r}: {exc}") from None
        flow = self._flow if self._flow is not None else current_flow(self.name)
        return flow._add(self, args, kwargs, after)

    def _map(self, items: Any, rest: tuple[Any, ...], as_dict: bool, after: After) -> Handle[Any]:
        flow = self._flow if self._flow is not None else current_flow(self.name)
        return flow._add(self, (items, *rest), {}, after, map_as_dict=as_dict)

    def __reduce__(self) -> tuple[Any, ...]:
        # By reference to what the module holds: the decorated task, even for
        # a with_options() copy (its options matter only to the scheduler).
        origin = self._origin
        if "<locals>" in origin._qualname or not origin._qualname:
            raise pickle.PicklingError(
                f"task {self.name!r} is not defined at module level, so another process "
                "cannot import it: define it at module level to run it on a process backend"
            )
        return (_task_named, (origin.__module__, origin._qualname))

    def __repr__(self) -> str:
        kind = "async " if self.is_async else ""
        where = f" of flow {self._flow.name!r}" if self._flow is not None else ""
        return f"<{type(self).__name__} {kind}{self.name!r}{where}>"


class Task0(TaskBase[R]):
    """A task of a function without parameters."""

    def __call__(self, /, *, after: After = ()) -> Handle[R]:
        return self._call((), {}, after)


class Task1(TaskBase[R], Generic[A, R]):
    """A task of a function of one parameter."""

    def __call__(self, a: A | Handle[A], /, *, after: After = ()) -> Handle[R]:
        return self._call((a,), {}, after)

    def map(
        self, items: Sequence[A] | Handle[Sequence[A]], /, *, after: After = ()
    ) -> Handle[list[R]]:
        """One call per item of ``items``, made when the run knows them; the outputs in order.

        Each item runs as a child task ``ChildId(task_id, index)`` with this
        task's options; the whole fails if any child fails.
        """
        return self._map(items, (), False, after)

    def map_values(
        self, items: Mapping[K, A] | Handle[Mapping[K, A]], /, *, after: After = ()
    ) -> Handle[dict[K, R]]:
        """One call per value of ``items``; the outputs under the same keys."""
        return self._map(items, (), True, after)


class Task2(TaskBase[R], Generic[A, B, R]):
    """A task of a function of two parameters."""

    def __call__(self, a: A | Handle[A], b: B | Handle[B], /, *, after: After = ()) -> Handle[R]:
        return self._call((a, b), {}, after)

    def map(
        self, items: Sequence[A] | Handle[Sequence[A]], b: B | Handle[B], /, *, after: After = ()
    ) -> Handle[list[R]]:
        """One call ``fn(item, b)`` per item of ``items``, one ``b`` for all (``Task1.map``)."""
        return self._map(items, (b,), False, after)

    def map_values(
        self,
        items: Mapping[K, A] | Handle[Mapping[K, A]],
        b: B | Handle[B],
        /,
        *,
        after: After = (),
    ) -> Handle[dict[K, R]]:
        """One call ``fn(value, b)`` per value of ``items``; the outputs under the same keys."""
        return self._map(items, (b,), True, after)


class Task3(TaskBase[R], Generic[A, B, C, R]):
    """A task of a function of three parameters."""

    def __call__(
        self, a: A | Handle[A], b: B | Handle[B], c: C | Handle[C], /, *, after: After = ()
    ) -> Handle[R]:
        return self._call((a, b, c), {}, after)

    def map(
        self,
        items: Sequence[A] | Handle[Sequence[A]],
        b: B | Handle[B],
        c: C | Handle[C],
        /,
        *,
        after: After = (),
    ) -> Handle[list[R]]:
        """One call ``fn(item, b, c)`` per item of ``items`` (see ``Task1.map``)."""
        return self._map(items, (b, c), False, after)

    def map_values(
        self,
        items: Mapping[K, A] | Handle[Mapping[K, A]],
        b: B | Handle[B],
        c: C | Handle[C],
        /,
        *,
        after: After = (),
    ) -> Handle[dict[K, R]]:
        """One call ``fn(value, b, c)`` per value of ``items``; the outputs under the same keys."""
        return self._map(items, (b, c), True, after)


class Task4(TaskBase[R], Generic[A, B, C, D, R]):
    """A task of a function of four parameters."""

    def __call__(
        self,
        a: A | Handle[A],
        b: B | Handle[B],
        c: C | Handle[C],
        d: D | Handle[D],
        /,
        *,
        after: After = (),
    ) -> Handle[R]:
        return self._call((a, b, c, d), {}, after)


class Task5(TaskBase[R], Generic[A, B, C, D, E, R]):
    """A task of a function of five parameters."""

    def __call__(
        self,
        a: A | Handle[A],
        b: B | Handle[B],
        c: C | Handle[C],
        d: D | Handle[D],
        e: E | Handle[E],
        /,
        *,
        after: After = (),
    ) -> Handle[R]:
        return self._call((a, b, c, d, e), {}, after)


class Task6(TaskBase[R], Generic[A, B, C, D, E, F, R]):
    """A task of a function of six parameters."""

    def __call__(
        self,
        a: A | Handle[A],
        b: B | Handle[B],
        c: C | Handle[C],
        d: D | Handle[D],
        e: E | Handle[E],
        f: F | Handle[F],
        /,
        *,
        after: After = (),
    ) -> Handle[R]:
        return self._call((a, b, c, d, e, f), {}, after)


class TaskAny(TaskBase[R]):
    """A task whose arguments mypy does not check: more than six parameters, or keyword-only ones.

    Arguments may be handles or values, positional or by keyword; their
    number and names are checked against the function when the call is
    made.
    """

    def __call__(self, *args: Any, after: After = (), **kwargs: Any) -> Handle[R]:
        return self._call(args, kwargs, after)


def _task_named(module: str, qualname: str) -> Any:
    """The task a module holds under ``qualname`` (how a task is unpickled)."""
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


_CLASSES: tuple[type[TaskBase[Any]], ...] = (Task0, Task1, Task2, Task3, Task4, Task5, Task6)


def task_class(fn: Callable[..., Any]) -> type[TaskBase[Any]]:
    """The class the decorator's overloads promise for ``fn`` (by its positional parameters)."""
    positional = 0
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            positional += 1
        elif p.kind is p.VAR_POSITIONAL or p.default is p.empty:
            return TaskAny  # *args, or a keyword-only parameter without default
    return _CLASSES[positional] if positional < len(_CLASSES) else TaskAny


Co = Coroutine[Any, Any, R]


class TaskDecorator:
    """``@flow.task`` or ``@flow.task(retries=3, ...)`` on a function: a task of that flow.

    ``wave_executor.flow.task`` makes tasks of no flow in particular: a call
    goes to the flow of the enclosing ``with flow:`` block, so one module-level
    task serves every flow built from it. An ``async def`` runs in the event
    loop; a plain ``def`` runs on the flow's thread backend (see ``Flow``)
    unless ``backend=`` says otherwise.
    """

    def __init__(self, flow: Flow | None, options: TaskOptions | None = None) -> None:
        self._flow = flow
        self._options = options if options is not None else TaskOptions()

    # The async overload of each arity must come before the plain one (an
    # ``async def`` matches both); mypy reports that the two overlap with
    # incompatible returns, which is the point: the first match wins.
    @overload
    def __call__(
        self,
        *,
        name: str | None = None,
        retries: RetryPolicy | int | None = None,
        timeout: float | None = None,
        group: Hashable | None = None,
        trigger_rule: TriggerRuleName = "all_success",
        cost: float | None = None,
        backend: Backend | None = None,
    ) -> TaskDecorator: ...
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: Callable[[A, B, C, D, E, F], Co[R]], /
    ) -> Task6[A, B, C, D, E, F, R]: ...
    @overload
    def __call__(self, fn: Callable[[A, B, C, D, E, F], R], /) -> Task6[A, B, C, D, E, F, R]: ...
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: Callable[[A, B, C, D, E], Co[R]], /
    ) -> Task5[A, B, C, D, E, R]: ...
    @overload
    def __call__(self, fn: Callable[[A, B, C, D, E], R], /) -> Task5[A, B, C, D, E, R]: ...
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: Callable[[A, B, C, D], Co[R]], /
    ) -> Task4[A, B, C, D, R]: ...
    @overload
    def __call__(self, fn: Callable[[A, B, C, D], R], /) -> Task4[A, B, C, D, R]: ...
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: Callable[[A, B, C], Co[R]], /
    ) -> Task3[A, B, C, R]: ...
    @overload
    def __call__(self, fn: Callable[[A, B, C], R], /) -> Task3[A, B, C, R]: ...
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: Callable[[A, B], Co[R]], /
    ) -> Task2[A, B, R]: ...
    @overload
    def __call__(self, fn: Callable[[A, B], R], /) -> Task2[A, B, R]: ...
    @overload
    def __call__(self, fn: Callable[[A], Co[R]], /) -> Task1[A, R]: ...  # type: ignore[overload-overlap]
    @overload
    def __call__(self, fn: Callable[[A], R], /) -> Task1[A, R]: ...
    @overload
    def __call__(self, fn: Callable[[], Co[R]], /) -> Task0[R]: ...  # type: ignore[overload-overlap]
    @overload
    def __call__(self, fn: Callable[[], R], /) -> Task0[R]: ...
    # What matches none of the above (keyword-only parameters, more than six).
    # mypy thinks these can never match, as it treats ``...`` like ``[]``; they do.
    @overload
    def __call__(  # type: ignore[overload-cannot-match]
        self, fn: Callable[..., Co[R]], /
    ) -> TaskAny[R]: ...
    @overload
    def __call__(self, fn: Callable[..., R], /) -> TaskAny[R]: ...  # type: ignore[overload-cannot-match]
    def __call__(
        self,
        fn: Any = None,
        *,
        name: str | None = None,
        retries: RetryPolicy | int | None = None,
        timeout: float | None = None,
        group: Hashable | None = None,
        trigger_rule: TriggerRuleName = "all_success",
        cost: float | None = None,
        backend: Backend | None = None,
    ) -> Any:
        if fn is None:
            options = TaskOptions(name, retries, timeout, group, trigger_rule, cost, backend)
            return TaskDecorator(self._flow, options)
        if not callable(fn):
            raise TypeError(f"flow.task decorates a function, got {fn!r}")
        return task_class(fn)(self._flow, fn, self._options, None)


#: ``@task``: a task of no flow in particular (calls go to the current ``with flow:``).
task = TaskDecorator(None)
