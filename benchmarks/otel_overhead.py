"""What OpenTelemetry instrumentation costs per task, measured with ``overhead.py``.

    python benchmarks/otel_overhead.py --tree base=/path/to/other/src --tree this=src --rounds 7

Each measurement is one run of ``overhead.py --impl ours --metric time`` (a no-op body, a
layered graph; ``--n``/``--cap``/``--shape`` are passed on) in a fresh process, with
``PYTHONPATH`` pointing at one ``src`` tree. The variants are run interleaved, round after
round (A B A B ...), so that a machine whose speed drifts affects them alike; the table gives
each variant's median and its ratio to the first one.

The variants are every ``--tree`` uninstrumented, then, on the last tree, with
``WaveExecutorInstrumentor`` installed (``--instrumented``, needs the ``otel`` extra and the
SDK):

* ``otel-api``: the instrumentor on OpenTelemetry's default (no-op) providers, as with
  ``opentelemetry-instrument`` and no SDK configured;
* ``otel-sdk``: SDK providers that record every span and metric, the spans going through a
  ``BatchSpanProcessor`` (as in production) to an exporter that drops them;
* ``otel-memory``: the same, but the spans kept by an ``InMemorySpanExporter`` (a
  ``SimpleSpanProcessor``), as in tests: every span stays alive, and the garbage collector
  has them all to walk.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODES = ("otel-api", "otel-sdk", "otel-memory")

# Run in the child: instrument, then hand over to overhead.py's main().
_CHILD = """
import sys
sys.path.insert(0, {here!r})
mode = {mode!r}
if mode != "off":
    from wave_executor.otel import WaveExecutorInstrumentor
    kwargs = {{}}
    if mode != "otel-api":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace import export
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        class Drop(export.SpanExporter):
            def export(self, spans):
                return export.SpanExportResult.SUCCESS

        tracer_provider = TracerProvider()
        if mode == "otel-memory":
            processor = export.SimpleSpanProcessor(InMemorySpanExporter())
        else:
            processor = export.BatchSpanProcessor(Drop())
        tracer_provider.add_span_processor(processor)
        kwargs = dict(
            tracer_provider=tracer_provider,
            meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
        )
    WaveExecutorInstrumentor().instrument(**kwargs)
import overhead
sys.exit(overhead.main({argv!r}))
"""


def measure(src: str, mode: str, argv: list[str]) -> dict[str, Any]:
    """One fresh process: ``overhead.py`` with ``src`` first on the path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, str(HERE)])}
    code = _CHILD.format(here=str(HERE), mode=mode, argv=argv)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if not result["ok"]:
        raise RuntimeError(f"not every task succeeded: {result}")
    expected = str(Path(src).resolve() / "wave_executor")
    if result["module_path"] != expected:
        raise RuntimeError(f"imported {result['module_path']}, not {expected}")
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tree", action="append", required=True, help="NAME=PATH of a src tree")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--instrumented", action="store_true", help="add the otel-* variants")
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--cap", type=int, default=10)
    p.add_argument("--shape", default="layered")
    args = p.parse_args()
    trees = [tuple(t.split("=", 1)) for t in args.tree]
    variants = [(name, path, "off") for name, path in trees]
    if args.instrumented:
        name, path = trees[-1]
        variants += [(f"{name}+{mode}", path, mode) for mode in MODES]
    argv = ["--impl", "ours", "--metric", "time", "--n", str(args.n), "--cap", str(args.cap)]
    argv += ["--shape", args.shape]
    samples: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    for k in range(args.rounds):
        # Alternate the order too, so that no variant always runs right after another.
        ordered = variants if k % 2 == 0 else variants[::-1]
        for name, path, mode in ordered:
            samples[name].append(measure(path, mode, argv)["us_per_task"])
    first = statistics.median(samples[variants[0][0]])
    print(f"{args.shape}, n={args.n}, cap={args.cap}, {args.rounds} rounds, µs/task (execute)")
    print("| variant | median | min | max | ratio to first |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, _, _ in variants:
        xs = samples[name]
        median = statistics.median(xs)
        print(f"| {name} | {median:.2f} | {min(xs):.2f} | {max(xs):.2f} | {median / first:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
