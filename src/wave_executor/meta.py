"""``MetaDAG``: a dependency graph whose nodes are whole graphs (0.3.0 import path).

Each node is a DAGExecutor run (``node_type="dag"``), a WaveReconciler run
until its tasks are complete (``"reconciler"``), a nested MetaDAG
(``"meta"``), or a kind of your own (``MetaDAG.register_node_type`` with a
``NodeRunner``). A node starts when all its upstream nodes succeeded; a
failed node's downstream nodes are "skipped". See ``docs/meta.md``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from wave_executor._core.config import WaveConfig
from wave_executor._core.meta_records import (
    MetaDAGNodeResult,
    MetaDAGNodeSpec,
    MetaDAGResult,
    NodeOutcome,
)
from wave_executor._core.meta_validation import (
    check_nesting,
    check_node_graph,
    check_spec,
)
from wave_executor._core.store_protocol import RunStore
from wave_executor._core.triggers import TriggerRule, parse_rule
from wave_executor._runtime.events import EventCallback, EventHub
from wave_executor._runtime.meta_run import MetaRun
from wave_executor._runtime.node_runners import (
    DagNodeRunner,
    MetaNodeRunner,
    NodeRunner,
    ReconcilerNodeRunner,
    default_runners,
    inject_upstream,
)
from wave_executor.progress import Progress

__all__ = [
    "MetaDAG",
    "MetaDAGNodeResult",
    "MetaDAGNodeSpec",
    "MetaDAGResult",
    "NodeOutcome",
    "NodeRunner",
    "inject_upstream",
]


class MetaDAG:
    """A graph of nodes, each a whole DAG, reconciler or nested MetaDAG.

    ``config`` caps node concurrency: ``max_parallel_per_wave`` nodes at
    once, and per group (a node's ``specialist``, else its own id)
    ``specialist_budgets.get(group, default_specialist_budget)``;
    ``total_execution_timeout`` bounds the whole run and ``emit_events``
    switches events off. Node bodies are never retried and have no
    per-attempt timeout: timeouts belong to the nodes (their ``config`` or
    ``completion_timeout``).

    With ``inject_dep_outputs`` (default) every task spec of a node gets
    ``_upstream_outputs = {upstream_node_id: {task_id: output}}``.
    """

    def __init__(
        self,
        config: WaveConfig | None = None,
        inject_dep_outputs: bool = True,
        *,
        task_events: bool = False,
    ) -> None:
        if config is not None and not isinstance(config, WaveConfig):
            raise TypeError(f"config must be a WaveConfig or None, got {config!r}")
        self.config = config if config is not None else WaveConfig()
        self.inject_dep_outputs = inject_dep_outputs
        #: Also pass on the events of the tasks inside "dag" and "reconciler"
        #: nodes (each tagged with ``node_id``).
        self.task_events = task_events
        self._nodes: dict[Hashable, MetaDAGNodeSpec] = {}
        self._deps: dict[Hashable, list[Hashable]] = {}
        self._rules: dict[Hashable, TriggerRule] = {}  # nodes with a non-default rule
        #: (node, upstream) pairs whose upstream was not a node yet when node was added:
        #: the only edges that can name an unknown node or close a cycle.
        self._forward: list[tuple[Hashable, Hashable]] = []
        self._hub = EventHub()
        self._runners: dict[str, NodeRunner] = default_runners()

    @property
    def nodes(self) -> dict[Hashable, MetaDAGNodeSpec]:
        return dict(self._nodes)

    def add_node(
        self,
        spec: MetaDAGNodeSpec,
        depends_on: Iterable[Hashable] | None = None,
        trigger_rule: str = "all_success",
    ) -> MetaDAG:
        """Add a node; returns ``self`` (chainable).

        Checked at once (TypeError/ValueError naming the node, see
        docs/meta.md "Errors"): a repeated node id; for the built-in kinds
        (when the runner of ``spec.node_type`` is a built-in one), the fields
        that kind runs on: "dag" and "reconciler" need a callable
        ``task_executor`` (its calls are awaited), ``tasks`` as a mapping and
        ``task_dependencies`` as a mapping naming only tasks of ``tasks``,
        without a cycle (UnknownDependencyError /
        WaveCircularDependencyError); a "reconciler" node restart settings
        that ``WaveReconciler.update`` accepts and ``completion_timeout``,
        ``completion_poll_interval`` > 0; a "meta" node a ``meta`` with an
        ``execute()`` and no ``tasks`` of its own. Nodes of your own kinds
        only get the node-level checks (and, as the MetaDAG injects upstream
        outputs into them, ``tasks`` as a mapping).

        ``depends_on`` (one id or several) may name nodes added later;
        unknown names raise UnknownDependencyError (a ValueError, "not
        defined") and cycles WaveCircularDependencyError at ``execute()``.

        ``trigger_rule`` says when the node runs, given how its upstream nodes
        ended (``docs/trigger-rules.md``); an unknown name raises ValueError
        at once. A node skipped because its rule was not met does not make
        the MetaDAG fail.
        """
        if not isinstance(spec, MetaDAGNodeSpec):
            raise TypeError(f"add_node takes a MetaDAGNodeSpec, got {type(spec).__name__}")
        node_id = spec.node_id
        if not isinstance(node_id, Hashable):
            raise TypeError(f"node_id must be hashable, got {node_id!r}")
        if node_id in self._nodes:
            raise ValueError(f"node {node_id!r} is already defined")
        rule = parse_rule(trigger_rule)
        kind = _builtin_kind(self._runners.get(spec.node_type))
        check_spec(spec, kind, inject=self.inject_dep_outputs)
        if isinstance(depends_on, str | bytes) or not isinstance(depends_on, Iterable | None):
            depends_on = [depends_on]  # one id: a string, a number...
        upstream = list(depends_on or ())
        for up in upstream:
            if not isinstance(up, Hashable):
                raise TypeError(f"node {node_id!r}: depends_on names {up!r}, not a node id")
        upstream = list(dict.fromkeys(upstream))
        for up in upstream:
            if up not in self._nodes:
                self._forward.append((node_id, up))
        self._nodes[node_id] = spec
        self._deps[node_id] = upstream
        if rule is not TriggerRule.ALL_SUCCESS:
            self._rules[node_id] = rule
        return self

    def register_node_type(self, node_type: str, runner: NodeRunner) -> MetaDAG:
        """Run nodes of ``node_type`` with ``runner`` (replaces a built-in kind); chainable."""
        if not callable(getattr(runner, "run", None)):
            raise TypeError(f"a node runner needs an async run(spec, upstream) method: {runner!r}")
        self._runners[node_type] = runner
        return self

    def on_event(self, callback: EventCallback) -> EventCallback:
        """Register ``callback(event_type, event)``, sync or async; returns it (a decorator).

        Events: META_EXECUTION_STARTED (total_nodes), NODE_STARTED
        (node_type), NODE_COMPLETED (status, duration_ms), NODE_SKIPPED
        (failed_deps), META_EXECUTION_COMPLETED (counts, duration_ms);
        ``task_id`` holds the node id. With ``MetaDAG(task_events=True)``,
        also the ``TASK_*`` events of the tasks inside "dag" and
        "reconciler" nodes, with ``task_id`` the task's id and ``node_id``
        its node's.
        """
        return self._hub.subscribe(callback)

    def remove_event_callback(self, callback: EventCallback) -> None:
        self._hub.unsubscribe(callback)

    async def execute(
        self,
        *,
        upstream_outputs: Mapping[Any, Any] | None = None,
        store: RunStore | None = None,
        run_id: str | None = None,
        progress: Progress | None = None,
    ) -> MetaDAGResult:
        """Run every node once its upstream nodes succeeded.

        ``upstream_outputs`` (used by an enclosing "meta" node) is merged
        into every node's ``_upstream_outputs``. Cancelling this cancels
        every node and every task inside them (reconcilers are stopped).

        With ``store`` (and a ``run_id``), every "dag" node records its run
        as ``f"{run_id}/{node_id}"`` and every "reconciler" node checkpoints
        under that id: executing again with the same ``run_id`` resumes each
        node without calling what already succeeded.

        ``progress`` (a ``wave_executor.progress.Progress``) follows the run
        node by node: ``start`` gets the number of nodes and ``task_done``
        each node's id and final status.

        Before anything runs, raises UnknownDependencyError (a ValueError)
        for a ``depends_on`` naming no node of this MetaDAG,
        WaveCircularDependencyError for a cycle among nodes (both worded
        about nodes), GraphError (a ValueError) for a MetaDAG nested inside
        itself, directly or through other MetaDAGs (naming the node path),
        and ValueError for a node_type with no runner.
        """
        if store is not None and not run_id:
            raise ValueError("a durable MetaDAG run needs a run_id to resume by")
        check_node_graph(self._nodes, self._deps, self._forward)
        check_nesting(self, _nested_metas)
        run = MetaRun(
            self._nodes,
            self._deps,
            self._runners,
            self.config,
            self._hub,
            self.inject_dep_outputs,
            upstream_outputs,
            store,
            run_id,
            self.task_events,
            rules=self._rules,
            progress=progress,
        )
        return await run.run()


def _builtin_kind(runner: NodeRunner | None) -> str | None:
    """The built-in kind a runner runs nodes as (its fields are checked), else None."""
    if isinstance(runner, DagNodeRunner):
        return "dag"
    if isinstance(runner, ReconcilerNodeRunner):
        return "reconciler"
    if isinstance(runner, MetaNodeRunner):
        return "meta"
    return None


def _nested_metas(meta: object) -> list[tuple[Hashable, object]]:
    """``(node_id, nested MetaDAG)`` of the nodes that run a MetaDAG of this library."""
    assert isinstance(meta, MetaDAG)
    runners = meta._runners
    return [
        (node_id, spec.meta)
        for node_id, spec in meta._nodes.items()
        if isinstance(spec.meta, MetaDAG)
        and isinstance(runners.get(spec.node_type), MetaNodeRunner)
    ]
