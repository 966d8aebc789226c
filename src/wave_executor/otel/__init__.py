"""OpenTelemetry tracing and metrics for wave-executor (the ``otel`` extra).

::

    from wave_executor.otel import WaveExecutorInstrumentor

    WaveExecutorInstrumentor().instrument(tracer_provider=..., meter_provider=...)

Spans: one per execution (``wave_executor.dag``, ``wave_executor.level``
with a ``wave_executor.wave`` per wave, ``wave_executor.meta``), one per
MetaDAG node (``wave_executor.node``), one per task attempt
(``wave_executor.attempt``, current while the body runs) and one per run of
a ``WaveReconciler`` task (``wave_executor.supervised_run``). Metrics:
``wave_executor.tasks``, ``wave_executor.attempt.duration``,
``wave_executor.retries``, ``wave_executor.window.limit``,
``wave_executor.ready_tasks`` and ``wave_executor.reconciler.restarts``.
``docs/how-to/tracing.md`` lists their attributes.

The instrumentor is registered under the ``opentelemetry_instrumentor``
entry point, so ``opentelemetry-instrument`` installs it with the global
providers. It hooks the engine, not the event stream: ``emit_events=False``
does not turn it off. Without it, the engine pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from wave_executor._runtime import observe
from wave_executor._version import __version__
from wave_executor.otel._observer import OTelObserver

__all__ = ["WaveExecutorInstrumentor"]

_SCOPE = "wave_executor"


class WaveExecutorInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Spans and metrics for every execution that starts after ``instrument()``.

    ``instrument(tracer_provider=None, meter_provider=None)`` uses the global
    providers for those not given; ``uninstrument()`` stops it (executions
    already running finish their spans). Like every ``BaseInstrumentor``, it
    is a singleton.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        """None: the instrumented library is this package itself."""
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        tracer = trace.get_tracer(_SCOPE, __version__, kwargs.get("tracer_provider"))
        meter = metrics.get_meter(_SCOPE, __version__, kwargs.get("meter_provider"))
        observe.install(OTelObserver(tracer, meter))

    def _uninstrument(self, **kwargs: Any) -> None:
        observer = observe.current
        if isinstance(observer, OTelObserver):
            observer.close()
        observe.install(None)
