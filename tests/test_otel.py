"""OpenTelemetry spans and metrics (wave_executor.otel) with the SDK's in-memory exporters.

Skipped when opentelemetry is not installed (the dev extra installs it).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.instrumentation")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode

from tests import otel_bodies
from wave_executor import (
    AdaptiveSemaphore,
    DAGExecutor,
    LevelExecutor,
    MetaDAG,
    MetaDAGNodeSpec,
    RetryPolicy,
    WaveConfig,
    WaveReconciler,
)
from wave_executor._runtime import observe
from wave_executor.backends import ProcessBackend, ThreadBackend
from wave_executor.otel import WaveExecutorInstrumentor

RETRY_ONCE = WaveConfig(retry_policy=RetryPolicy(max_retries=1, base_delay=0.01, jitter=False))


class Telemetry:
    """An instrumented SDK with in-memory span and metric exporters."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.tracer = self.tracer_provider.get_tracer("tests")

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        found = self.exporter.get_finished_spans()
        return [s for s in found if name is None or s.name == name]

    def span(self, name: str, **attributes: Any) -> ReadableSpan:
        """The one finished span named ``name`` whose attributes include ``attributes``."""
        found = [
            s
            for s in self.spans(name)
            if all(
                (s.attributes or {}).get(f"wave_executor.{k}") == v for k, v in attributes.items()
            )
        ]
        assert len(found) == 1, (name, attributes, [s.attributes for s in self.spans(name)])
        return found[0]

    def points(self, metric: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, value or histogram count) of each data point of ``metric``."""
        data = self.reader.get_metrics_data()
        out: list[tuple[dict[str, Any], Any]] = []
        if data is None:
            return out
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for m in scope.metrics:
                    if m.name == metric:
                        for p in m.data.data_points:
                            value = getattr(p, "value", None)
                            out.append((dict(p.attributes or {}), getattr(p, "count", value)))
        return out

    def total(self, metric: str, **attributes: Any) -> Any:
        return sum(
            v
            for attrs, v in self.points(metric)
            if all(attrs.get(f"wave_executor.{k}") == w for k, w in attributes.items())
        )


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    telemetry = Telemetry()
    instrumentor = WaveExecutorInstrumentor()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    try:
        yield telemetry
    finally:
        instrumentor.uninstrument()
        telemetry.meter_provider.shutdown()
        telemetry.tracer_provider.shutdown()


def parent_of(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def attr(span: ReadableSpan, name: str) -> Any:
    return (span.attributes or {}).get(f"wave_executor.{name}")


# -- a DAG run ----------------------------------------------------------------------


async def _flaky_dag(otel: Telemetry, config: WaveConfig) -> Any:
    """a ok; b fails once then succeeds; c always fails; d (after c) is skipped."""
    calls: dict[str, int] = {}

    async def body(task_id: str, spec: Any) -> str:
        calls[task_id] = calls.get(task_id, 0) + 1
        with otel.tracer.start_as_current_span(f"body {task_id}"):
            await asyncio.sleep(0)
            if task_id == "b" and calls[task_id] == 1:
                raise ValueError("flaky")
            if task_id == "c":
                raise RuntimeError("boom")
        return task_id

    tasks = {"a": 1, "b": 2, "c": 3, "d": 4}
    return await DAGExecutor(config).execute(tasks, {"b": ["a"], "d": ["c"]}, body)


async def test_dag_spans_nest_and_say_what_happened(otel: Telemetry) -> None:
    result = await _flaky_dag(otel, RETRY_ONCE)
    execution = otel.span("wave_executor.dag")
    assert attr(execution, "execution.id") == result.execution_id
    assert attr(execution, "execution.kind") == "dag"
    assert attr(execution, "status") == "failed"
    assert (attr(execution, "successful_tasks"), attr(execution, "skipped_tasks")) == (2, 1)
    assert execution.status.status_code is StatusCode.ERROR
    assert [e.name for e in execution.events] == ["task failed", "task skipped"]
    skipped = execution.events[1].attributes or {}
    assert skipped["wave_executor.task.id"] == "d"

    attempts = otel.spans("wave_executor.attempt")
    assert len(attempts) == 5  # a, b twice, c twice (d never ran)
    assert all(parent_of(s) == span_id(execution) for s in attempts)
    assert all(s.context is not None and s.context.trace_id == execution.context.trace_id
               for s in attempts)  # fmt: skip
    assert all(attr(s, "execution.id") == result.execution_id for s in attempts)

    first_b = otel.span("wave_executor.attempt", **{"task.id": "b", "attempt": 1})
    assert attr(first_b, "status") == "failed"
    assert attr(first_b, "retry.delay_s") == pytest.approx(0.01)
    assert first_b.status.status_code is StatusCode.ERROR
    assert first_b.status.description == "ValueError: flaky"
    exception = first_b.events[0]
    assert exception.name == "exception"
    assert (exception.attributes or {})["exception.type"] == "ValueError"
    second_b = otel.span("wave_executor.attempt", **{"task.id": "b", "attempt": 2})
    assert attr(second_b, "status") == "success"
    assert attr(second_b, "retry.delay_s") is None
    assert first_b.end_time is not None and second_b.start_time is not None
    # It ended with its body; the retry came after the 10 ms delay (less a margin: two clocks).
    assert first_b.end_time + 0.009e9 <= second_b.start_time
    assert second_b.status.status_code is StatusCode.UNSET

    last_c = otel.span("wave_executor.attempt", **{"task.id": "c", "attempt": 2})
    assert attr(last_c, "status") == "failed"
    assert attr(last_c, "retry.delay_s") is None  # the last attempt: no retry follows
    assert last_c.status.status_code is StatusCode.ERROR

    # Each body's own span is a child of its attempt's span.
    for attempt in attempts:
        children = [s for s in otel.spans() if parent_of(s) == span_id(attempt)]
        assert [s.name for s in children] == [f"body {attr(attempt, 'task.id')}"]


async def test_dag_metrics_count_tasks_attempts_and_retries(otel: Telemetry) -> None:
    await _flaky_dag(otel, RETRY_ONCE)
    assert otel.total("wave_executor.tasks", status="success") == 2
    assert otel.total("wave_executor.tasks", status="failed") == 1
    assert otel.total("wave_executor.tasks", status="skipped") == 1
    assert otel.total("wave_executor.retries") == 2  # b once, c once
    assert otel.total("wave_executor.attempt.duration", status="success") == 2
    assert otel.total("wave_executor.attempt.duration", status="failed") == 3
    kinds = {a["wave_executor.execution.kind"] for a, _ in otel.points("wave_executor.tasks")}
    assert kinds == {"dag"}


async def test_spans_and_metrics_do_not_need_events(otel: Telemetry) -> None:
    config = WaveConfig(emit_events=False, retry_policy=RetryPolicy(max_retries=1, base_delay=0.01))
    await _flaky_dag(otel, config)
    assert len(otel.spans("wave_executor.attempt")) == 5
    assert len(otel.spans("wave_executor.dag")) == 1
    assert otel.total("wave_executor.tasks") == 4
    assert otel.total("wave_executor.retries") == 2


async def test_a_timeout_is_an_error_span_with_its_status(otel: Telemetry) -> None:
    async def slow(task_id: str, spec: Any) -> None:
        await asyncio.sleep(10)

    config = WaveConfig(default_task_timeout=0.01, retry_policy=RetryPolicy(max_retries=0))
    await DAGExecutor(config).execute({"t": 1}, {}, slow)
    attempt = otel.span("wave_executor.attempt")
    assert attr(attempt, "status") == "timeout"
    assert attempt.status.status_code is StatusCode.ERROR
    assert otel.total("wave_executor.tasks", status="timeout") == 1


async def test_a_stopped_run_ends_its_cut_off_attempts(otel: Telemetry) -> None:
    slow_started = asyncio.Event()

    async def body(task_id: str, spec: Any) -> None:
        if task_id == "bad":
            await slow_started.wait()
            raise RuntimeError("stop")
        slow_started.set()
        await asyncio.sleep(10)

    config = WaveConfig(stop_on_first_error=True, retry_policy=RetryPolicy(max_retries=0))
    await DAGExecutor(config).execute({"bad": 1, "slow": 2}, {}, body)
    slow = otel.span("wave_executor.attempt", **{"task.id": "slow"})
    assert attr(slow, "status") == "cancelled"
    assert slow.status.status_code is StatusCode.UNSET
    assert otel.total("wave_executor.tasks", status="cancelled") == 1


async def test_a_cancelled_caller_ends_every_span(otel: Telemetry) -> None:
    started = asyncio.Event()

    async def body(task_id: str, spec: Any) -> None:
        started.set()
        await asyncio.sleep(10)

    run = asyncio.create_task(DAGExecutor().execute({"t": 1}, {}, body))
    await started.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert attr(otel.span("wave_executor.attempt"), "status") == "cancelled"
    assert attr(otel.span("wave_executor.dag"), "status") == "cancelled"


async def test_the_caller_span_is_the_execution_parent(otel: Telemetry) -> None:
    async def body(task_id: str, spec: Any) -> None:
        return None

    with otel.tracer.start_as_current_span("caller") as caller:
        await DAGExecutor().execute({"t": 1}, {}, body)
    assert parent_of(otel.span("wave_executor.dag")) == caller.get_span_context().span_id


# -- backends ---------------------------------------------------------------------------


async def test_a_thread_body_span_nests_under_its_attempt(otel: Telemetry) -> None:
    threads: list[str] = []

    def body(task_id: str, spec: Any) -> str:
        threads.append(threading.current_thread().name)
        with otel.tracer.start_as_current_span(f"body {task_id}"):
            return task_id

    with ThreadBackend(2) as backend:
        await DAGExecutor(backend=backend).execute({"a": 1, "b": 2}, {"b": ["a"]}, body)
    assert all(name != threading.main_thread().name for name in threads)
    for task_id in "ab":
        attempt = otel.span("wave_executor.attempt", **{"task.id": task_id})
        assert parent_of(otel.span(f"body {task_id}")) == span_id(attempt)


async def test_a_process_body_runs_under_its_attempt_context(otel: Telemetry) -> None:
    with ProcessBackend(1) as backend:
        result = await DAGExecutor(backend=backend).execute(
            {"p": 1}, {}, otel_bodies.current_span_ids
        )
    attempt = otel.span("wave_executor.attempt")
    assert attempt.context is not None
    assert result.outputs()["p"] == (attempt.context.trace_id, attempt.context.span_id)


@pytest.fixture(scope="module")
def dask_scheduler() -> Iterator[str]:
    """A cluster with its own event loop in a thread of its own, as distributed
    runs it for a blocking caller: closing one made in the test's loop fails
    under the eager task factory (CI runs the suite with it once)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=":0", silence_logs=logging.CRITICAL,
    ) as cluster:  # fmt: skip
        yield cluster.scheduler_address


async def test_a_dask_body_runs_under_its_attempt_context(
    otel: Telemetry, dask_scheduler: str
) -> None:
    import distributed

    from wave_executor.backends.dask import DaskBackend

    async with distributed.Client(dask_scheduler, asynchronous=True) as client:
        result = await DAGExecutor(backend=DaskBackend(client)).execute(
            {"d": 1}, {}, otel_bodies.current_span_ids
        )
    attempt = otel.span("wave_executor.attempt")
    assert attempt.context is not None
    assert result.outputs()["d"] == (attempt.context.trace_id, attempt.context.span_id)


async def test_fan_out_children_are_attempts_and_the_parent_counts_once(
    otel: Telemetry,
) -> None:
    async def split(task_id: str, spec: Any) -> list[int]:
        return [1, 2, 3]

    async def child(task_id: Any, item: int) -> int:
        if item == 2:
            raise ValueError("two")
        return item

    config = WaveConfig(retry_policy=RetryPolicy(max_retries=0))
    result = await DAGExecutor(config).execute({"p": 1}, {}, split, fan_out={"p": child})
    assert not result.succeeded
    attempts = otel.spans("wave_executor.attempt")
    assert len(attempts) == 4  # the parent's body, then one per child
    assert attr(otel.span("wave_executor.attempt", **{"task.id": "p"}), "status") == "success"
    assert sorted(attr(s, "status") for s in attempts) == [
        "failed",
        "success",
        "success",
        "success",
    ]
    assert otel.total("wave_executor.tasks", status="success") == 2  # two children
    assert otel.total("wave_executor.tasks", status="failed") == 2  # a child, then its parent
    failed = [e for e in otel.span("wave_executor.dag").events if e.name == "task failed"]
    assert [(e.attributes or {})["wave_executor.task.id"] for e in failed][-1] == "p"


# -- MetaDAG, levels, reconciler ---------------------------------------------------------


async def test_metadag_nodes_nest_their_inner_executions(otel: Telemetry) -> None:
    async def body(task_id: str, spec: Any) -> str:
        with otel.tracer.start_as_current_span(f"body {task_id}"):
            return task_id

    inner = MetaDAG().add_node(MetaDAGNodeSpec("deep", tasks={"x": 1, "y": 2}, task_executor=body))
    meta = (
        MetaDAG()
        .add_node(MetaDAGNodeSpec("top", tasks={"a": 1, "b": 2}, task_executor=body))
        .add_node(MetaDAGNodeSpec("nested", node_type="meta", meta=inner), depends_on=["top"])
    )
    result = await meta.execute()
    assert result.successful_nodes == 2

    outer = otel.span("wave_executor.meta", **{"execution.id": result.execution_id})
    top = otel.span("wave_executor.node", **{"node.id": "top"})
    nested = otel.span("wave_executor.node", **{"node.id": "nested"})
    assert (attr(top, "node.type"), attr(nested, "node.type")) == ("dag", "meta")
    assert attr(top, "attempt") == 1 and attr(top, "status") == "success"
    assert parent_of(top) == parent_of(nested) == span_id(outer)

    # "top": node span -> its DAG execution -> one attempt per task -> the body's span.
    top_dag = [s for s in otel.spans("wave_executor.dag") if parent_of(s) == span_id(top)]
    assert len(top_dag) == 1
    for task_id in "ab":
        attempt = otel.span("wave_executor.attempt", **{"task.id": task_id})
        assert parent_of(attempt) == span_id(top_dag[0])
        assert parent_of(otel.span(f"body {task_id}")) == span_id(attempt)

    # "nested": node span -> the inner MetaDAG -> its "dag" node -> that node's DAG run.
    inner_metas = [s for s in otel.spans("wave_executor.meta") if parent_of(s) == span_id(nested)]
    assert len(inner_metas) == 1
    deep = otel.span("wave_executor.node", **{"node.id": "deep"})
    assert parent_of(deep) == span_id(inner_metas[0])
    deep_dag = [s for s in otel.spans("wave_executor.dag") if parent_of(s) == span_id(deep)]
    assert len(deep_dag) == 1
    for task_id in "xy":
        attempt = otel.span("wave_executor.attempt", **{"task.id": task_id})
        assert parent_of(attempt) == span_id(deep_dag[0])
    # Every span of the MetaDAG is in one trace.
    assert len({s.context.trace_id for s in otel.spans() if s.context is not None}) == 1


async def test_a_failed_node_is_an_error_span(otel: Telemetry) -> None:
    async def bad(task_id: str, spec: Any) -> None:
        raise RuntimeError("no")

    meta = MetaDAG().add_node(
        MetaDAGNodeSpec(
            "n", tasks={"a": 1, "b": 2}, task_executor=bad,
            config=WaveConfig(retry_policy=RetryPolicy(max_retries=0)),
        )
    )  # fmt: skip
    await meta.execute()
    node = otel.span("wave_executor.node", **{"node.id": "n"})
    assert attr(node, "status") == "failed"
    assert node.status.status_code is StatusCode.ERROR
    assert otel.span("wave_executor.meta").status.status_code is StatusCode.ERROR


async def test_level_waves_are_spans_under_the_execution(otel: Telemetry) -> None:
    async def body(task_id: str, spec: Any) -> str:
        if task_id == "bad":
            raise RuntimeError("no")
        return task_id

    config = WaveConfig(retry_policy=RetryPolicy(max_retries=0))
    ctx = await LevelExecutor(config).execute({"a": 1, "bad": 2, "c": 3}, {"c": ["bad"]}, body)
    level = otel.span("wave_executor.level", **{"execution.id": ctx.execution_id})
    waves = otel.spans("wave_executor.wave")
    assert [attr(w, "wave_index") for w in waves] == [0]  # wave 1 had nothing to run
    assert parent_of(waves[0]) == span_id(level)
    for task_id in ("a", "bad"):
        attempt = otel.span("wave_executor.attempt", **{"task.id": task_id})
        assert parent_of(attempt) == span_id(waves[0])
    assert otel.total("wave_executor.tasks", status="skipped", **{"execution.kind": "level"}) == 1
    assert otel.total("wave_executor.tasks", status="failed") == 1


async def test_reconciler_runs_are_spans_and_restarts_are_counted(otel: Telemetry) -> None:
    runs: list[int] = []

    async def body(task_id: str, spec: Any) -> str:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("crash")
        return "ok"

    r = WaveReconciler(body)
    await r.start()
    await r.update({"t": {}}, restart_backoff_base=0.01)
    assert await r.wait_until_complete(timeout=5)
    await r.stop()
    supervised = otel.spans("wave_executor.supervised_run")
    assert [(attr(s, "run"), attr(s, "status")) for s in supervised] == [
        (1, "failed"),
        (2, "success"),
    ]
    assert supervised[0].status.status_code is StatusCode.ERROR
    assert otel.total("wave_executor.reconciler.restarts") == 1


# -- gauges ---------------------------------------------------------------------------


async def test_window_and_ready_gauges_while_a_run_lives(otel: Telemetry) -> None:
    seen: dict[str, Any] = {}
    semaphore = AdaptiveSemaphore(3, adaptive=False)

    async def body(task_id: str, spec: Any) -> None:
        if task_id == "t0":
            seen["windows"] = otel.points("wave_executor.window.limit")
            seen["ready"] = otel.points("wave_executor.ready_tasks")

    config = WaveConfig(max_parallel_per_wave=1, adaptive_batch_window=False)
    tasks = {f"t{k}": k for k in range(5)}
    result = await DAGExecutor(config).execute(
        tasks, {}, body, specialist_semaphore=semaphore, groups={"t0": "g"}
    )
    windows = {(a["wave_executor.window"], a.get("wave_executor.group")): v
               for a, v in seen["windows"]}  # fmt: skip
    assert windows[("global", None)] == 1
    assert windows[("semaphore", None)] == 3
    assert ("group", "g") in windows
    [(attributes, ready)] = seen["ready"]
    assert attributes["wave_executor.execution.id"] == result.execution_id
    assert ready == 4  # t0 runs, the 4 others wait for the one slot
    assert otel.points("wave_executor.ready_tasks") == []  # the run has ended
    assert attr(otel.span("wave_executor.attempt", **{"task.id": "t0"}), "group") == "g"
    assert attr(otel.span("wave_executor.attempt", **{"task.id": "t1"}), "group") is None


async def test_a_durable_run_names_its_run_id(otel: Telemetry) -> None:
    from wave_executor.store import MemoryStore

    async def body(task_id: str, spec: Any) -> str:
        return task_id

    await DAGExecutor().execute({"t": 1}, {}, body, store=MemoryStore(), run_id="nightly")
    assert attr(otel.span("wave_executor.dag"), "run.id") == "nightly"
    assert attr(otel.span("wave_executor.attempt"), "run.id") == "nightly"


# -- the switch --------------------------------------------------------------------------


async def test_uninstrument_stops_spans_and_metrics() -> None:
    telemetry = Telemetry()
    instrumentor = WaveExecutorInstrumentor()

    async def body(task_id: str, spec: Any) -> None:
        return None

    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    assert observe.current is not None
    await DAGExecutor().execute({"t": 1}, {}, body)
    instrumentor.uninstrument()
    assert observe.current is None
    await DAGExecutor().execute({"u": 1}, {}, body)
    assert [attr(s, "task.id") for s in telemetry.spans("wave_executor.attempt")] == ["t"]
    assert telemetry.total("wave_executor.tasks") == 1
    telemetry.meter_provider.shutdown()


async def test_instrumenting_again_with_the_same_providers_reports_again() -> None:
    telemetry = Telemetry()
    instrumentor = WaveExecutorInstrumentor()
    ready: list[list[tuple[dict[str, Any], Any]]] = []

    async def body(task_id: str, spec: Any) -> None:
        ready.append(telemetry.points("wave_executor.ready_tasks"))

    for task_id in ("first", "second"):
        instrumentor.instrument(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )
        try:
            await DAGExecutor().execute({task_id: 1}, {}, body)
        finally:
            instrumentor.uninstrument()
    assert [len(points) for points in ready] == [1, 1]  # the gauge of each run, while it ran
    assert len(telemetry.spans("wave_executor.attempt")) == 2
    assert telemetry.total("wave_executor.tasks") == 2
    telemetry.meter_provider.shutdown()


def test_the_instrumentor_is_registered_for_opentelemetry_instrument() -> None:
    from importlib.metadata import entry_points

    found = [
        e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "wave_executor"
    ]
    assert len(found) == 1
    assert found[0].load() is WaveExecutorInstrumentor
    assert WaveExecutorInstrumentor().instrumentation_dependencies() == ()


async def test_a_traced_run_submits_nothing_early_so_each_body_runs_in_its_attempt(
    otel: Telemetry, dask_scheduler: str
) -> None:
    import distributed

    from wave_executor.backends.dask import DaskBackend

    async with distributed.Client(dask_scheduler, asynchronous=True) as client:
        backend = DaskBackend(client, keep_outputs=True)
        result = await DAGExecutor(backend=backend).execute(
            {"a": 1, "b": 2}, {"b": {"a"}}, otel_bodies.current_span_ids
        )
        outputs = {t: await out.fetch() for t, out in result.outputs().items()}
    assert backend.submitted_early == 0
    for task_id in ("a", "b"):
        attempt = otel.span("wave_executor.attempt", **{"task.id": task_id})
        assert attempt.context is not None
        assert outputs[task_id] == (attempt.context.trace_id, attempt.context.span_id)
