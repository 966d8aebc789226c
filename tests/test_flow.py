"""The typed flow API: calls become the dict API's graph, options its per-task mappings."""

from __future__ import annotations

import asyncio
import functools
import math
import os
import pickle
import threading
from collections.abc import Iterator
from typing import Any, cast

import pytest

from tests import flow_bodies, typing_flow
from wave_executor import (
    ChildId,
    DAGExecutor,
    EventType,
    Flow,
    FlowRun,
    Handle,
    RetryPolicy,
    TaskStatus,
    WaveConfig,
)
from wave_executor.backends import InlineBackend, ProcessBackend, ThreadBackend
from wave_executor.flow import (
    Call,
    MapCall,
    OutputUnavailableError,
    Task1,
    TaskAny,
    run_call,
    task,
)

FAST = WaveConfig(retry_policy=RetryPolicy(max_retries=0))


def fast_retries(n: int) -> RetryPolicy:
    return RetryPolicy(max_retries=n, base_delay=0.0)


# -- building and running --------------------------------------------------------


async def test_calls_wire_outputs_into_arguments() -> None:
    flow = Flow("wiring")

    @flow.task
    async def fetch(url: str) -> str:
        await asyncio.sleep(0)
        return url.upper()

    @flow.task
    async def join(a: str, b: str, sep: str) -> str:
        return sep.join([a, b])

    a, b = fetch("a"), fetch("b")
    joined = join(a, b, "+")
    run = await flow.run(config=FAST)
    assert run.succeeded
    assert (run[a], run[b], run[joined]) == ("A", "B", "A+B")
    assert flow.task_ids == ["fetch", "fetch-2", "join"]
    assert (a.task_id, joined.task_id) == ("fetch", "join")
    assert run.result.task_results["join"].status == TaskStatus.SUCCESS


async def test_the_typing_examples_run_as_typed() -> None:
    run = await typing_flow.well_typed()
    assert run.succeeded


def test_the_plan_is_the_dict_api() -> None:
    flow = Flow("plan")

    @flow.task(retries=2, timeout=3.0, group="io", cost=5)
    async def fetch(url: str) -> str:
        return url

    @flow.task(trigger_rule="all_done", retries=fast_retries(1), backend=InlineBackend())
    def cleanup(path: str) -> None:
        pass

    @flow.task(timeout=math.inf)
    def plain(x: int) -> int:
        return x

    page = fetch("u")
    cleanup("/tmp/x", after=[page])
    plain(1)
    with ThreadBackend() as threads:
        plan = flow.plan(WaveConfig(retry_backoff_factor=3.0), thread_backend=threads)
        assert plan.thread_backend is threads
        assert plan.backends["plain"] is threads
    assert set(plan.tasks) == {"fetch", "cleanup", "plain"}
    assert all(isinstance(spec, Call) for spec in plan.tasks.values())
    assert plan.dependencies == {"cleanup": ["fetch"]}
    assert plan.task_executor is run_call
    assert plan.retry_policies["fetch"].max_retries == 2
    assert plan.retry_policies["fetch"].backoff_factor == 3.0  # the config's backoff
    assert plan.retry_policies["cleanup"] == fast_retries(1)
    assert plan.timeouts == {"fetch": 3.0, "plain": math.inf}
    assert plan.groups == {"fetch": "io"}
    assert plan.trigger_rules == {"cleanup": "all_done"}
    assert plan.priority_costs == {"fetch": 5.0}
    assert type(plan.backends["fetch"]) is InlineBackend
    assert type(plan.backends["cleanup"]) is InlineBackend
    cleanup_call, plain_call = plan.tasks["cleanup"], plan.tasks["plain"]
    assert isinstance(cleanup_call, Call) and isinstance(plain_call, Call)
    assert cleanup_call.inline_sync and not plain_call.inline_sync
    options = plan.execute_options()
    assert options["inject_dep_outputs"] is True
    assert set(options) == {
        "inject_dep_outputs", "retry_policies", "timeouts", "groups", "trigger_rules",
        "priority_costs", "backends",
    }  # fmt: skip


def test_a_plan_without_plain_functions_has_no_thread_backend() -> None:
    flow = Flow()

    @flow.task
    async def one() -> int:
        return 1

    one()
    plan = flow.plan()
    assert plan.thread_backend is None
    assert set(plan.execute_options()) == {"inject_dep_outputs", "backends"}


async def test_executing_the_plan_by_hand_gives_the_same_outputs() -> None:
    flow = Flow()

    @flow.task
    async def double(x: int) -> int:
        return 2 * x

    @flow.task
    def add(a: int, b: int) -> int:
        return a + b

    total = add(double(1), double(add(2, 3)))
    run = await flow.run(config=FAST)
    with ThreadBackend() as threads:
        plan = flow.plan(thread_backend=threads)
        by_hand = await DAGExecutor(FAST).execute(
            plan.tasks, plan.dependencies, plan.task_executor, **plan.execute_options()
        )
    assert run[total] == 12
    assert by_hand.outputs() == run.result.outputs()


async def test_a_flow_runs_again_with_fresh_outputs() -> None:
    flow = Flow()
    calls: list[int] = []

    @flow.task
    async def count() -> int:
        calls.append(1)
        return len(calls)

    handle = count()
    first, second = await flow.run(config=FAST), await flow.run(config=FAST)
    assert (first[handle], second[handle]) == (1, 2)


# -- where functions run ----------------------------------------------------------


async def test_plain_functions_run_on_threads_and_async_ones_in_the_loop() -> None:
    flow = Flow()
    loop_thread = threading.get_ident()

    @flow.task
    def plain() -> int:
        return threading.get_ident()

    @flow.task(backend=InlineBackend())
    def quick() -> int:
        return threading.get_ident()

    @flow.task
    async def coroutine() -> int:
        return threading.get_ident()

    p, q, c = plain(), quick(), coroutine()
    run = await flow.run(config=FAST)
    assert run[p] != loop_thread
    assert run[q] == loop_thread and run[c] == loop_thread


async def test_blocking_plain_functions_do_not_hold_up_the_loop() -> None:
    flow = Flow(thread_backend=ThreadBackend(max_workers=4))
    release = threading.Event()

    @flow.task
    def blocks() -> str:
        assert release.wait(10), "never released"
        return "released"

    @flow.task
    async def releases() -> None:
        await asyncio.sleep(0.01)
        release.set()  # only possible while the loop keeps running

    held = blocks()
    releases()
    try:
        run = await flow.run(config=FAST)
    finally:
        release.set()
        assert flow.thread_backend is not None
        flow.thread_backend.close()  # type: ignore[attr-defined]
    assert run[held] == "released"


def test_an_async_function_refuses_a_pool_backend() -> None:
    flow = Flow()
    with pytest.raises(ValueError, match="'async def' runs in the event loop"):

        @flow.task(backend=ThreadBackend())
        async def fetch() -> None:
            pass


@pytest.fixture
def processes() -> Iterator[ProcessBackend]:
    with ProcessBackend(max_workers=1) as backend:
        yield backend


async def test_module_level_tasks_run_in_processes(processes: ProcessBackend) -> None:
    with Flow("in processes") as flow:
        square = flow_bodies.square.with_options(backend=processes)
        squares = [square.with_options(name=f"square {x}")(x) for x in (2, 3)]
        total = flow_bodies.pid_and_sum.with_options(backend=processes)(flow.gather(squares))
        mapped = square.map(flow_bodies.pid_and_sum.with_options(backend=processes)([1, 2]))
    run = await flow.run(config=FAST)
    pid, value = run[total]
    assert value == 13 and pid != os.getpid()
    assert run[mapped][1] == 9  # (pid, 3) squared item by item: the pid, then 9
    assert pickle.loads(pickle.dumps(flow_bodies.square)) is flow_bodies.square
    copy = flow_bodies.square.with_options(retries=1)
    assert pickle.loads(pickle.dumps(copy)) is flow_bodies.square


async def test_tasks_of_no_flow_serve_every_flow() -> None:
    @task
    async def add(a: int, b: int) -> int:
        return a + b

    with pytest.raises(RuntimeError, match="call it inside 'with flow:'"):
        add(1, 2)
    with Flow("outer") as outer:
        three = add(1, 2)
        with Flow("inner") as inner:
            ten = add(4, 6)
        seven = add(three, 4)
    assert (outer.task_ids, inner.task_ids) == (["add", "add-2"], ["add"])
    first, second = await outer.run(config=FAST), await inner.run(config=FAST)
    assert (first[seven], second[ten]) == (7, 10)
    with inner, pytest.raises(ValueError, match="belongs to flow 'outer'"):
        add(three, 1)


def test_a_task_defined_in_a_function_says_why_it_cannot_pickle() -> None:
    flow = Flow()

    @flow.task
    def local(x: int) -> int:
        return x

    with pytest.raises(pickle.PicklingError, match="not defined at module level"):
        pickle.dumps(local)


async def test_a_partial_is_a_task_too() -> None:
    flow = Flow()

    async def scale(factor: int, x: int) -> int:
        return factor * x

    # mypy sees a partial as taking *args and types its task as Task6 of Any:
    # a def (or a lambda) gives the task its real arity.
    triple = cast(Task1[int, int], flow.task(functools.partial(scale, 3)))
    handle = triple(5)
    assert triple.name == "partial"
    run = await flow.run(config=FAST)
    assert run[handle] == 15


# -- options at work --------------------------------------------------------------


async def test_retries_retry_and_a_retry_count_is_recorded() -> None:
    flow = Flow()
    attempts: list[int] = []

    @flow.task(retries=fast_retries(2))
    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return "ok"

    handle = flaky()
    run = await flow.run(config=FAST)
    assert run[handle] == "ok"
    assert run.task_result(handle).retry_count == 2


async def test_an_int_of_retries_uses_the_configs_backoff() -> None:
    flow = Flow()
    attempts: list[float] = []

    @flow.task(retries=1)
    async def flaky() -> str:
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) == 1:
            raise ConnectionError("once")
        return "ok"

    handle = flaky()
    config = WaveConfig(retry_policy=RetryPolicy(max_retries=0, base_delay=0.05))
    run = await flow.run(config=config)
    assert run[handle] == "ok"
    assert attempts[1] - attempts[0] >= 0.04


async def test_a_timeout_ends_an_attempt_and_the_output_is_unavailable() -> None:
    flow = Flow()

    @flow.task(timeout=0.02)
    async def slow() -> str:
        await asyncio.sleep(10)
        return "late"

    @flow.task
    async def after_slow(text: str) -> str:
        return text

    handle = slow()
    downstream = after_slow(handle)
    run = await flow.run(config=FAST)
    assert not run.succeeded
    assert run.task_result(handle).status == TaskStatus.TIMEOUT
    with pytest.raises(OutputUnavailableError, match=r"'slow' is unavailable: it ended timeout"):
        run[handle]
    with pytest.raises(OutputUnavailableError, match=r"'after_slow'.*skipped \(upstream_failed\)"):
        run[downstream]
    assert run.get(handle, "default") == "default"


async def test_an_all_done_cleanup_runs_after_a_failure() -> None:
    flow = Flow()
    cleaned: list[str] = []

    @flow.task
    async def prepare() -> str:
        return "/scratch"

    @flow.task
    async def work(path: str) -> int:
        raise RuntimeError(f"disk full in {path}")

    @flow.task(trigger_rule="all_done")
    async def cleanup(path: str) -> None:
        cleaned.append(path)

    path = prepare()
    result = work(path)
    done = cleanup(path, after=[result])
    run = await flow.run(config=FAST)
    assert cleaned == ["/scratch"]
    assert run.task_result(done).status == TaskStatus.SUCCESS
    assert run.task_result(result).status == TaskStatus.FAILED
    assert flow.plan().dependencies["cleanup"] == ["prepare", "work"]


async def test_a_task_whose_input_failed_fails_with_a_clear_error() -> None:
    flow = Flow()

    @flow.task
    async def broken() -> str:
        raise RuntimeError("no")

    @flow.task(trigger_rule="all_done")
    async def report(text: str) -> str:
        return text

    handle = report(broken())
    run = await flow.run(config=FAST)
    record = run.task_result(handle)
    assert record.status == TaskStatus.FAILED
    assert "the output of task 'broken' is unavailable" in (record.error or "")


async def test_after_orders_calls_without_passing_outputs() -> None:
    flow = Flow()
    order: list[str] = []

    @flow.task
    async def step(name: str, delay: float) -> str:
        await asyncio.sleep(delay)
        order.append(name)
        return name

    first = step("first", 0.02)
    step("second", 0.0, after=[first])
    await flow.run(config=FAST)
    assert order == ["first", "second"]


async def test_a_group_budget_limits_its_calls() -> None:
    flow = Flow()
    running, peak = 0, 0

    @flow.task(group="api")
    async def call(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.005)
        running -= 1
        return i

    handles = [call(i) for i in range(6)]
    config = WaveConfig(retry_policy=RetryPolicy(max_retries=0), specialist_budgets={"api": 2})
    run = await flow.run(config=config)
    assert run[flow.gather(handles)] == list(range(6))
    assert peak == 2


async def test_costs_put_the_long_chain_first() -> None:
    flow = Flow()
    started: list[str] = []

    @flow.task(cost=1)
    async def short(name: str) -> str:
        started.append(name)
        return name

    long = short.with_options(cost=100)
    short("a")
    long("b")
    config = WaveConfig(retry_policy=RetryPolicy(max_retries=0), max_parallel_per_wave=1)
    await flow.run(config=config)
    assert started == ["b", "a"]


async def test_the_executor_brings_its_events() -> None:
    events: list[tuple[str, object]] = []
    executor = DAGExecutor(FAST)
    executor.on_event(lambda kind, event: events.append((kind, event["task_id"])))
    flow = Flow()

    @flow.task
    async def one() -> int:
        return 1

    one()
    await flow.run(executor)
    assert (EventType.TASK_COMPLETED, "one") in events


# -- run-time fan-out: map and map_values --------------------------------------------


async def test_map_makes_one_child_per_item_known_at_run_time() -> None:
    flow = Flow()

    @flow.task
    async def list_pages(site: str) -> list[str]:
        return [f"{site}/{n}" for n in ("a", "bb", "ccc")]

    @flow.task
    async def size(page: str) -> int:
        await asyncio.sleep(0.001 * (3 - len(page)))  # finish out of order
        return len(page)

    @flow.task
    def total(sizes: list[int]) -> int:
        return sum(sizes)

    sizes = size.map(list_pages("s"))
    result = total(sizes)
    run = await flow.run(config=FAST)
    assert run[sizes] == [3, 4, 5]  # in the order of the items
    assert run[result] == 12
    children = [t for t in run.result.task_results if isinstance(t, ChildId)]
    assert children == [ChildId("size", 0), ChildId("size", 1), ChildId("size", 2)]
    assert run.result.task_results[ChildId("size", 1)].output == 4
    plan = flow.plan()
    assert set(plan.fan_out) == {"size"} and isinstance(plan.tasks["size"], MapCall)
    assert plan.execute_options()["fan_out"] == plan.fan_out


async def test_map_values_keeps_the_keys_and_extra_arguments_are_shared() -> None:
    flow = Flow()

    @flow.task
    async def pages() -> dict[str, str]:
        return {"home": "welcome home", "about": "about us here"}

    @flow.task
    async def prefix() -> str:
        return "#"

    @flow.task
    def tag(text: str, mark: str) -> str:
        return mark + text.split()[0]

    tagged = tag.map_values(pages(), prefix())
    listed = tag.map(["x y", "z"], "!")
    run = await flow.run(config=FAST)
    assert run[tagged] == {"home": "#welcome", "about": "#about"}
    assert run[listed] == ["!x", "!z"]


async def test_children_of_a_plain_function_run_on_threads() -> None:
    flow = Flow()

    @flow.task
    def where(item: int) -> tuple[int, int]:
        return item, threading.get_ident()

    @flow.task(backend=InlineBackend())
    def in_loop(item: int) -> int:
        return threading.get_ident()

    threads, loop = where.map([1, 2]), in_loop.map([1])
    run = await flow.run(config=FAST)
    assert [i for i, _ in run[threads]] == [1, 2]
    assert all(t != threading.get_ident() for _, t in run[threads])
    assert run[loop] == [threading.get_ident()]


async def test_children_inherit_retries_and_group() -> None:
    flow = Flow()
    tries: dict[int, int] = {}
    running, peak = 0, 0

    @flow.task(retries=fast_retries(1), group="api")
    async def flaky(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.002)
        running -= 1
        tries[i] = tries.get(i, 0) + 1
        if tries[i] == 1 and i % 2:
            raise ConnectionError("first try of an odd item")
        return i

    handle = flaky.map(list(range(6)))
    config = WaveConfig(retry_policy=RetryPolicy(max_retries=0), specialist_budgets={"api": 2})
    run = await flow.run(config=config)
    assert run[handle] == list(range(6))
    assert tries == {0: 1, 1: 2, 2: 1, 3: 2, 4: 1, 5: 2}
    assert peak <= 2


async def test_a_failed_child_fails_the_map_and_its_dependents() -> None:
    flow = Flow()

    @flow.task
    async def parse(text: str) -> int:
        return int(text)

    @flow.task
    async def total(values: list[int]) -> int:
        return sum(values)

    @flow.task(trigger_rule="all_done")
    async def cleanup() -> str:
        return "cleaned"

    numbers = parse.map(["1", "x", "3"])
    summed = total(numbers)
    done = cleanup(after=[summed])
    run = await flow.run(config=FAST)
    assert not run.succeeded
    assert run.result.task_results[ChildId("parse", 1)].status == TaskStatus.FAILED
    with pytest.raises(OutputUnavailableError, match=r"1 of 3 fan-out children of 'parse'"):
        run[numbers]
    assert run.task_result(summed).status == TaskStatus.SKIPPED
    assert run[done] == "cleaned"


async def test_an_all_done_reducer_gets_the_children_that_succeeded() -> None:
    flow = Flow()

    @flow.task
    async def parse(text: str) -> int:
        return int(text)

    @flow.task(trigger_rule="all_done")
    async def partial_total(values: list[int]) -> int:
        return sum(values)

    @flow.task(trigger_rule="all_done")
    async def by_key(values: dict[str, int]) -> list[str]:
        return sorted(values)

    numbers = parse.map(["1", "x", "3", "y", "5"])
    total = partial_total(numbers)
    keys = by_key(parse.map_values({"a": "1", "b": "?"}))
    run = await flow.run(config=FAST)
    assert run[total] == 9  # 1 + 3 + 5: a shorter list, still a list[int]
    assert run[keys] == ["a"]
    with pytest.raises(OutputUnavailableError, match="2 of 5 fan-out children"):
        run[numbers]  # the map itself failed


async def test_an_empty_map_gives_an_empty_list_and_a_wrong_kind_fails() -> None:
    flow = Flow()

    @flow.task
    async def nothing() -> list[int]:
        return []

    @flow.task
    async def a_dict() -> Any:
        return {"a": 1}

    @flow.task
    async def a_list() -> Any:
        return [1]

    @flow.task
    async def double(x: int) -> int:
        return 2 * x

    empty = double.map(nothing())
    wrong = double.map(a_dict())
    wrong_too = double.map_values(a_list())
    run = await flow.run(config=FAST)
    assert run[empty] == []
    assert "double.map() needs a sequence" in (run.task_result(wrong).error or "")
    assert "double.map_values() needs a mapping" in (run.task_result(wrong_too).error or "")


# -- reading results ----------------------------------------------------------------


async def test_gather_dict_and_task_any() -> None:
    flow = Flow()

    @flow.task
    def describe(a: int, b: int, *, sep: str) -> str:
        return f"{a}{sep}{b}"

    assert isinstance(describe, TaskAny)
    one = describe(1, 2, sep=":")
    two = describe(3, b=4, sep="-")
    with pytest.raises(
        TypeError, match=r"task 'describe': missing a required (keyword-only )?argument: 'sep'"
    ):
        describe(1, 2)
    both = flow.gather_dict({"one": one, "two": two})
    run = await flow.run(config=FAST)
    assert run[both] == {"one": "1:2", "two": "3-4"}


async def test_a_handle_of_another_flow_is_refused() -> None:
    first, second = Flow("first"), Flow("second")

    @first.task
    async def make() -> int:
        return 1

    @second.task
    async def use(x: int) -> int:
        return x

    handle = make()
    with pytest.raises(ValueError, match="belongs to flow 'first'"):
        use(handle)
    run = await second.run(config=FAST)
    with pytest.raises(ValueError, match="another flow"):
        run[handle]


def test_mistakes_fail_when_the_call_is_made() -> None:
    flow = Flow()

    @flow.task
    async def fetch(url: str) -> str:
        return url

    assert isinstance(fetch, Task1)
    handle = fetch("u")
    with pytest.raises(TypeError, match="takes 2 positional arguments but 3 were given"):
        fetch("a", "b")  # type: ignore[call-arg, arg-type]
    with pytest.raises(TypeError, match=r"flow\.gather"):
        fetch([handle])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="no value while the flow is built"):
        bool(handle)
    with pytest.raises(TypeError, match="after= takes handles"):
        fetch("a", after=["b"])  # type: ignore[list-item]
    assert len(flow) == 1  # refused calls left nothing behind


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"trigger_rule": "all_fine"}, "unknown trigger rule 'all_fine'"),
        ({"retries": -1}, "retries must be"),
        ({"timeout": 0}, "timeout must be > 0"),
        ({"cost": math.nan}, "cost must be"),
        ({"name": ""}, "non-empty string"),
    ],
)
def test_bad_options_fail_at_the_decorator(options: dict[str, object], message: str) -> None:
    flow = Flow()
    with pytest.raises(ValueError, match=message):
        flow.task(**options)  # type: ignore[call-overload]


def test_with_options_renames_and_keeps_the_function() -> None:
    flow = Flow()

    @flow.task(retries=3)
    def parse(text: str) -> int:
        """Parse a number."""
        return int(text)

    home = parse.with_options(name="parse home")
    assert home.name == "parse home" and home.options.retries == 3
    assert home.fn is parse.fn and parse.fn("7") == 7
    assert parse.__doc__ == "Parse a number."
    h1, h2, h3 = home("1"), home("2"), parse("3")
    assert [h.task_id for h in (h1, h2, h3)] == ["parse home", "parse home-2", "parse"]
    assert repr(h1) == "<Handle 'parse home' of 'flow'>"
    assert isinstance(h1, Handle)


async def test_flow_run_repr_and_result() -> None:
    flow = Flow("named")

    @flow.task
    async def one() -> int:
        return 1

    one()
    run = await flow.run(config=FAST)
    assert isinstance(run, FlowRun)
    assert repr(run) == "<FlowRun of 'named': 1/1 succeeded, succeeded=True>"
    assert run.result.total_successful == 1
