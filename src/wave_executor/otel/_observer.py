"""The engine's observer (``_runtime/observe.py``) made of OpenTelemetry spans and metrics."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.trace import Span, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from wave_executor._runtime.observe import WindowGauge
from wave_executor.otel._carrier import carried

__all__ = ["ATTEMPT_BUCKETS", "OTelObserver"]

# Attribute names (docs/how-to/tracing.md lists them).
EXECUTION_ID = "wave_executor.execution.id"
EXECUTION_KIND = "wave_executor.execution.kind"
RUN_ID = "wave_executor.run.id"
TASK_ID = "wave_executor.task.id"
ATTEMPT = "wave_executor.attempt"
GROUP = "wave_executor.group"
STATUS = "wave_executor.status"
RETRY_DELAY = "wave_executor.retry.delay_s"
NODE_ID = "wave_executor.node.id"
NODE_TYPE = "wave_executor.node.type"
WINDOW = "wave_executor.window"
RECONCILER_ID = "wave_executor.reconciler.id"
RUN = "wave_executor.run"

#: Histogram buckets of the attempt duration, in seconds: a millisecond to five minutes.
ATTEMPT_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0,
)  # fmt: skip

_FAILED = frozenset({"failed", "timeout"})


def _text(value: Hashable) -> str:
    return value if isinstance(value, str) else repr(value)


def _error(span: Span, status: str, error: BaseException | None) -> None:
    """Record ``error`` on ``span``; a failed or timed-out status makes it ERROR."""
    if error is not None and not isinstance(error, asyncio.CancelledError):
        span.record_exception(error)
    if status in _FAILED:
        description = None if error is None else f"{type(error).__name__}: {error}"
        span.set_status(Status(StatusCode.ERROR, description or status))


class _Instruments:
    """The metric instruments, made once per ``instrument()``."""

    def __init__(self, meter: Meter, observer: OTelObserver) -> None:
        self.tasks = meter.create_counter(
            "wave_executor.tasks", "{task}", "Tasks that reached a final status"
        )
        self.attempt_duration = meter.create_histogram(
            "wave_executor.attempt.duration", "s", "Duration of task attempts",
            explicit_bucket_boundaries_advisory=ATTEMPT_BUCKETS,
        )  # fmt: skip
        self.retries = meter.create_counter(
            "wave_executor.retries", "{retry}", "Attempts that failed and were retried"
        )
        self.restarts = meter.create_counter(
            "wave_executor.reconciler.restarts", "{restart}", "Reconciler task runs started again"
        )
        # A meter gives back the gauges it already has (a second instrument() on the same
        # provider): their callbacks find the meter's observer of the moment.
        key = id(meter)
        _GAUGED[key] = observer
        meter.create_observable_gauge(
            "wave_executor.window.limit", [partial(_observe, key, windows=True)], "{task}",
            "Current limit of each concurrency window of running executions",
        )  # fmt: skip
        meter.create_observable_gauge(
            "wave_executor.ready_tasks", [partial(_observe, key, windows=False)], "{task}",
            "Tasks ready to start, waiting for a slot, in running executions",
        )  # fmt: skip


#: id(meter) -> the observer whose running executions that meter's gauges report.
_GAUGED: dict[int, OTelObserver] = {}


def _observe(key: int, options: CallbackOptions, *, windows: bool) -> Iterable[Observation]:
    observer = _GAUGED.get(key)
    if observer is None:
        return []
    return observer.observe_windows(options) if windows else observer.observe_ready(options)


class _Attempt:
    """A span that is current in the calling context until ``release()``.

    It ends when the body did (``release()``), though ``end()`` may come later,
    once the run knows whether a retry follows.
    """

    __slots__ = ("_ended", "_ended_ns", "_execution", "_metrics", "_span", "_start", "_token")

    def __init__(self, execution: _Execution | None, span: Span, metrics: bool) -> None:
        self._execution = execution
        self._span = span
        self._metrics = metrics
        self._start = time.perf_counter()
        self._ended: float | None = None
        self._ended_ns: int | None = None
        self._token: object | None = otel_context.attach(trace.set_span_in_context(span))

    def release(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            self._ended, self._ended_ns = time.perf_counter(), time.time_ns()
            otel_context.detach(token)  # type: ignore[arg-type]

    def end(
        self, status: str, error: BaseException | None = None, retry_delay: float | None = None
    ) -> None:
        span = self._span
        span.set_attribute(STATUS, status)
        if retry_delay is not None:
            span.set_attribute(RETRY_DELAY, retry_delay)
        _error(span, status, error)
        span.end(self._ended_ns)
        if self._metrics and self._execution is not None:
            ended = time.perf_counter() if self._ended is None else self._ended
            self._execution.attempt_ended(status, ended - self._start, retry_delay)


class _Execution:
    """The span of one execution (or wave), and its share of the metrics."""

    def __init__(
        self,
        observer: OTelObserver,
        name: str,
        attributes: dict[str, AttributeValue],
        kind: str,
        parent: _Execution | None = None,
        node_types: Mapping[Hashable, str] | None = None,
    ) -> None:
        self._observer = observer
        self._kind = kind
        self._common: dict[str, AttributeValue] = {
            k: v for k, v in attributes.items() if k in (EXECUTION_ID, RUN_ID)
        }
        if parent is not None:
            self._common = parent._common
        self._node_types = node_types
        # A top execution starts under the current context (a caller's span, a node's).
        context = None if parent is None else parent._context
        self._span = observer.tracer.start_span(name, context, attributes=attributes)
        self._context: Context = trace.set_span_in_context(self._span)
        self._metric_attributes: dict[str, AttributeValue] = {EXECUTION_KIND: kind}
        self._by_status: dict[str, dict[str, AttributeValue]] = {}  # made once per status

    # -- attempts ------------------------------------------------------------

    def attempt(self, task_id: Hashable, attempt: int, group: Hashable | None) -> _Attempt:
        attributes: dict[str, AttributeValue] = dict(self._common)
        if self._node_types is not None:  # a MetaDAG: its "attempts" are its nodes
            attributes[NODE_ID] = _text(task_id)
            attributes[NODE_TYPE] = self._node_types.get(task_id, "dag")
            name = "wave_executor.node"
        else:
            attributes[TASK_ID] = _text(task_id)
            name = "wave_executor.attempt"
        attributes[ATTEMPT] = attempt
        if group is not None:
            attributes[GROUP] = _text(group)
        span = self._observer.tracer.start_span(name, self._context, attributes=attributes)
        return _Attempt(self, span, self._node_types is None)

    def attempt_ended(self, status: str, seconds: float, retry_delay: float | None) -> None:
        metrics = self._observer.metrics
        if metrics is None:
            return
        metrics.attempt_duration.record(seconds, self._status_attributes(status))
        if retry_delay is not None:
            metrics.retries.add(1, self._metric_attributes)

    def task_ended(self, task_id: Hashable, status: str, error: str | None = None) -> None:
        if status != "success":
            attributes: dict[str, AttributeValue] = {TASK_ID: _text(task_id), STATUS: status}
            if error is not None:
                attributes["wave_executor.error"] = error
            self._span.add_event(f"task {status}", attributes)
        metrics = self._observer.metrics
        if metrics is not None and self._node_types is None:
            metrics.tasks.add(1, self._status_attributes(status))

    def _status_attributes(self, status: str) -> dict[str, AttributeValue]:
        attributes = self._by_status.get(status)
        if attributes is None:
            attributes = self._by_status[status] = {**self._metric_attributes, STATUS: status}
        return attributes

    # -- gauges --------------------------------------------------------------

    def track(self, ready: Callable[[], int], windows: Sequence[WindowGauge]) -> Callable[[], None]:
        gauges = []
        for kind, group, limit in windows:
            attributes: dict[str, AttributeValue] = {**self._common, WINDOW: kind}
            if group is not None:
                attributes[GROUP] = _text(group)
            gauges.append((limit, attributes))
        return self._observer.track(ready, dict(self._common), gauges)

    # -- parts and end ---------------------------------------------------------

    def child(self, name: str, attributes: Mapping[str, Any]) -> _Execution:
        prefixed = {**self._common, **{f"wave_executor.{k}": v for k, v in attributes.items()}}
        return _Execution(self._observer, f"wave_executor.{name}", prefixed, self._kind, self)

    def end(self, status: str, error: BaseException | None = None, **attributes: Any) -> None:
        span = self._span
        span.set_attribute(STATUS, status)
        for key, value in attributes.items():
            if value is not None:
                span.set_attribute(f"wave_executor.{key}", value)
        if status == "failed" and error is None:
            span.set_status(Status(StatusCode.ERROR, "the execution did not succeed"))
        elif error is not None and not isinstance(error, asyncio.CancelledError):
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end()


class _Supervised(_Attempt):
    """A supervised run of a ``WaveReconciler`` task."""

    __slots__ = ()

    def end(
        self, status: str, error: BaseException | None = None, retry_delay: float | None = None
    ) -> None:
        span = self._span
        span.set_attribute(STATUS, status)
        _error(span, status, error)
        span.end(self._ended_ns)


class OTelObserver:
    """Installed by ``WaveExecutorInstrumentor.instrument()``; see ``observe.Observer``."""

    def __init__(self, tracer: Tracer, meter: Meter | None) -> None:
        self.tracer = tracer
        self._ids = itertools.count()
        # Running engines: key -> (ready, attributes, [(limit, attributes)]).
        self._tracked: dict[
            int,
            tuple[
                Callable[[], int],
                dict[str, AttributeValue],
                list[tuple[Callable[[], int], dict[str, AttributeValue]]],
            ],
        ] = {}
        self.metrics = None if meter is None else _Instruments(meter, self)
        self._meter_key = None if meter is None else id(meter)

    def close(self) -> None:
        """Uninstrumented: the gauges report nothing more (runs still going end their spans)."""
        if self._meter_key is not None and _GAUGED.get(self._meter_key) is self:
            del _GAUGED[self._meter_key]

    # -- the Observer protocol -------------------------------------------------

    def execution(
        self,
        kind: str,
        execution_id: str,
        run_id: str | None,
        total_tasks: int,
        node_types: Mapping[Hashable, str] | None = None,
    ) -> _Execution:
        attributes: dict[str, AttributeValue] = {
            EXECUTION_ID: execution_id,
            EXECUTION_KIND: kind,
            "wave_executor.total_tasks": total_tasks,
        }
        if run_id is not None:
            attributes[RUN_ID] = run_id
        node_types = node_types if kind == "meta" else None
        return _Execution(self, f"wave_executor.{kind}", attributes, kind, None, node_types)

    def supervised(self, reconciler: str, task_id: Hashable, run: int) -> _Supervised:
        attributes: dict[str, AttributeValue] = {
            RECONCILER_ID: reconciler,
            TASK_ID: _text(task_id),
            RUN: run,
        }
        span = self.tracer.start_span("wave_executor.supervised_run", attributes=attributes)
        return _Supervised(None, span, False)

    def restarted(self, reconciler: str, task_id: Hashable) -> None:
        if self.metrics is not None:
            self.metrics.restarts.add(1, {RECONCILER_ID: reconciler})

    def carry(self, body: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        return carried(body)

    # -- gauges --------------------------------------------------------------

    def track(
        self,
        ready: Callable[[], int],
        attributes: dict[str, AttributeValue],
        windows: list[tuple[Callable[[], int], dict[str, AttributeValue]]],
    ) -> Callable[[], None]:
        key = next(self._ids)
        self._tracked[key] = (ready, attributes, windows)

        def untrack() -> None:
            self._tracked.pop(key, None)

        return untrack

    def observe_ready(self, options: CallbackOptions) -> Iterable[Observation]:
        # list() copies at once: the loop's thread may add or remove runs meanwhile.
        return [Observation(ready(), attrs) for ready, attrs, _ in list(self._tracked.values())]

    def observe_windows(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(limit(), attrs)
            for _, _, windows in list(self._tracked.values())
            for limit, attrs in windows
        ]
