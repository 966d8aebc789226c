"""Backends beyond DAGExecutor: level mode and MetaDAG "dag" nodes run bodies on them too."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from wave_executor import LevelExecutor, MetaDAG, MetaDAGNodeSpec, WaveConfig
from wave_executor.backends import ThreadBackend

NO_RETRY = WaveConfig(max_retries=0)


def where(task_id: str, spec: Any) -> str:
    """A plain (blocking) function: it can only run on a thread backend."""
    return threading.current_thread().name


async def test_level_mode_runs_plain_functions_on_the_thread_backend() -> None:
    with ThreadBackend(max_workers=2) as backend:
        context = await LevelExecutor(NO_RETRY).execute(
            {"a": {}, "b": {}, "c": {}}, {"c": {"a", "b"}}, where, backend=backend
        )
    names = {t: r.output for t, r in context.task_results.items()}
    assert set(names) == {"a", "b", "c"}
    assert all(r.status == "success" for r in context.task_results.values())
    assert threading.current_thread().name not in names.values()
    assert context.task_results["c"].wave_id == "wave-1"


async def test_level_mode_takes_the_executors_backend_and_per_task_backends() -> None:
    async def inline(task_id: str, spec: Any) -> str:
        return threading.current_thread().name

    with ThreadBackend(max_workers=1) as backend:
        # The executor's default is the thread backend; "b" is routed there
        # per task while "a" keeps the async body in the loop.
        executor = LevelExecutor(NO_RETRY, backend=backend)
        assert executor.backend is backend
        context = await executor.execute({"x": {}}, {}, where)
        assert context.task_results["x"].output != threading.current_thread().name

        def pick(task_id: str, spec: Any) -> ThreadBackend | None:
            return backend if task_id == "b" else None

        mixed = await LevelExecutor(NO_RETRY).execute(
            {"a": {}, "b": {}},
            {},
            lambda t, s: inline(t, s) if t == "a" else where(t, s),
            backends=pick,
        )
    assert mixed.task_results["a"].output == threading.current_thread().name
    assert mixed.task_results["b"].output != threading.current_thread().name


async def test_level_mode_refuses_a_bad_backend_before_anything_runs() -> None:
    ran: list[str] = []

    async def body(task_id: str, spec: Any) -> None:
        ran.append(task_id)

    with pytest.raises(TypeError, match="backend"):
        await LevelExecutor().execute({"a": {}}, {}, body, backend="threads")  # type: ignore[arg-type]
    assert ran == []


async def test_a_dag_node_runs_its_bodies_on_its_backend() -> None:
    with ThreadBackend(max_workers=2) as backend:
        meta = MetaDAG()
        meta.add_node(
            MetaDAGNodeSpec("work", tasks={"a": {}, "b": {}}, task_executor=where, backend=backend)
        )
        result = await meta.execute()
    node = result.node_results["work"]
    assert node.status == "success"
    outputs = node.dag_result.outputs() if node.dag_result is not None else {}
    assert set(outputs) == {"a", "b"}
    assert threading.current_thread().name not in outputs.values()


def test_backend_on_a_reconciler_node_is_refused_when_added() -> None:
    async def body(task_id: str, spec: Any) -> None:
        return None

    with ThreadBackend() as backend:
        spec = MetaDAGNodeSpec(
            "svc", tasks={"a": {}}, task_executor=body, node_type="reconciler", backend=backend
        )
        with pytest.raises(ValueError, match='dag" nodes only'):
            MetaDAG().add_node(spec)


def test_both_executors_refuse_a_backend_that_is_not_one_when_made() -> None:
    from wave_executor import DAGExecutor

    for executor in (DAGExecutor, LevelExecutor):
        with pytest.raises(TypeError, match="backend"):
            executor(backend="threads")  # type: ignore[arg-type]
