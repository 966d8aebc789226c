"""Programs written against wave-executor 0.3.0's public API, observed.

Run as a script under any interpreter that has a ``wave_executor`` package
(0.3.0 from PyPI, or this repository's): it runs every program on a virtual
clock and prints one JSON object, program name -> observation. The
observation is the *shape* of what a program can see: result objects and
their ``to_dict()`` (keys and value types; statuses, ids, counts and
outputs as values; texts, times and ids only as types), events in order with
their payload keys, exceptions with their types, reconciler statuses and
restart counts. ``tests/test_differential.py`` runs it under both packages
and compares. Standard library only (0.3.0's environment has nothing else).
"""

from __future__ import annotations

import asyncio
import json
import selectors
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import wave_executor as we

# -- a virtual clock: the loop's time jumps to the next timer when idle ------------


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self, loop: _VirtualLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = super().select(0)
        if not ready and timeout is not None and timeout > 0:
            self._loop.now += timeout
        return ready


class _VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 1000.0
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self.now


def run(coro: Awaitable[Any]) -> Any:
    with asyncio.Runner(loop_factory=_VirtualLoop) as runner:
        return runner.run(coro)  # type: ignore[arg-type]


# -- turning what a program sees into a comparable shape ----------------------------

#: Keys whose values differ from run to run (or by wording): compared by type only.
_BY_TYPE = (
    "_at", "time", "duration", "execution_id", "timestamp", "error", "escalation",
    "uptime", "last_started", "next_start_after", "failure_history", "root_cause",
    "resolution_options", "message", "reconcile_cycle", "last_error",
)  # fmt: skip


def shape(value: Any, key: str = "") -> Any:
    if any(part in key for part in _BY_TYPE) and not isinstance(value, dict | list):
        return f"<{type(value).__name__}>" if value is not None else None
    if isinstance(value, dict):
        return {str(k): shape(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [shape(v, key) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(shape(v, key) for v in value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return str(value)  # a StrEnum member compares as its value
    return f"<{type(value).__name__}>"


def events_of(log: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Events by subject in order (concurrent subjects interleave differently),
    and the payload keys of every event type."""
    by_subject: dict[str, list[str]] = {}
    keys: dict[str, list[str]] = {}
    for event_type, event in log:
        subject = event.get("node_id", event.get("task_id"))
        by_subject.setdefault(str(subject), []).append(str(event_type))
        keys.setdefault(str(event_type), sorted(set(event)))
    return {"sequence": by_subject, "keys": keys}


def failure(exc: BaseException) -> dict[str, Any]:
    return {"raised": type(exc).__name__, "mro": [c.__name__ for c in type(exc).__mro__[1:3]]}


def recorder() -> tuple[list[tuple[str, dict[str, Any]]], Callable[[str, dict[str, Any]], None]]:
    log: list[tuple[str, dict[str, Any]]] = []

    def callback(event_type: str, event: dict[str, Any]) -> None:
        log.append((event_type, dict(event)))

    return log, callback


def dag_result(result: Any, deps: dict[str, list[str]] | None = None) -> dict[str, Any]:
    out = {
        "type": type(result).__name__,
        "to_dict": shape(result.to_dict()),
        "statuses": {str(t): str(r.status) for t, r in result.task_results.items()},
        "retry_counts": {str(t): r.retry_count for t, r in result.task_results.items()},
        "totals": [
            result.total_tasks, result.total_successful, result.total_failed,
            result.total_skipped, result.total_timeout,
        ],
        "success_rate": result.overall_success_rate,
    }  # fmt: skip
    if deps is not None:
        out["critical_path"] = [str(t) for t in result.get_critical_path(deps)]
    return out


# -- DAGExecutor ----------------------------------------------------------------------


async def dag_chain_with_outputs() -> Any:
    seen: dict[str, Any] = {}

    async def body(task_id: str, spec: Any) -> Any:
        seen[task_id] = shape(spec)
        await asyncio.sleep(1)
        return f"out-{task_id}"

    log, callback = recorder()
    ex = we.DAGExecutor(we.WaveConfig(max_parallel_per_wave=4))
    ex.on_event(callback)
    tasks = {"a": {"n": 1}, "b": {"n": 2}, "c": 3}
    deps = {"b": ["a"], "c": ["b"]}
    result = await ex.execute(tasks, deps, body, inject_dep_outputs=True)
    return {
        "result": dag_result(result, deps),
        "specs_seen": seen,
        "caller_specs": shape(tasks),
        "events": events_of(log),
    }


async def dag_failure_skips_dependents() -> Any:
    async def body(task_id: str, spec: Any) -> Any:
        await asyncio.sleep(1)
        if task_id == "bad":
            raise ValueError("bad input")
        return task_id

    log, callback = recorder()
    ex = we.DAGExecutor(we.WaveConfig(max_retries=0))
    ex.on_event(callback)
    result = await ex.execute({"bad": 1, "after": 2, "free": 3}, {"after": ["bad"]}, body)
    bad = result.task_results["bad"]
    return {
        "result": dag_result(result),
        "escalation_keys": sorted(bad.output["escalation"])
        if isinstance(bad.output, dict)
        else None,
        "skip_error_names_dep": "bad" in (result.task_results["after"].error or ""),
        "events": events_of(log),
    }


async def dag_retries_then_success() -> Any:
    calls: dict[str, int] = {}

    async def body(task_id: str, spec: Any) -> Any:
        calls[task_id] = calls.get(task_id, 0) + 1
        if calls[task_id] < 3:
            raise RuntimeError(f"attempt {calls[task_id]}")
        return calls[task_id]

    log, callback = recorder()
    ex = we.DAGExecutor(we.WaveConfig(max_retries=3))
    ex.on_event(callback)
    result = await ex.execute({"x": None}, {}, body)
    return {"result": dag_result(result), "calls": calls, "events": events_of(log)}


async def dag_retries_exhausted() -> Any:
    async def body(task_id: str, spec: Any) -> Any:
        raise RuntimeError("always")

    log, callback = recorder()
    ex = we.DAGExecutor(we.WaveConfig(max_retries=2))
    ex.on_event(callback)
    result = await ex.execute({"x": None}, {}, body)
    return {"result": dag_result(result), "events": events_of(log)}


async def dag_attempt_timeout() -> Any:
    async def body(task_id: str, spec: Any) -> Any:
        await asyncio.sleep(100 if task_id == "slow" else 1)
        return task_id

    log, callback = recorder()
    ex = we.DAGExecutor(we.WaveConfig(default_task_timeout=5, max_retries=1))
    ex.on_event(callback)
    result = await ex.execute({"slow": 1, "fast": 2, "after": 3}, {"after": ["slow"]}, body)
    return {"result": dag_result(result), "events": events_of(log)}


async def dag_total_timeout() -> Any:
    async def body(task_id: str, spec: Any) -> Any:
        await asyncio.sleep(100 if task_id == "slow" else 1)
        return task_id

    log, callback = recorder()
    cfg = we.WaveConfig(total_execution_timeout=10, default_task_timeout=1000)
    ex = we.DAGExecutor(cfg)
    ex.on_event(callback)
    result = await ex.execute({"slow": 1, "fast": 2, "after": 3}, {"after": ["slow"]}, body)
    return {"result": dag_result(result), "events": events_of(log)}


async def dag_async_and_sync_callbacks() -> Any:
    sync_seen: list[str] = []
    async_seen: list[str] = []

    def sync_cb(event_type: str, event: dict[str, Any]) -> None:
        sync_seen.append(str(event_type))

    async def async_cb(event_type: str, event: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        async_seen.append(str(event_type))

    async def body(task_id: str, spec: Any) -> Any:
        return task_id

    ex = we.DAGExecutor()
    returned = ex.on_event(sync_cb)
    ex.on_event(async_cb)
    await ex.execute({"a": 1}, {}, body)
    return {"on_event_returns": shape(returned), "sync": sync_seen, "async": async_seen}


async def dag_events_off() -> Any:
    log, callback = recorder()

    async def body(task_id: str, spec: Any) -> Any:
        return task_id

    ex = we.DAGExecutor()
    ex.on_event(callback)
    await ex.execute({"a": 1}, {}, body, config=we.WaveConfig(emit_events=False))
    return {"events": len(log)}


async def dag_bad_graphs() -> Any:
    async def body(task_id: str, spec: Any) -> Any:
        return task_id

    out: dict[str, Any] = {}
    ex = we.DAGExecutor()
    for name, tasks, deps in (
        ("unknown_dep", {"a": 1}, {"a": ["ghost"]}),
        ("cycle", {"a": 1, "b": 2}, {"a": ["b"], "b": ["a"]}),
        ("self_loop", {"a": 1}, {"a": ["a"]}),
    ):
        try:
            await ex.execute(tasks, deps, body)
            out[name] = "no error"
        except Exception as exc:
            out[name] = failure(exc)
            if name == "unknown_dep":
                out[name]["says_not_defined"] = "not defined in tasks" in str(exc)
            if hasattr(exc, "cycle_members"):
                out[name]["cycle_members"] = sorted(exc.cycle_members)
    return out


async def dag_dependencies_none() -> Any:
    async def body(task_id: str, spec: Any) -> Any:
        return task_id

    try:
        result = await we.DAGExecutor().execute({"a": 1}, None, body)
    except Exception as exc:
        return failure(exc)
    return dag_result(result)


async def dag_empty_graph() -> Any:
    async def body(task_id: str, spec: Any) -> Any:
        return task_id

    result = await we.DAGExecutor().execute({}, {}, body)
    return dag_result(result)


async def dag_result_built_by_hand() -> Any:
    try:
        result = we.DAGExecutionResult(execution_id="e1")
    except Exception as exc:
        return failure(exc)
    return {"to_dict": shape(result.to_dict()), "totals": result.total_tasks}


async def dag_circuit_key() -> Any:
    async def body(task_id: str, spec: Any) -> Any:
        raise ConnectionError("down")

    cfg = we.WaveConfig(max_retries=0, circuit_failure_threshold=2)
    ex = we.DAGExecutor(cfg)
    tasks = {f"t{i}": {"circuit_key": "svc"} for i in range(4)}
    deps = {f"t{i}": [f"t{i - 1}"] for i in range(1, 4)}
    result = await ex.execute(tasks, deps, body)
    return {"result": dag_result(result)}


async def dag_semaphore() -> Any:
    sem = we.AdaptiveSemaphore(3, adaptive=False)
    running = 0
    peak = 0

    async def body(task_id: str, spec: Any) -> Any:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(1)
        running -= 1
        return task_id

    await we.DAGExecutor().execute(
        {f"t{i}": i for i in range(9)}, {}, body, specialist_semaphore=sem
    )
    return {"peak": peak, "limit": sem.limit}


async def dag_asyncio_semaphore_and_no_timeouts() -> Any:
    """0.3.0 took any async context manager as the semaphore, and None as "no limit"."""
    sem = asyncio.Semaphore(2)
    running = 0
    peak = 0

    async def body(task_id: str, spec: Any) -> Any:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(500)  # beyond the default 120 s attempt timeout
        running -= 1
        return task_id

    config = we.WaveConfig(
        default_task_timeout=None,  # type: ignore[arg-type]  # 0.3.0 took None: no limit
        total_execution_timeout=None,  # type: ignore[arg-type]
    )
    result = await we.DAGExecutor().execute(
        {f"t{i}": i for i in range(5)}, {}, body, config, specialist_semaphore=sem
    )
    return {"peak": peak, "result": dag_result(result)}


# -- WaveReconciler ---------------------------------------------------------------------

_STATUS_FIELDS = (
    "desired_task_count", "running_count", "success_count", "failed_count", "pending_count",
    "stopped_count", "blocked_count", "task_states",
)  # fmt: skip


async def reconciler_runs_to_completion() -> Any:
    async def body(task_id: str, spec: Any) -> Any:
        await asyncio.sleep(1)
        return f"out-{task_id}"

    log, callback = recorder()
    r = we.WaveReconciler(body, poll_interval_s=0.5)
    r.on_event(callback)
    await r.start()
    await r.update({"a": 1, "b": 2}, {"b": ["a"]})
    done = await r.wait_until_complete(timeout=60)
    status = r.get_status()
    await r.stop()
    return {
        "done": done,
        "status_type": type(status).__name__,
        "status": {field: shape(getattr(status, field)) for field in _STATUS_FIELDS},
        "events": events_of(log),
    }


async def reconciler_restarts_on_failure() -> Any:
    calls: dict[str, int] = {}

    async def body(task_id: str, spec: Any) -> Any:
        calls[task_id] = calls.get(task_id, 0) + 1
        await asyncio.sleep(1)
        if calls[task_id] < 3:
            raise RuntimeError("crash")
        return calls[task_id]

    log, callback = recorder()
    r = we.WaveReconciler(body, poll_interval_s=0.5)
    r.on_event(callback)
    await r.start()
    await r.update({"a": 1}, None, None, {"a": 5}, 0.5)
    done = await r.wait_until_complete(timeout=120)
    status = r.get_status()
    await r.stop()
    return {
        "done": done,
        "status": {field: shape(getattr(status, field)) for field in _STATUS_FIELDS},
        "calls": calls,
        "events": events_of(log),
    }


async def reconciler_removed_task_stops() -> Any:
    async def body(task_id: str, spec: Any) -> Any:
        await asyncio.sleep(1000)

    log, callback = recorder()
    r = we.WaveReconciler(body, poll_interval_s=0.5)
    r.on_event(callback)
    await r.start()
    await r.update({"a": 1, "b": 2})
    await asyncio.sleep(3)
    await r.update({"b": 2})
    await asyncio.sleep(3)
    states = r.get_status().task_states
    await r.stop()
    return {"states": shape(states), "events": events_of(log)}


async def reconciler_cycle() -> Any:
    async def body(task_id: str, spec: Any) -> Any:
        return None

    r = we.WaveReconciler(body)
    try:
        await r.update({"a": 1, "b": 2}, {"a": ["b"], "b": ["a"]})
    except Exception as exc:
        return failure(exc)
    finally:
        await r.stop()
    return "no error"


# -- MetaDAG ----------------------------------------------------------------------------


async def meta_two_nodes_with_outputs() -> Any:
    seen: dict[str, Any] = {}

    async def body(task_id: str, spec: Any) -> Any:
        seen[task_id] = shape(spec)
        await asyncio.sleep(1)
        return f"out-{task_id}"

    log, callback = recorder()
    meta = we.MetaDAG()
    meta.on_event(callback)
    meta.add_node(we.MetaDAGNodeSpec("n1", {"a": {"k": 1}, "b": 2}, body))
    meta.add_node(we.MetaDAGNodeSpec("n2", {"c": {"k": 3}}, body), depends_on=["n1"])
    result = await meta.execute()
    return {
        "type": type(result).__name__,
        "to_dict": shape(result.to_dict()),
        "statuses": {str(n): str(r.status) for n, r in result.node_results.items()},
        "task_outputs": {str(n): shape(r.task_outputs) for n, r in result.node_results.items()},
        "specs_seen": seen,
        "events": events_of(log),
    }


async def meta_failure_skips_downstream() -> Any:
    async def body(task_id: str, spec: Any) -> Any:
        if task_id == "bad":
            raise RuntimeError("boom")
        return task_id

    log, callback = recorder()
    meta = we.MetaDAG()
    meta.on_event(callback)
    cfg = we.WaveConfig(max_retries=0)
    meta.add_node(we.MetaDAGNodeSpec("n1", {"bad": 1, "ok": 2}, body, config=cfg))
    meta.add_node(we.MetaDAGNodeSpec("n2", {"c": 3}, body), depends_on=["n1"])
    meta.add_node(we.MetaDAGNodeSpec("n3", {"d": 4}, body))
    result = await meta.execute()
    return {
        "to_dict": shape(result.to_dict()),
        "statuses": {str(n): str(r.status) for n, r in result.node_results.items()},
        "counts": [result.successful_nodes, result.failed_nodes, result.skipped_nodes],
        "events": events_of(log),
    }


async def meta_empty() -> Any:
    result = await we.MetaDAG().execute()
    return {"to_dict": shape(result.to_dict()), "total": result.total_nodes}


async def meta_reconciler_node() -> Any:
    async def body(task_id: str, spec: Any) -> Any:
        await asyncio.sleep(1)
        return task_id

    meta = we.MetaDAG()
    meta.add_node(
        we.MetaDAGNodeSpec("r", {"a": 1, "b": 2}, body, node_type="reconciler",
                           completion_timeout=60)
    )  # fmt: skip
    result = await meta.execute()
    node = result.node_results["r"]
    return {"status": str(node.status), "outputs": shape(node.task_outputs)}


PROGRAMS: dict[str, Callable[[], Awaitable[Any]]] = {
    f.__name__: f
    for f in (
        dag_chain_with_outputs, dag_failure_skips_dependents, dag_retries_then_success,
        dag_retries_exhausted, dag_attempt_timeout, dag_total_timeout,
        dag_async_and_sync_callbacks, dag_events_off, dag_bad_graphs, dag_dependencies_none,
        dag_empty_graph,
        dag_result_built_by_hand, dag_circuit_key, dag_semaphore,
        dag_asyncio_semaphore_and_no_timeouts,
        reconciler_runs_to_completion, reconciler_restarts_on_failure,
        reconciler_removed_task_stops, reconciler_cycle,
        meta_two_nodes_with_outputs, meta_failure_skips_downstream, meta_empty,
        meta_reconciler_node,
    )
}  # fmt: skip


def main(names: list[str]) -> None:
    import logging

    logging.disable(logging.CRITICAL)  # 0.3.0 logs every callback TypeError
    out: dict[str, Any] = {}
    for name in names or list(PROGRAMS):
        try:
            out[name] = run(asyncio.wait_for(PROGRAMS[name](), timeout=3600))
        except Exception as exc:  # a program that breaks is an observation too
            out[name] = {"program_raised": type(exc).__name__, "text": str(exc)[:200]}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
