"""Property: node concurrency never exceeds the global cap nor any group's budget,
and every node runs only after all its upstream nodes finished."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wave_executor import WaveConfig
from wave_executor.meta import MetaDAG, MetaDAGNodeSpec, NodeOutcome
from wave_executor.testing import run_virtual

GROUPS = ["g0", "g1", "g2"]


class Probe:
    """A node kind that records how many nodes (and of which group) run at once."""

    def __init__(self) -> None:
        self.active: Counter[str] = Counter()
        self.total = 0
        self.max_total = 0
        self.max_group: Counter[str] = Counter()
        self.finished: dict[Any, float] = {}
        self.started: dict[Any, float] = {}

    async def run(self, spec: MetaDAGNodeSpec, upstream_outputs: dict[Any, Any]) -> NodeOutcome:
        group = spec.specialist or str(spec.node_id)
        loop = asyncio.get_running_loop()
        self.started[spec.node_id] = loop.time()
        self.total += 1
        self.active[group] += 1
        self.max_total = max(self.max_total, self.total)
        self.max_group[group] = max(self.max_group[group], self.active[group])
        try:
            await asyncio.sleep(spec.completion_timeout)  # the node's "work" duration
        finally:
            self.total -= 1
            self.active[group] -= 1
            self.finished[spec.node_id] = loop.time()
        return NodeOutcome("success", {"t": spec.node_id})


nodes_strategy = st.lists(
    st.tuples(
        st.sampled_from([*GROUPS, None]),  # specialist (None: the node is its own group)
        st.integers(min_value=1, max_value=5),  # duration
        st.sets(st.integers(min_value=0, max_value=30), max_size=3),  # upstream candidates
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    nodes=nodes_strategy,
    cap=st.integers(min_value=1, max_value=6),
    budgets=st.fixed_dictionaries({g: st.integers(min_value=1, max_value=4) for g in GROUPS}),
    default_budget=st.integers(min_value=1, max_value=3),
)
def test_node_concurrency_respects_global_and_group_caps(
    nodes: list[tuple[str | None, int, set[int]]],
    cap: int,
    budgets: dict[str, int],
    default_budget: int,
) -> None:
    probe = Probe()
    cfg = WaveConfig(
        max_parallel_per_wave=cap,
        specialist_budgets=budgets,
        default_specialist_budget=default_budget,
    )
    meta = MetaDAG(config=cfg).register_node_type("probe", probe)
    deps: dict[int, list[int]] = {}
    for i, (group, duration, ups) in enumerate(nodes):
        upstream = sorted(u for u in ups if u < i)  # edges only backwards: acyclic
        deps[i] = upstream
        spec = MetaDAGNodeSpec(
            i, node_type="probe", specialist=group, completion_timeout=float(duration)
        )
        meta.add_node(spec, depends_on=upstream)

    result, _ = run_virtual(meta.execute())

    assert result.successful_nodes == len(nodes)
    assert probe.max_total <= cap
    for group, peak in probe.max_group.items():
        assert peak <= budgets.get(group, default_budget)
    for node, upstream in deps.items():
        for up in upstream:
            assert probe.finished[up] <= probe.started[node]


def test_caps_are_reached_not_just_respected() -> None:
    probe = Probe()
    cfg = WaveConfig(max_parallel_per_wave=4, specialist_budgets={"g0": 2})
    meta = MetaDAG(config=cfg).register_node_type("probe", probe)
    for i in range(6):
        meta.add_node(MetaDAGNodeSpec(f"a{i}", node_type="probe", specialist="g0"))
    for i in range(6):
        meta.add_node(MetaDAGNodeSpec(f"b{i}", node_type="probe", completion_timeout=1.0))
    result, _ = run_virtual(meta.execute())
    assert result.successful_nodes == 12
    assert probe.max_total == 4
    assert probe.max_group["g0"] == 2


class Flaky:
    """A node kind that fails the nodes named in ``failing``."""

    def __init__(self, failing: set[Any]) -> None:
        self.failing = failing
        self.ran: list[Any] = []

    async def run(self, spec: MetaDAGNodeSpec, upstream_outputs: dict[Any, Any]) -> NodeOutcome:
        self.ran.append(spec.node_id)
        await asyncio.sleep(0)
        if spec.node_id in self.failing:
            return NodeOutcome("failed", error="planned")
        return NodeOutcome("success", {"t": spec.node_id})


@settings(max_examples=60, deadline=None)
@given(
    edges=st.lists(st.sets(st.integers(min_value=0, max_value=20), max_size=3), max_size=20),
    failing=st.sets(st.integers(min_value=0, max_value=20)),
)
def test_a_node_runs_iff_all_its_upstream_succeeded(
    edges: list[set[int]], failing: set[int]
) -> None:
    runner = Flaky(failing)
    meta = MetaDAG().register_node_type("flaky", runner)
    deps = {i: sorted(u for u in ups if u < i) for i, ups in enumerate(edges)}
    for i, upstream in deps.items():
        meta.add_node(MetaDAGNodeSpec(i, node_type="flaky"), depends_on=upstream)

    result, _ = run_virtual(meta.execute())

    expected: dict[int, str] = {}
    for i, upstream in deps.items():  # in topological order (edges go backwards)
        if any(expected[u] != "success" for u in upstream):
            expected[i] = "skipped"
        else:
            expected[i] = "failed" if i in failing else "success"
    assert {n: r.status for n, r in result.node_results.items()} == expected
    assert sorted(runner.ran) == sorted(i for i, s in expected.items() if s != "skipped")
    assert result.skipped_nodes == list(expected.values()).count("skipped")
    for i, status in expected.items():
        if status == "skipped":
            error = result.node_results[i].error
            assert error is not None and "did not succeed" in error
