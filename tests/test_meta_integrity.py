"""MetaDAG: what flows between nodes stays intact, and runners are held to their protocol.

Both node paths are checked where they differ in implementation: a
single-task "dag" node runs as a plain task of the node run ("direct"), or,
under a subclass of the built-in runner, as a run of its own ("own").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tests.helpers import Recorder
from wave_executor import RetryPolicy, WaveConfig
from wave_executor._runtime.node_runners import DagNodeRunner
from wave_executor.meta import MetaDAG, MetaDAGNodeSpec, NodeOutcome
from wave_executor.store import MemoryStore


class OwnRun(DagNodeRunner):
    """The built-in runner under another type: every node gets a run of its own."""


def metadag(path: str, **kwargs: Any) -> MetaDAG:
    meta = MetaDAG(**kwargs)
    if path == "own":
        meta.register_node_type("dag", OwnRun())
    return meta


async def produce(task_id: Any, spec: Any) -> Any:
    return {"rows": [1, 2, 3]}


@pytest.mark.parametrize("path", ["direct", "own"])
async def test_a_node_editing_its_upstream_outputs_cannot_change_upstream_results(
    path: str,
) -> None:
    seen: list[Any] = []

    async def vandal(task_id: Any, spec: Any) -> str:
        spec["_upstream_outputs"]["source"].clear()
        spec["_upstream_outputs"]["source"]["forged"] = True
        return "done"

    async def reader(task_id: Any, spec: Any) -> str:
        seen.append(spec["_upstream_outputs"]["source"])
        return "read"

    meta = metadag(path)
    meta.add_node(MetaDAGNodeSpec("source", {"extract": {}}, produce))
    meta.add_node(MetaDAGNodeSpec("vandal", {"v": {}}, vandal), depends_on=["source"])
    meta.add_node(MetaDAGNodeSpec("reader", {"r": {}}, reader), depends_on=["source", "vandal"])
    result = await meta.execute()
    assert result.succeeded
    assert result.node_results["source"].task_outputs == {"extract": {"rows": [1, 2, 3]}}
    assert result.node_results["source"].dag_result is not None
    assert seen == [{"extract": {"rows": [1, 2, 3]}}]


async def test_edits_to_a_nested_metadags_outputs_stay_with_the_editor() -> None:
    inner = MetaDAG().add_node(MetaDAGNodeSpec("leaf", {"extract": {}}, produce))
    seen: list[Any] = []

    async def vandal(task_id: Any, spec: Any) -> str:
        spec["_upstream_outputs"]["sub"]["leaf"].clear()
        return "done"

    async def reader(task_id: Any, spec: Any) -> str:
        seen.append(spec["_upstream_outputs"]["sub"])
        return "read"

    meta = MetaDAG()
    meta.add_node(MetaDAGNodeSpec("sub", node_type="meta", meta=inner))
    meta.add_node(MetaDAGNodeSpec("vandal", {"v": {}}, vandal), depends_on=["sub"])
    meta.add_node(MetaDAGNodeSpec("reader", {"r": {}}, reader), depends_on=["sub", "vandal"])
    result = await meta.execute()
    assert result.succeeded
    intact = {"leaf": {"extract": {"rows": [1, 2, 3]}}}
    assert result.node_results["sub"].task_outputs == intact
    nested = result.node_results["sub"].nested
    assert nested is not None and nested.node_results["leaf"].task_outputs == intact["leaf"]
    assert seen == [intact]


@pytest.mark.parametrize("inject_dep_outputs", [False, True])
async def test_retries_of_a_node_see_the_same_specs_on_both_paths(
    inject_dep_outputs: bool,
) -> None:
    cfg = WaveConfig(retry_policy=RetryPolicy(max_retries=2, base_delay=0.0))

    async def observe(path: str) -> list[Any]:
        seen: list[Any] = []

        async def scribble(task_id: Any, spec: Any) -> int:
            seen.append({k: v for k, v in spec.items() if k != "_upstream_outputs"})
            spec["scribbled"] = len(seen)  # a body that edits its spec
            if len(seen) < 3:
                raise ConnectionError("try again")
            return len(seen)

        meta = metadag(path)
        meta.add_node(MetaDAGNodeSpec("source", {"extract": {}}, produce))
        node = MetaDAGNodeSpec(
            "flaky", {"f": {"k": 1}}, scribble, config=cfg, inject_dep_outputs=inject_dep_outputs
        )
        meta.add_node(node, depends_on=["source"])
        result = await meta.execute()
        assert result.node_results["flaky"].task_outputs == {"f": 3}
        return seen

    assert await observe("direct") == await observe("own")


@pytest.mark.parametrize("path", ["direct", "own"])
async def test_a_node_with_events_off_passes_no_task_events_on(path: str) -> None:
    recorder = Recorder()
    meta = metadag(path, task_events=True)
    meta.on_event(recorder)
    quiet = WaveConfig(emit_events=False, max_retries=0)
    meta.add_node(MetaDAGNodeSpec("quiet", {"q": {}}, produce, config=quiet))
    meta.add_node(MetaDAGNodeSpec("loud", {"l": {}}, produce, config=WaveConfig(max_retries=0)))
    await meta.execute()
    task_events = [(t, e["node_id"]) for t, e in recorder.events if t.startswith("TASK_")]
    assert task_events == [("TASK_STARTED", "loud"), ("TASK_COMPLETED", "loud")]
    assert recorder.types("quiet") == ["NODE_STARTED", "NODE_COMPLETED"]


class Reports:
    def __init__(self, report: Any) -> None:
        self.report = report

    async def run(self, spec: MetaDAGNodeSpec, upstream_outputs: dict[Any, Any]) -> Any:
        return self.report


@pytest.mark.parametrize(
    ("report", "message"),
    [
        (None, "Reports.run returned None for node 'odd'; a node runner returns a NodeOutcome"),
        ("success", "Reports.run returned 'success' for node 'odd'"),
        (NodeOutcome("SUCCESS"), "Reports.run returned status 'SUCCESS' for node 'odd'"),
        (NodeOutcome("skipped"), "a NodeOutcome's status is one of 'success', 'failed', 'timeout'"),
    ],
)
async def test_a_runner_reporting_something_else_fails_its_node_saying_so(
    report: Any, message: str
) -> None:
    meta = MetaDAG().register_node_type("odd", Reports(report))
    meta.add_node(MetaDAGNodeSpec("odd", node_type="odd"))
    meta.add_node(MetaDAGNodeSpec("after", {"a": {}}, produce), depends_on=["odd"])
    result = await meta.execute()
    odd = result.node_results["odd"]
    assert odd.status == "failed"
    assert odd.error is not None and message in odd.error
    assert result.node_results["after"].status == "skipped"
    assert (result.successful_nodes, result.failed_nodes, result.skipped_nodes) == (0, 1, 1)


class Exploding(Mapping[Any, Any]):
    """Task specs that cannot be read: the node breaks before its runner is called."""

    def __getitem__(self, key: Any) -> Any:
        raise RuntimeError("spec store unreachable")

    def __iter__(self) -> Iterator[Any]:
        return iter(("a", "b"))

    def __len__(self) -> int:
        return 2


async def test_a_node_breaking_before_its_runner_runs_is_started_and_names_the_error() -> None:
    recorder = Recorder()
    meta = MetaDAG()
    meta.on_event(recorder)
    meta.add_node(MetaDAGNodeSpec("source", {"extract": {}}, produce))
    meta.add_node(MetaDAGNodeSpec("broken", Exploding(), produce), depends_on=["source"])
    result = await meta.execute()
    broken = result.node_results["broken"]
    assert broken.status == "failed"
    assert broken.error == "RuntimeError: spec store unreachable"
    assert broken.started_at is not None
    assert recorder.types("broken") == ["NODE_STARTED", "NODE_COMPLETED"]


async def test_a_durable_metadag_resumes_inside_nested_metadags() -> None:
    calls: list[str] = []
    broken = {"load"}

    async def step(task_id: str, spec: Any) -> str:
        calls.append(task_id)
        if task_id in broken:
            raise RuntimeError("disk full")
        return task_id

    def outer() -> MetaDAG:
        cfg = WaveConfig(max_retries=0)
        inner = MetaDAG().add_node(
            MetaDAGNodeSpec(
                "etl",
                {"extract": {}, "load": {}},
                step,
                task_dependencies={"load": ["extract"]},
                config=cfg,
            )
        )
        return MetaDAG().add_node(MetaDAGNodeSpec("sub", node_type="meta", meta=inner))

    store = MemoryStore()
    first = await outer().execute(store=store, run_id="nightly")
    assert first.node_results["sub"].status == "failed"
    broken.clear()
    calls.clear()
    second = await outer().execute(store=store, run_id="nightly")
    assert second.succeeded
    assert calls == ["load"]  # extract was restored from the first run
    assert "nightly/sub/etl" in {r.run_id for r in await store.list_runs()}


async def test_a_nested_node_hiding_an_outer_upstream_node_fails_the_meta_node() -> None:
    calls: list[Any] = []

    async def record(task_id: Any, spec: Any) -> Any:
        calls.append(task_id)
        return task_id

    inner = (
        MetaDAG()
        .add_node(MetaDAGNodeSpec("extract", {"inner_extract": {}}, record))
        .add_node(MetaDAGNodeSpec("load", {"load": {}}, record), depends_on=["extract"])
    )
    meta = (
        MetaDAG()
        .add_node(MetaDAGNodeSpec("extract", {"outer_extract": {}}, record))
        .add_node(MetaDAGNodeSpec("sub", node_type="meta", meta=inner), depends_on=["extract"])
    )
    result = await meta.execute()
    sub = result.node_results["sub"]
    assert sub.status == "failed"
    assert sub.error is not None and "ValueError: nested node 'extract'" in sub.error
    assert "'load'" in sub.error
    assert calls == ["outer_extract"]  # nothing of the nested graph ran


@pytest.mark.parametrize("path", ["direct", "own"])
async def test_a_sync_task_executor_fails_its_node_alike_on_both_paths(path: str) -> None:
    calls: list[Any] = []

    def forgot_async(task_id: Any, spec: Any) -> Any:
        calls.append(task_id)
        return {"v": 1}

    cfg = WaveConfig(max_retries=2, retry_backoff_factor=0.0, circuit_breaker_enabled=False)
    meta = metadag(path).add_node(MetaDAGNodeSpec("n", {"t": {}}, forgot_async, config=cfg))
    node = (await meta.execute()).node_results["n"]
    assert node.status == "failed"
    assert node.task_results["t"]["retry_count"] == 0
    assert "not an awaitable: define it with 'async def'" in node.task_results["t"]["error"]
    assert calls == ["t"]  # not retried (the direct path used to retry it twice)
