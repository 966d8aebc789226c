"""The public surface: 0.3.0's import paths work, and ``__all__`` is exact."""

from __future__ import annotations

import ast
import importlib
import pathlib
import subprocess
import sys

import pytest

import wave_executor

SRC = pathlib.Path(wave_executor.__file__).parent

ZERO_THREE_ZERO_NAMES = {
    "wave_executor": [
        "WaveConfig", "TaskResult", "WaveResult", "WaveDefinition", "ExecutionContext",
        "AggregationStrategy", "DAGExecutor", "DAGExecutionResult", "AdaptiveSemaphore",
        "EscalationReport", "WaveCircularDependencyError", "WaveSignal", "__version__",
        "WaveReconciler", "RestartPolicy", "ReconcileTaskSpec", "ReconcileTaskState",
        "ReconcileStatus", "MetaDAG", "MetaDAGNodeSpec", "MetaDAGNodeResult", "MetaDAGResult",
    ],
    "wave_executor.meta": ["MetaDAG", "MetaDAGNodeSpec", "MetaDAGNodeResult", "MetaDAGResult"],
    "wave_executor.reconciler": [
        "WaveReconciler", "RestartPolicy", "ReconcileTaskSpec", "ReconcileTaskState",
        "ReconcileStatus",
    ],
    "wave_executor.dag": [
        "DAGExecutor", "DAGExecutionResult", "AdaptiveSemaphore", "EscalationReport",
        "CircuitBreaker", "CircuitState", "CircuitBreakerOpenError",
    ],
    "wave_executor.config": [
        "WaveConfig", "TaskResult", "WaveResult", "WaveDefinition", "ExecutionContext",
        "AggregationStrategy",
    ],
    "wave_executor.exceptions": ["WaveCircularDependencyError", "WaveSignal"],
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(ZERO_THREE_ZERO_NAMES))
def test_0_3_0_import_paths(module: str) -> None:
    mod = importlib.import_module(module)
    for name in ZERO_THREE_ZERO_NAMES[module]:
        assert hasattr(mod, name), f"{module}.{name} is missing"


def test_all_is_exactly_the_public_names() -> None:
    public = {n for n in dir(wave_executor) if not n.startswith("_")}
    modules = {
        "backends", "cli", "config", "dag", "errors", "events", "exceptions", "flow", "levels",
        "meta", "otel", "progress", "reconciler", "report", "store", "testing",
    }  # fmt: skip
    assert set(wave_executor.__all__) == (public - modules) | {"__version__"}
    assert len(wave_executor.__all__) == len(set(wave_executor.__all__))


def test_wave_config_keeps_0_3_0_defaults() -> None:
    from wave_executor import AggregationStrategy, WaveConfig

    c = WaveConfig()
    assert (c.max_parallel_per_wave, c.inter_wave_delay_ms, c.default_task_timeout) == (10, 0, 120)
    assert (c.per_wave_timeout, c.total_execution_timeout) == (300.0, 3600.0)
    assert (c.allow_partial_success, c.min_success_rate, c.max_retries) == (True, 0.7, 3)
    assert c.retry_backoff_factor == 2.0
    assert c.aggregation_strategy is AggregationStrategy.SEMANTIC_MERGE
    assert (c.emit_events, c.stop_on_first_error, c.adaptive_batch_window) == (True, False, True)
    assert (c.min_parallel, c.saturation_threshold) == (2, 20)
    assert (c.circuit_breaker_enabled, c.circuit_failure_threshold) == (True, 5)
    assert (c.circuit_success_threshold, c.circuit_recovery_timeout) == (2, 60.0)
    assert (c.specialist_budgets, c.default_specialist_budget) == ({}, 10)
    # Positional construction in 0.3.0's field order still works.
    assert WaveConfig(20, 5).inter_wave_delay_ms == 5


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_core_is_pure_and_stdlib_only() -> None:
    """_core never imports asyncio, sqlite3, dask or the runtime."""
    forbidden = ("asyncio", "sqlite3", "distributed", "dask", "wave_executor._runtime")
    for path in (SRC / "_core").glob("*.py"):
        for name in _imports(path):
            assert not name.startswith(forbidden), f"{path.name} imports {name}"


def test_runtime_does_not_reach_up_into_the_facade() -> None:
    facade = tuple(
        f"wave_executor.{name}"
        for name in ("dag", "config", "exceptions", "reconciler", "meta", "levels", "store")
    )
    for path in (SRC / "_runtime").glob("*.py"):
        for name in _imports(path):
            assert not name.startswith(facade), f"{path.name} imports {name}"
            assert name != "wave_executor", f"{path.name} imports the facade"


def test_import_is_dependency_free_and_does_not_load_asyncio_extras() -> None:
    code = (
        "import sys, wave_executor; "
        "bad = [m for m in ('sqlite3', 'dask', 'distributed', 'rich', 'opentelemetry') "
        "if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_only_the_otel_package_imports_opentelemetry() -> None:
    """The engine's hook is ``_runtime/observe.py``; OpenTelemetry stays in ``otel/``."""
    for path in SRC.rglob("*.py"):
        if path.parent.name == "otel":
            continue
        for name in _imports(path):
            assert not name.startswith(("opentelemetry", "wave_executor.otel")), (
                f"{path.relative_to(SRC)} imports {name}"
            )


def test_py_typed_ships() -> None:
    assert (SRC / "py.typed").exists()


def test_child_id_is_public() -> None:
    from wave_executor import ChildId

    assert "ChildId" in wave_executor.__all__
    child = ChildId("fetch", 2)
    assert str(child) == repr(child) == "fetch[2]"
    assert child == ChildId("fetch", 2) and child != ChildId("fetch", 3)


def test_flow_is_public() -> None:
    from wave_executor import Flow, FlowRun, Handle
    from wave_executor.flow import task

    assert {"Flow", "FlowRun", "Handle"} <= set(wave_executor.__all__)
    flow = Flow("public")

    @flow.task
    async def one() -> int:
        return 1

    assert isinstance(one(), Handle) and callable(task)
    assert FlowRun.__name__ == "FlowRun"
