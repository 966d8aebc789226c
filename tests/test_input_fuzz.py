"""Bad inputs thrown at every public constructor and method.

Each case is one call with one bad value (or one odd but legal one). It
must either be refused with a clear error -- ``ValueError`` or
``TypeError`` whose message contains the bad value (and, for a field or
argument, its name) -- raised before any task body runs, or behave
correctly, which the case checks. ``CASES`` is the table; the hypothesis
tests at the end throw generated values at the same entry points.

Rerun and print the count of cases::

    .venv/bin/python tests/test_input_fuzz.py

(``./dev pytest tests/test_input_fuzz.py -q`` runs the same tests.)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import math
import os
import re
import sqlite3
import stat
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wave_executor import (
    AdaptiveSemaphore,
    CircuitBreaker,
    CircuitBreakerRegistry,
    DAGExecutor,
    LevelExecutor,
    MetaDAG,
    MetaDAGNodeSpec,
    RestartSettings,
    RetryPolicy,
    WaveConfig,
    WaveReconciler,
)
from wave_executor.store import MemoryStore, SQLiteStore, StoreError
from wave_executor.testing import run_virtual

NAN = math.nan
INF = math.inf


class Calls(list[Any]):
    """What ran: task ids of bodies called during a case."""


Thunk = Callable[[Calls], Any]


@dataclass(frozen=True)
class Case:
    """One input. ``refused``: must raise one of ``errors`` whose text contains
    every string of ``names``, with no body run. Otherwise it must run, and
    ``check(outcome, calls)`` must pass. ``bad``: the input is a mistake (it
    counts towards the campaign), not a legal edge value."""

    id: str
    call: Thunk
    refused: bool = True
    names: tuple[str, ...] = ()
    errors: tuple[type[BaseException], ...] = (ValueError, TypeError)
    check: Callable[[Any, Calls], None] | None = None
    bad: bool = True


CASES: list[Case] = []


def case(
    id: str,
    call: Thunk,
    *names: str,
    refused: bool = True,
    errors: tuple[type[BaseException], ...] = (ValueError, TypeError),
    check: Callable[[Any, Calls], None] | None = None,
    bad: bool = True,
) -> None:
    CASES.append(Case(id, call, refused, names, errors, check, bad))


def body_of(calls: Calls) -> Callable[[Any, Any], Awaitable[Any]]:
    async def body(task_id: Any, spec: Any) -> Any:
        calls.append(task_id)
        await asyncio.sleep(0.01)
        return task_id

    return body


def make(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Thunk:
    """A case that calls ``fn(*args, **kwargs)``."""
    return lambda calls: fn(*args, **kwargs)


def _same(seen: Any, expected: Any) -> None:
    assert seen == expected


def _has(field: str, value: Any, outcome: Any, calls: Calls) -> None:
    assert getattr(outcome, field) == value


def shown(value: Any) -> str:
    return repr(value)


# -- WaveConfig: every field ---------------------------------------------------------

COUNT_FIELDS = (
    "max_parallel_per_wave", "circuit_failure_threshold", "circuit_success_threshold",
    "min_parallel", "default_specialist_budget",
)  # fmt: skip
BAD_COUNTS: tuple[Any, ...] = (0, -1, 2.5, 1.0, NAN, INF, True, False, "3", None)
for field_name in COUNT_FIELDS:
    for value in BAD_COUNTS:
        case(
            f"WaveConfig.{field_name}={value!r}",
            make(WaveConfig, **{field_name: value}),
            field_name,
            shown(value),
        )
for value in (-1, 2.5, NAN, INF, True, "3", None):
    case(
        f"WaveConfig.max_retries={value!r}",
        make(WaveConfig, max_retries=value),
        "max_retries",
        shown(value),
    )
for field_name in ("default_task_timeout", "per_wave_timeout", "total_execution_timeout"):
    for value in (0, -1, NAN, -INF, "5", True, [5]):
        case(
            f"WaveConfig.{field_name}={value!r}",
            make(WaveConfig, **{field_name: value}),
            field_name,
            shown(value),
        )
    case(
        f"WaveConfig.{field_name}=inf",
        make(WaveConfig, **{field_name: INF}),
        refused=False,
        bad=False,
    )
    case(  # 0.3.0 read None as no limit
        f"WaveConfig.{field_name}=None means no limit",
        make(WaveConfig, **{field_name: None}),
        refused=False,
        check=functools.partial(_has, field_name, INF),
        bad=False,
    )
for value in (-1, NAN, -INF, "5", None, True):
    case(
        f"WaveConfig.circuit_recovery_timeout={value!r}",
        make(WaveConfig, circuit_recovery_timeout=value),
        "circuit_recovery_timeout",
        shown(value),
    )
for value in (-0.1, 1.1, NAN, INF, "0.5", None, True):
    case(
        f"WaveConfig.min_success_rate={value!r}",
        make(WaveConfig, min_success_rate=value),
        "min_success_rate",
        shown(value),
    )
for value in (-1, NAN, "2", None, True):
    case(
        f"WaveConfig.retry_backoff_factor={value!r}",
        make(WaveConfig, retry_backoff_factor=value),
        "retry_backoff_factor",
        shown(value),
    )
for value in (-5, NAN, INF, "5", None, True):
    case(
        f"WaveConfig.inter_wave_delay_ms={value!r}",
        make(WaveConfig, inter_wave_delay_ms=value),
        "inter_wave_delay_ms",
        shown(value),
    )
for value in ("merge", None, 3, "APPEND"):
    case(
        f"WaveConfig.aggregation_strategy={value!r}",
        make(WaveConfig, aggregation_strategy=value),
        "aggregation_strategy",
        shown(value),
    )
for budget in (0, -1, 2.5, True, NAN, "3", None):
    case(
        f"WaveConfig.specialist_budgets={{'g': {budget!r}}}",
        make(WaveConfig, specialist_budgets={"g": budget}),
        "specialist_budgets",
        "'g'",
        shown(budget),
    )
for value in (["g"], "g", None):
    case(
        f"WaveConfig.specialist_budgets={value!r}",
        make(WaveConfig, specialist_budgets=value),
        "specialist_budgets",
        shown(value),
    )
for value in ("fast", 3, {}):
    case(
        f"WaveConfig.retry_policy={value!r}",
        make(WaveConfig, retry_policy=value),
        "retry_policy",
        shown(value),
    )
for value in (ValueError, ("x",), (int,), None, "ValueError", [ValueError]):
    case(
        f"WaveConfig.overload_errors={value!r}",
        make(WaveConfig, overload_errors=value),
        "overload_errors",
        shown(value),
    )
BOOL_FIELDS = (
    "allow_partial_success", "emit_events", "stop_on_first_error", "adaptive_batch_window",
    "circuit_breaker_enabled", "adaptive_group_windows",
)  # fmt: skip
for field_name in BOOL_FIELDS:
    for value in ("no", None, 2, 0.5):
        case(
            f"WaveConfig.{field_name}={value!r}",
            make(WaveConfig, **{field_name: value}),
            field_name,
            shown(value),
        )
    case(
        f"WaveConfig.{field_name}=0",
        make(WaveConfig, **{field_name: 0}),
        refused=False,
        bad=False,
    )
for kwargs in (
    {"max_parallel_per_wave": 1, "min_parallel": 1},
    {"min_parallel": 50, "max_parallel_per_wave": 3},  # clamped to the cap
    {"min_success_rate": 0.0},
    {"min_success_rate": 1},
    {"inter_wave_delay_ms": 0.5},
    {"circuit_recovery_timeout": 0},
    {"circuit_recovery_timeout": INF},
    {"aggregation_strategy": "append"},
    {"specialist_budgets": {"g": 1, ("tuple", 1): 3}},
    {"overload_errors": (ValueError, KeyError)},
    {"retry_policy": RetryPolicy(max_retries=0)},
):
    case(
        f"WaveConfig(**{kwargs!r}) is accepted",
        make(WaveConfig, **kwargs),
        refused=False,
        bad=False,
    )


# -- RetryPolicy ----------------------------------------------------------------------

for value in (-1, 2.5, NAN, INF, True, "3", None):
    case(
        f"RetryPolicy.max_retries={value!r}",
        make(RetryPolicy, max_retries=value),
        "max_retries",
        shown(value),
    )
for field_name in ("backoff_factor", "base_delay", "max_delay", "jitter"):
    for value in (-1, NAN, "1", None, True):
        case(
            f"RetryPolicy.{field_name}={value!r}",
            make(RetryPolicy, **{field_name: value}),
            field_name,
            shown(value),
        )
for value in ("none", None, 3):
    case(
        f"RetryPolicy.jitter_mode={value!r}",
        make(RetryPolicy, jitter_mode=value),
        "jitter_mode",
        shown(value),
    )
for value in (-1, NAN, "5", True):
    case(
        f"RetryPolicy.deadline={value!r}",
        make(RetryPolicy, deadline=value),
        "deadline",
        shown(value),
    )
for value in ("x", 3, (ValueError, "x"), (int,)):
    case(
        f"RetryPolicy.retry_on={value!r}",
        make(RetryPolicy, retry_on=value),
        "retry_on",
        shown(value),
    )
retry_kwargs: dict[str, Any]
for retry_kwargs in (
    {"max_retries": 0},
    {"max_delay": INF},
    {"deadline": 0},
    {"retry_on": (ValueError,)},
    {"retry_on": lambda exc: True},
):
    case(
        f"RetryPolicy(**{retry_kwargs!r}) is accepted",
        make(RetryPolicy, **retry_kwargs),
        refused=False,
        bad=False,
    )


# -- CircuitBreaker and its registry -----------------------------------------------

for field_name in ("failure_threshold", "success_threshold"):
    for value in (0, -1, 2.5, NAN, True, "3", None):
        case(
            f"CircuitBreaker.{field_name}={value!r}",
            make(CircuitBreaker, "k", **{field_name: value}),
            field_name,
            shown(value),
        )
for value in (-1, NAN, "5", None, True):
    case(
        f"CircuitBreaker.recovery_timeout={value!r}",
        make(CircuitBreaker, "k", recovery_timeout=value),
        "recovery_timeout",
        shown(value),
    )
case(
    "CircuitBreaker(clock='now')",
    lambda c: CircuitBreaker("k", clock="now"),  # type: ignore[arg-type]
    "clock",
    "'now'",
)
case("CircuitBreaker(key=[])", lambda c: CircuitBreaker([]), "key", "[]")  # type: ignore[arg-type]
case(
    "CircuitBreakerRegistry.get([])",
    lambda c: CircuitBreakerRegistry().get([]),  # type: ignore[arg-type]
    "list",
)
case(
    "CircuitBreakerRegistry.reset(unknown key) does nothing",
    lambda c: CircuitBreakerRegistry().reset("nope"),
    refused=False,
)


# -- AdaptiveSemaphore ------------------------------------------------------------------

for value in (0, -1, 2.5, NAN, True, "3", None):
    case(
        f"AdaptiveSemaphore.initial={value!r}",
        make(AdaptiveSemaphore, value),
        "initial",
        shown(value),
    )
for value in (0, 2.5, NAN, True, "2"):
    case(
        f"AdaptiveSemaphore.min_val={value!r}",
        make(AdaptiveSemaphore, 5, min_val=value),
        "min_val",
        shown(value),
    )
for value in (0, 2.5, NAN, "10", 1):
    case(
        f"AdaptiveSemaphore.max_val={value!r}",
        make(AdaptiveSemaphore, 5, min_val=2, max_val=value),
        "max_val",
        shown(value),
    )
for value in (0, 1.5, -0.1, NAN, "0.9", True):
    case(
        f"AdaptiveSemaphore.backoff_ratio={value!r}",
        make(AdaptiveSemaphore, 5, backoff_ratio=value),
        "backoff_ratio",
        shown(value),
    )
for value in (0, -1, 2.5, "10", True):
    case(
        f"AdaptiveSemaphore.slow_start_from={value!r}",
        make(AdaptiveSemaphore, 5, slow_start_from=value),
        "slow_start_from",
        shown(value),
    )
for value in (ValueError, ("x",), None):
    case(
        f"AdaptiveSemaphore.overload_errors={value!r}",
        make(AdaptiveSemaphore, 5, overload_errors=value),
        "overload_errors",
        shown(value),
    )
for value in (0, -3, 2.5, NAN, True, "3"):
    case(
        f"AdaptiveSemaphore.set_limit({value!r})",
        make(lambda v: AdaptiveSemaphore(5).set_limit(v), value),
        "limit",
        shown(value),
    )
case(
    "AdaptiveSemaphore(1.0 window of 1) is accepted",
    lambda c: AdaptiveSemaphore(1, min_val=1, max_val=1),
    refused=False,
    bad=False,
)


# -- DAGExecutor.execute: graphs ---------------------------------------------------


UNSET: Any = object()


def dag(
    tasks: Any = UNSET,
    deps: Any = None,
    *,
    body: Any = UNSET,
    executor: DAGExecutor | None = None,
    **kwargs: Any,
) -> Thunk:
    async def call(calls: Calls) -> Any:
        run = executor if executor is not None else DAGExecutor()
        graph = {"a": {}, "b": {}} if tasks is UNSET else tasks
        fn = body_of(calls) if body is UNSET else body
        return await run.execute(graph, deps, fn, **kwargs)

    return call


def all_succeeded(order: list[Any]) -> Callable[[Any, Calls], None]:
    """The run succeeded and ran the bodies in ``order`` (dependency order)."""

    def check(result: Any, calls: Calls) -> None:
        assert result.succeeded, result.task_results
        assert [repr(t) for t in calls] == [repr(t) for t in order]

    return check


for tasks in (["a"], "abc", None, 3, {"a"}):
    case(f"execute(tasks={tasks!r})", dag(tasks), "tasks", type(tasks).__name__)
for body in (None, "f", 3):
    case(f"execute(task_executor={body!r})", dag(body=body), "task_executor", shown(body))
for not_a_mapping in (["a"], "a", 3):
    case(
        f"execute(dependencies={not_a_mapping!r})",
        dag(deps=not_a_mapping),
        "dependencies",
        shown(not_a_mapping),
    )
deps: Any
for deps, named in (
    ({"b": "a"}, "'a'"),
    ({"b": 5}, "5"),
    ({"b": [[]]}, "[]"),
    ({"b": ["zzz"]}, "'zzz'"),
    ({"zzz": ["a"]}, "'zzz'"),
    ({"b": [NAN]}, "nan"),
    ({"b": [None]}, "None"),
    ({"b": [("a",)]}, "('a',)"),
    ({"b": [True]}, "True"),
    ({"b": ["b"]}, "b -> b"),
    ({"a": ["b"], "b": ["a"]}, "b -> a -> b"),
    ({"b": [{"a": 1}]}, "{'a': 1}"),
):
    case(f"execute(dependencies={deps!r})", dag(deps=deps), named)
# Ids of mixed types: each works as a task id and as a dependency.
NAN_ID = float("nan")
for odd in (NAN_ID, None, ("t", 1), True, -0.0, frozenset({1}), b"bytes", 10**30, 2.5):
    case(
        f"execute(an id {odd!r}) runs in dependency order",
        dag({"a": {}, odd: {}}, {odd: ["a"]}),
        refused=False,
        check=all_succeeded(["a", odd]),
    )
case(
    "execute(ids None, (1, 2), nan, True and x in one graph)",
    dag(
        {None: {}, (1, 2): {}, NAN_ID: {}, True: {}, "x": {}},
        {(1, 2): [None], NAN_ID: [(1, 2)], True: [NAN_ID], "x": [True]},
        config=WaveConfig(max_parallel_per_wave=1),
    ),
    refused=False,
    check=all_succeeded([None, (1, 2), NAN_ID, True, "x"]),
)


class UnhashableKeys(dict[Any, Any]):
    """A mapping whose keys() yields an unhashable id."""

    def __iter__(self) -> Iterator[Any]:
        return iter([["a"]])


case("execute(tasks with an unhashable id)", dag(UnhashableKeys()), "['a']")

# -- priority costs, timeouts -----------------------------------------------------------
for value in (NAN, -1, -INF, "5", "abc", None, True, [1]):
    case(
        f"execute(priority_costs={{'a': {value!r}}})",
        dag(priority_costs={"a": value}),
        "cost",
        "'a'",
        shown(value),
    )
case("execute(priority_costs={'zzz': 1})", dag(priority_costs={"zzz": 1}), "'zzz'")
case("execute(priority_costs=['a'])", dag(priority_costs=["a"]), "priority_costs", "['a']")
case(
    "execute(priority_costs={'a': inf}) runs it first",
    dag(
        {"a": {}, "b": {}},
        priority_costs={"a": 1, "b": INF},
        config=WaveConfig(max_parallel_per_wave=1),
    ),
    refused=False,
    check=all_succeeded(["b", "a"]),
)
for value in (0, -1, NAN, "5", True, -INF, [1]):
    case(
        f"execute(timeouts={{'a': {value!r}}})",
        dag(timeouts={"a": value}),
        "timeout",
        "'a'",
        shown(value),
    )
case("execute(timeouts={'zzz': 1})", dag(timeouts={"zzz": 1}), "'zzz'")
case("execute(timeouts=['a'])", dag(timeouts=["a"]), "timeouts", "['a']")
for value in (INF, None):
    case(
        f"execute(timeouts={{'a': {value!r}}}) means no limit",
        dag(timeouts={"a": value}),
        refused=False,
        check=all_succeeded(["a", "b"]),
        bad=False,
    )

# -- groups and budgets ------------------------------------------------------------------
case("execute(groups={'a': []})", dag(groups={"a": []}), "[]")
case("execute(groups={'zzz': 'g'})", dag(groups={"zzz": "g"}), "'zzz'")
case("execute(groups=['a'])", dag(groups=["a"]), "groups", "['a']")
case("execute(groups='g')", dag(groups="g"), "groups", "'g'")
case("execute(groups=fn returning [])", dag(groups=lambda t, s: []), "[]")
case(
    "execute(groups with a nan group name) runs",
    dag(groups={"a": NAN, "b": NAN}),
    refused=False,
    check=all_succeeded(["a", "b"]),
)
case(
    "execute(group names True and 1.5, budgets 1) runs one of each at a time",
    dag(
        {"a": {}, "b": {}, "c": {}, "d": {}},
        groups={"a": True, "b": True, "c": 1.5, "d": 1.5},
        config=WaveConfig(specialist_budgets={True: 1, 1.5: 1}),  # type: ignore[dict-item]
    ),
    refused=False,
    check=all_succeeded(["a", "c", "b", "d"]),
)
case(
    "execute(store=MemoryStore(), a None id)",
    dag({None: {}}, store=MemoryStore(), run_id="r"),
    "None",
)
case(
    "execute(store=MemoryStore(), ids 1, 1.5 and '1') records and runs",
    dag({1: {}, 1.5: {}, "1": {}}, {1.5: [1], "1": [1.5]}, store=MemoryStore(), run_id="r"),
    refused=False,
    check=all_succeeded([1, 1.5, "1"]),
)
case(
    "execute(store=MemoryStore(), a nan id)",
    dag({NAN_ID: {}}, store=MemoryStore(), run_id="r2"),
    "nan",
)

# -- semaphores, trigger rules, backends, retry policies, circuit keys, stores ---------------
for sem in (3, "sem", object(), threading.Semaphore(2)):
    case(
        f"execute(specialist_semaphore={getattr(sem, '__name__', type(sem).__name__)})",
        dag(specialist_semaphore=sem),
        "specialist_semaphore",
        shown(sem),
    )


def peak_of(calls: Calls) -> Callable[[Any, Any], Awaitable[Any]]:
    """A body that records how many bodies run at once (as ``calls[0]``)."""
    running = [0]
    calls.append(0)

    async def body(task_id: Any, spec: Any) -> Any:
        running[0] += 1
        calls[0] = max(calls[0], running[0])
        await asyncio.sleep(1)
        running[0] -= 1
        return task_id

    return body


def asyncio_semaphore_case(calls: Calls) -> Any:
    async def call() -> Any:
        tasks: dict[int, Any] = {i: {} for i in range(6)}
        sem = asyncio.Semaphore(2)
        result = await DAGExecutor().execute(tasks, None, peak_of(calls), None, False, sem)
        assert result.succeeded and calls[0] == 2, calls  # 0.3.0 took one too
        calls.clear()

    return call()


case(
    "execute(specialist_semaphore=asyncio.Semaphore(2)) holds two at once",
    asyncio_semaphore_case,
    refused=False,
)
for rules, named in (
    ({"a": "bogus"}, "'bogus'"),
    ({"zzz": "all_success"}, "'zzz'"),
    ({"a": 3}, "3"),
    ({"a": None}, "None"),
    (["a"], "['a']"),
):
    case(f"execute(trigger_rules={rules!r})", dag(trigger_rules=rules), named)
for backend in ("thread", 3, object()):
    case(
        f"execute(backend={type(backend).__name__})",
        dag(backend=backend),
        "backend",
        shown(backend),
    )
case("execute(backends={'a': 3})", dag(backends={"a": 3}), "backends", "3")
case("execute(backends={'zzz': None})", dag(backends={"zzz": None}), "'zzz'")
case("execute(backends='thread')", dag(backends="thread"), "backends", "str")
case("execute(retry_policies={'a': 3})", dag(retry_policies={"a": 3}), "'a'", "3")
case(
    "execute(retry_policies={'zzz': RetryPolicy()})",
    dag(retry_policies={"zzz": RetryPolicy()}),
    "'zzz'",
)
case("execute(retry_policies=['a'])", dag(retry_policies=["a"]), "retry_policies", "['a']")
case("execute(circuit_key='k')", dag(circuit_key="k"), "circuit_key", "'k'")
case("execute(store='runs.db')", dag(store="runs.db"), "store", "'runs.db'")
case("execute(run_id='r') without a store", dag(run_id="r"), "run_id")
for cfg in ("fast", {"max_parallel_per_wave": 2}, 3):
    case(f"execute(config={cfg!r})", dag(config=cfg), "config", shown(cfg))


def changed_config(field: str, value: Any) -> WaveConfig:
    config = WaveConfig()
    setattr(config, field, value)  # after the check made when it was made
    return config


for field_name, value in (("min_parallel", 2.5), ("specialist_budgets", {"g": 0.5})):
    case(
        f"execute(config with {field_name}={value!r} set after it was made)",
        dag(config=changed_config(field_name, value), groups={"a": "g"}),
        field_name,
    )
case(
    "DAGExecutor(config='fast')",
    lambda c: DAGExecutor("fast"),  # type: ignore[arg-type]
    "config",
    "'fast'",
)
case(
    "DAGExecutor(circuit_breakers={})",
    lambda c: DAGExecutor(circuit_breakers={}),  # type: ignore[arg-type]
    "circuit_breakers",
    "{}",
)
case(
    "DAGExecutor(backend='thread')",
    lambda c: DAGExecutor(backend="thread"),  # type: ignore[arg-type]
    "backend",
    "'thread'",
)


# -- LevelExecutor ----------------------------------------------------------------------


def levels(tasks: Any = None, deps: Any = None, *, body: Any = None, **kwargs: Any) -> Thunk:
    async def call(calls: Calls) -> Any:
        graph = {"a": {}, "b": {}} if tasks is None else tasks
        fn = body_of(calls) if body is None else body
        return await LevelExecutor().execute(graph, deps, fn, **kwargs)

    return call


case(
    "LevelExecutor.execute(config with min_parallel=2.5 set after it was made)",
    levels(config=changed_config("min_parallel", 2.5)),
    "min_parallel",
)
case("LevelExecutor.execute(tasks=['a'])", levels(["a"]), "tasks", "list")
case("LevelExecutor.execute(task_executor=None)", levels(body="f"), "'f'")
case("LevelExecutor.execute(dependencies={'b': ['zzz']})", levels(deps={"b": ["zzz"]}), "'zzz'")
case("LevelExecutor.execute(dependencies={'b': 5})", levels(deps={"b": 5}), "5")
case("LevelExecutor.execute(a cycle)", levels(deps={"a": ["b"], "b": ["a"]}), "b -> a -> b")
case(
    "LevelExecutor.execute(priority_costs={'a': nan})",
    levels(priority_costs={"a": NAN}),
    "'a'",
    "nan",
)
case("LevelExecutor.execute(groups={'zzz': 'g'})", levels(groups={"zzz": "g"}), "'zzz'")
case("LevelExecutor.execute(trigger_rules={'a': 'x'})", levels(trigger_rules={"a": "x"}), "'x'")
case(
    "LevelExecutor.execute(specialist_semaphore=3)",
    levels(specialist_semaphore=3),
    "specialist_semaphore",
)
case("LevelExecutor.execute(config='x')", levels(config="x"), "config", "'x'")
case(
    "LevelExecutor.execute(retry_policies={'a': 'x'})",
    levels(retry_policies={"a": "x"}),
    "'a'",
    "'x'",
)
case(
    "LevelExecutor.execute(ids None and (1, 2))",
    levels({None: {}, (1, 2): {}}, {(1, 2): [None]}),
    refused=False,
    check=lambda ctx, calls: _same(calls, [None, (1, 2)]),
)


# -- WaveReconciler ------------------------------------------------------------------------


async def _noop(task_id: Any, spec: Any) -> None:
    await asyncio.sleep(0.01)


for value in (0, -1, NAN, "2", None, True):
    case(
        f"WaveReconciler(poll_interval_s={value!r})",
        make(WaveReconciler, _noop, poll_interval_s=value),
        "poll_interval_s",
        shown(value),
    )
for value in (None, "f"):
    case(
        f"WaveReconciler(task_executor={value!r})",
        make(WaveReconciler, value),
        "task_executor",
        shown(value),
    )
case(
    "WaveReconciler(config='x')",
    lambda c: WaveReconciler(_noop, config="x"),  # type: ignore[arg-type]
    "config",
    "'x'",
)
case(
    "WaveReconciler(reconciler_id='') is accepted",
    lambda c: WaveReconciler(_noop, reconciler_id=""),
    refused=False,
    bad=False,
)
for value in (3, None, ("r",)):
    case(
        f"WaveReconciler(reconciler_id={value!r})",
        make(WaveReconciler, _noop, reconciler_id=value),
        "reconciler_id",
        shown(value),
    )
case(
    "WaveReconciler(checkpoint_store='x')",
    lambda c: WaveReconciler(_noop, checkpoint_store="x"),  # type: ignore[arg-type]
    "checkpoint_store",
    "'x'",
)
case(
    "WaveReconciler(restart_settings={})",
    lambda c: WaveReconciler(_noop, restart_settings={}),  # type: ignore[arg-type]
    "restart_settings",
    "{}",
)
for field_name in ("backoff_cap_s", "jitter", "crash_loop_window_s", "healthy_after_s"):
    for value in (-1, NAN, "5", True):
        case(
            f"RestartSettings.{field_name}={value!r}",
            make(RestartSettings, **{field_name: value}),
            field_name,
            shown(value),
        )
for value in (-1, 2.5, NAN, "3", True):
    case(
        f"RestartSettings.crash_loop_burst={value!r}",
        make(RestartSettings, crash_loop_burst=value),
        "crash_loop_burst",
        shown(value),
    )


def reconciler_update(*args: Any, **kwargs: Any) -> Thunk:
    async def call(calls: Calls) -> Any:
        rec = WaveReconciler(body_of(calls))
        await rec.start()
        try:
            await rec.update(*args, **kwargs)
        finally:
            await rec.stop()

    return call


GOOD: dict[str, Any] = {"a": {}, "b": {}}
case("WaveReconciler.update(tasks=['a'])", reconciler_update(["a"]), "tasks", "list")
case("WaveReconciler.update(unknown dependency)", reconciler_update(GOOD, {"b": ["zzz"]}), "'zzz'")
case(
    "WaveReconciler.update(a cycle)",
    reconciler_update(GOOD, {"a": ["b"], "b": ["a"]}),
    "b -> a -> b",
)
case("WaveReconciler.update(dependencies={'b': 5})", reconciler_update(GOOD, {"b": 5}), "5")
case("WaveReconciler.update(policies='bogus')", reconciler_update(GOOD, None, "bogus"), "'bogus'")
case(
    "WaveReconciler.update(policies={'zzz': 'always'})",
    reconciler_update(GOOD, None, {"zzz": "always"}),
    "'zzz'",
)
for value in (-1, 2.5, NAN, "3", True):
    case(
        f"WaveReconciler.update(max_restart_attempts={value!r})",
        reconciler_update(GOOD, max_restart_attempts=value),
        "max_restart_attempts",
        shown(value),
    )
for value in (-1, NAN, "3", True):
    case(
        f"WaveReconciler.update(restart_backoff_base={value!r})",
        reconciler_update(GOOD, restart_backoff_base=value),
        "restart_backoff_base",
        shown(value),
    )
for value in (0, -1, NAN, "5", True):
    case(
        f"WaveReconciler.update(timeouts={value!r})",
        reconciler_update(GOOD, timeouts=value),
        "timeout",
        shown(value),
    )


def reconciler_stop(timeout: Any) -> Thunk:
    async def call(calls: Calls) -> Any:
        rec = WaveReconciler(_noop)
        await rec.start()
        try:
            await rec.stop(timeout)
        finally:
            await rec.stop()

    return call


def reconciler_wait(timeout: Any) -> Thunk:
    async def call(calls: Calls) -> Any:
        rec = WaveReconciler(body_of(calls))
        try:
            return await rec.wait_until_complete(timeout=timeout)
        finally:
            await rec.stop()

    return call


for value in (NAN, "5", [1]):
    case(
        f"WaveReconciler.wait_until_complete(timeout={value!r})",
        reconciler_wait(value),
        "timeout",
        shown(value),
    )
for value in (-1, NAN, "5", True):
    case(f"WaveReconciler.stop(timeout={value!r})", reconciler_stop(value), "timeout", shown(value))
case(
    "WaveReconciler with ids None and (1, 2)",
    reconciler_update({None: {}, (1, 2): {}}, {(1, 2): [None]}),
    refused=False,
)


# -- MetaDAG ---------------------------------------------------------------------------------


def meta_add(*specs: Any, **kwargs: Any) -> Thunk:
    def call(calls: Calls) -> Any:
        meta = MetaDAG()
        for spec in specs:
            meta.add_node(spec, **kwargs)
        return meta

    return call


def node(node_id: Any = "n", **kwargs: Any) -> MetaDAGNodeSpec:
    kwargs.setdefault("tasks", {"a": {}})
    kwargs.setdefault("task_executor", _noop)
    return MetaDAGNodeSpec(node_id=node_id, **kwargs)


case("MetaDAG.add_node('n')", meta_add("n"), "MetaDAGNodeSpec", "str")
case("MetaDAG.add_node(twice)", meta_add(node(), node()), "'n'")
case("MetaDAG.add_node(trigger_rule='x')", meta_add(node(), trigger_rule="x"), "'x'")
case("MetaDAG.add_node(task_executor='f')", meta_add(node(task_executor="f")), "'n'", "'f'")
case("MetaDAG.add_node(tasks=['a'])", meta_add(node(tasks=["a"])), "'n'", "list")
case(
    "MetaDAG.add_node(task_dependencies unknown)",
    meta_add(node(task_dependencies={"a": ["zzz"]})),
    "'zzz'",
)
case(
    "MetaDAG.add_node(task cycle)",
    meta_add(node(tasks={"a": {}, "b": {}}, task_dependencies={"a": ["b"], "b": ["a"]})),
    "'n'",
    "b -> a -> b",
)
case(
    "MetaDAG.add_node(reconciler completion_timeout=nan)",
    meta_add(node(node_type="reconciler", completion_timeout=NAN)),
    "completion_timeout",
    "nan",
)
case("MetaDAG(config='x')", lambda c: MetaDAG("x"), "config", "'x'")  # type: ignore[arg-type]


def meta_run(*nodes: tuple[MetaDAGNodeSpec, Any], **kwargs: Any) -> Thunk:
    async def call(calls: Calls) -> Any:
        meta = MetaDAG()
        for spec, upstream in nodes:
            meta.add_node(spec, depends_on=upstream)
        return await meta.execute(**kwargs)

    return call


case("MetaDAG.execute(depends_on unknown)", meta_run((node(), ["zzz"])), "'zzz'")
case(
    "MetaDAG.execute(node cycle)",
    meta_run((node("n"), ["m"]), (node("m"), ["n"])),
    "'n'",
)
case("MetaDAG.execute(store without run_id)", meta_run((node(), None), store=object()), "run_id")
case(
    "MetaDAG.execute(node ids None and (1, 2))",
    meta_run((node(None), None), (node((1, 2)), [None])),
    refused=False,
    check=lambda result, calls: _same(result.succeeded, True),
)


REC = {"node_type": "reconciler"}
for what, fields, named in (
    ("reconciler, restart_settings={}", {**REC, "restart_settings": {}}, "restart_settings"),
    ("reconciler, poll_interval_s=nan", {**REC, "poll_interval_s": NAN}, "poll_interval_s"),
    ("reconciler, poll_interval_s='2'", {**REC, "poll_interval_s": "2"}, "poll_interval_s"),
    ("reconciler, max_restart_attempts=2.5", {**REC, "max_restart_attempts": 2.5}, "attempts"),
    ("reconciler, timeouts=nan", {**REC, "timeouts": NAN}, "timeout"),
    ("config='x'", {"config": "x"}, "config"),
    ("task_dependencies=['a']", {"task_dependencies": ["a"]}, "task_dependencies"),
    ("task_dependencies={'a': 5}", {"task_dependencies": {"a": 5}}, "5"),
    ("specialist=[]", {"specialist": []}, "specialist"),
    ("accept_partial='no'", {"accept_partial": "no"}, "accept_partial"),
    ("inject_dep_outputs='no'", {"inject_dep_outputs": "no"}, "inject_dep_outputs"),
    ("node_type='nope'", {"node_type": "nope"}, "'nope'"),
    ("node_type='meta' without meta", {"node_type": "meta"}, "meta="),
):  # fmt: skip
    case(f"MetaDAG.add_node({what})", meta_run((node(**fields), None)), "'n'", named)
case("MetaDAG.add_node(node_id=[])", meta_add(node([])), "node_id", "[]")
case("MetaDAG.add_node(depends_on=[[]])", meta_run((node(), [[]])), "depends_on", "[]")
case(
    "MetaDAG.add_node(depends_on=5) names node 5",
    meta_run((node(5), None), (node(), 5)),
    refused=False,
    check=lambda result, calls: _same(result.succeeded, True),
)


# -- store paths ---------------------------------------------------------------------------

STORE_DIR: list[Path] = []


def closed(store: SQLiteStore) -> SQLiteStore:
    """``store`` closed from sync code, as ``await store.close()`` would (both connections)."""
    store._shutdown().result(timeout=30)
    store._writer.join()
    store._reader.close()
    return store


def store_at(where: Callable[[Path], Path]) -> Thunk:
    def call(calls: Calls) -> Any:
        return closed(SQLiteStore(where(STORE_DIR[0])))

    return call


def a_directory(d: Path) -> Path:
    (d / "dir.db").mkdir()
    return d / "dir.db"


def a_fifo(d: Path) -> Path:
    os.mkfifo(d / "fifo.db")
    return d / "fifo.db"


def not_sqlite(d: Path) -> Path:
    (d / "text.db").write_text("hello, not a database\n" * 100)
    return d / "text.db"


def read_only(d: Path) -> Path:
    closed(SQLiteStore(d / "ro.db"))
    (d / "ro.db").chmod(stat.S_IRUSR)
    return d / "ro.db"


def missing_dir(d: Path) -> Path:
    return d / "no" / "such" / "dir" / "runs.db"


def symlink_loop(d: Path) -> Path:
    (d / "loop1").symlink_to(d / "loop2")
    (d / "loop2").symlink_to(d / "loop1")
    return d / "loop1"


def under_a_file(d: Path) -> Path:
    (d / "plain").write_text("x")
    return d / "plain" / "runs.db"


def dangling_symlink(d: Path) -> Path:
    (d / "dangling").symlink_to(d / "nowhere" / "x.db")
    return d / "dangling"


STORE_PATHS: list[tuple[str, Callable[[Path], Path], str, bool]] = [
    ("a directory", a_directory, "dir.db", True),
    ("a FIFO", a_fifo, "fifo.db", True),
    ("a file that is not SQLite", not_sqlite, "text.db", True),
    ("a path in a missing directory", missing_dir, "runs.db", True),
    ("a symlink loop", symlink_loop, "loop1", True),
    ("a path under a plain file", under_a_file, "runs.db", True),
    ("a symlink to a missing directory", dangling_symlink, "dangling", True),
    # root may write to a read-only file: then it opens; otherwise it is refused
    ("a read-only file", read_only, "ro.db", os.geteuid() != 0),
]
for what, where, name, refused in STORE_PATHS:
    case(
        f"SQLiteStore({what})",
        store_at(where),
        name,
        refused=refused,
        errors=(StoreError, OSError, sqlite3.Error),
    )
for path in ("", ":memory:", "file::memory:?cache=shared"):
    case(f"SQLiteStore({path!r})", make(SQLiteStore, path), "MemoryStore")
for option, value in (
    ("batch_size", 0),
    ("batch_size", 2.5),
    ("flush_interval", NAN),
    ("flush_interval", 0),
    ("lease_seconds", NAN),
    ("lease_seconds", -1),
    ("busy_timeout", NAN),
    ("busy_timeout", -1),
    ("max_pending", 0),
    ("max_pending_bytes", NAN),
):
    case(
        f"SQLiteStore({option}={value!r})",
        make(lambda **kw: SQLiteStore(STORE_DIR[0] / "opts.db", **kw), **{option: value}),
        option,
        shown(value),
    )


# -- running the table ---------------------------------------------------------------------

BAD = [c for c in CASES if c.bad]


def test_the_campaign_has_at_least_200_distinct_bad_inputs() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    assert len(BAD) >= 200, len(BAD)


@pytest.fixture(autouse=True)
def _store_dir(tmp_path: Path) -> Iterator[None]:
    STORE_DIR[:] = [tmp_path]
    yield
    with contextlib.suppress(OSError):
        for p in tmp_path.rglob("*"):
            if p.is_file() and not p.is_symlink():
                p.chmod(stat.S_IRUSR | stat.S_IWUSR)


def _run(case: Case, calls: Calls) -> Any:
    async def main() -> Any:
        async with asyncio.timeout(600):  # virtual seconds: a hang fails here
            out = case.call(calls)
            if inspect.isawaitable(out):
                out = await out
            return out

    return run_virtual(main())[0]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_is_refused_clearly_or_handled(case: Case) -> None:
    calls = Calls()
    if case.refused:
        with pytest.raises(case.errors) as raised:
            _run(case, calls)
        message = str(raised.value)
        for name in case.names:
            assert name in message, f"{name!r} is not named in {message!r}"
        assert not calls, f"bodies ran before the error: {calls!r}"
    else:
        outcome = _run(case, calls)
        if case.check is not None:
            case.check(outcome, calls)


# -- generated values ----------------------------------------------------------------------

FUZZ = settings(
    max_examples=int(os.environ.get("WAVE_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.tuples(st.integers()),
)


def _count_ok(value: Any, minimum: int) -> bool:
    return type(value) is int and value >= minimum


@FUZZ
@given(field=st.sampled_from(COUNT_FIELDS), value=ANYTHING)
def test_any_value_of_a_count_field_is_an_int_at_least_one_or_refused(
    field: str, value: Any
) -> None:
    if _count_ok(value, 1):
        assert getattr(WaveConfig(**{field: value}), field) == value
    else:
        with pytest.raises(ValueError, match=re.escape(field)):
            WaveConfig(**{field: value})


@FUZZ
@given(
    field=st.sampled_from(["default_task_timeout", "per_wave_timeout", "total_execution_timeout"]),
    value=ANYTHING,
)
def test_any_timeout_is_a_positive_number_or_refused(field: str, value: Any) -> None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    kwargs: dict[str, Any] = {field: value}
    if value is None:
        assert getattr(WaveConfig(**kwargs), field) == INF
    elif number and value > 0:
        assert getattr(WaveConfig(**{field: value}), field) == value
    else:
        with pytest.raises(ValueError, match=re.escape(field)):
            WaveConfig(**{field: value})


@FUZZ
@given(budgets=st.dictionaries(st.text(max_size=2), ANYTHING, max_size=3))
def test_any_group_budgets_are_ints_at_least_one_or_refused(budgets: dict[str, Any]) -> None:
    if all(_count_ok(b, 1) for b in budgets.values()):
        assert WaveConfig(specialist_budgets=budgets).specialist_budgets == budgets
    else:
        with pytest.raises(ValueError, match="specialist_budgets"):
            WaveConfig(specialist_budgets=budgets)


@FUZZ
@given(field=st.sampled_from(["failure_threshold", "success_threshold"]), value=ANYTHING)
def test_any_breaker_threshold_is_an_int_at_least_one_or_refused(field: str, value: Any) -> None:
    if _count_ok(value, 1):
        assert getattr(CircuitBreaker("k", **{field: value}), field) == value
    else:
        with pytest.raises(ValueError, match=re.escape(field)):
            CircuitBreaker("k", **{field: value})


@FUZZ
@given(initial=ANYTHING, min_val=ANYTHING)
def test_any_semaphore_bounds_make_a_working_semaphore_or_are_refused(
    initial: Any, min_val: Any
) -> None:
    if _count_ok(initial, 1) and _count_ok(min_val, 1) and min_val <= 10_000:
        sem = AdaptiveSemaphore(initial, min_val=min_val)
        assert 1 <= sem.limit <= max(initial, 1)
    else:
        with pytest.raises(ValueError, match=r"initial|min_val"):
            AdaptiveSemaphore(initial, min_val=min_val)


ODD_IDS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=3),
    st.tuples(st.integers(), st.text(max_size=1)),
    st.frozensets(st.integers(), max_size=2),
)


@FUZZ
@given(
    ids=st.lists(ODD_IDS, min_size=1, max_size=6),
    edges=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=8),
    costs=st.dictionaries(st.integers(0, 5), ANYTHING, max_size=2),
)
def test_any_graph_of_odd_ids_runs_in_dependency_order_or_is_refused_before_running(
    ids: list[Any], edges: list[tuple[int, int]], costs: dict[int, Any]
) -> None:
    tasks: dict[Any, Any] = {task_id: {} for task_id in ids}
    keys = list(tasks)
    deps: dict[Any, list[Any]] = {}
    for a, b in edges:
        if a < len(keys) and b < len(keys) and a < b:  # acyclic: edges go forward
            deps.setdefault(keys[b], []).append(keys[a])
    priority = {keys[i]: v for i, v in costs.items() if i < len(keys)}
    costs_ok = all(
        isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in priority.values()
    )
    calls = Calls()

    async def main() -> Any:
        return await DAGExecutor().execute(
            tasks, deps, body_of(calls), priority_costs=priority or None
        )

    if not costs_ok:
        with pytest.raises(ValueError, match="cost of task"):
            run_virtual(main())
        assert not calls
        return
    result, _ = run_virtual(main())
    assert result.succeeded
    position = {repr(t): i for i, t in enumerate(calls)}
    assert len(calls) == len(keys)
    for task_id, upstream in deps.items():
        for up in upstream:
            assert position[repr(up)] < position[repr(task_id)]


def _count(argv: list[str]) -> int:
    """Run this module's tests (in a fresh interpreter) and print how many bad inputs were tried."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-m", "pytest", __file__, "-q", *argv], cwd=root)
    areas = Counter(re.split(r"[.(= ]", c.id, maxsplit=1)[0] for c in BAD)
    print(f"\n{len(BAD)} bad-input cases ({len(CASES)} table cases in all, with legal edge values)")
    for area, n in sorted(areas.items(), key=lambda kv: -kv[1]):
        print(f"  {area:<24} {n}")
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(_count(sys.argv[1:]))
