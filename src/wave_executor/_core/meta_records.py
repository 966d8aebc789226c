"""MetaDAG's records: a node's spec, what a runner reports, and the results.

Pure data (no asyncio), so results can be built, walked and serialised
anywhere. ``MetaDAGResult.critical_path()`` crosses levels: the longest
chain of nodes, each expanded into the longest chain of its own tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from wave_executor._core.config import WaveConfig
from wave_executor._core.critical_path import longest_path
from wave_executor._core.records import DAGExecutionResult, TaskResult
from wave_executor._core.restart import RestartSettings
from wave_executor._core.store_protocol import RunStore

if TYPE_CHECKING:
    from wave_executor._core.backend import Backend

__all__ = [
    "MetaDAGNodeResult",
    "MetaDAGNodeSpec",
    "MetaDAGResult",
    "NestedMeta",
    "NodeOutcome",
    "NodeResults",
    "TaskSummaries",
    "copy_outputs",
    "jsonable",
    "nested_outputs",
]


class NestedMeta(Protocol):
    """What a "meta" node needs of its nested MetaDAG."""

    async def execute(
        self,
        *,
        upstream_outputs: Mapping[Any, Any] | None = None,
        store: RunStore | None = None,
        run_id: str | None = None,
    ) -> MetaDAGResult: ...


@dataclass
class MetaDAGNodeSpec:
    """One node of a MetaDAG (0.3.0's fields first, in 0.3.0's order).

    ``node_type`` names the runner: ``"dag"`` (a DAGExecutor run of
    ``tasks``), ``"reconciler"`` (a WaveReconciler until its tasks are
    complete), ``"meta"`` (the nested MetaDAG ``meta``) or any kind
    registered with ``MetaDAG.register_node_type``.
    """

    node_id: Hashable
    tasks: Mapping[Any, Any] = field(default_factory=dict)
    task_executor: Callable[[Any, Any], Any] | None = None
    specialist: str | None = None
    node_type: str = "dag"
    task_dependencies: Mapping[Any, Iterable[Any]] = field(default_factory=dict)
    config: WaveConfig | None = None
    inject_dep_outputs: bool = False
    policies: Mapping[Any, str] | str | None = None
    completion_timeout: float = 300.0
    completion_poll_interval: float = 0.1
    # -- ours (keyword use recommended) --
    #: "dag" nodes: succeed when ``dag_result.succeeded`` (the config's
    #: ``allow_partial_success``/``min_success_rate``) instead of only when
    #: every task succeeded.
    accept_partial: bool = False
    #: "reconciler" nodes: passed to WaveReconciler / update().
    poll_interval_s: float = 2.0
    restart_settings: RestartSettings | None = None
    max_restart_attempts: Mapping[Any, int] | int | None = None
    restart_backoff_base: Mapping[Any, float] | float = 3.0
    timeouts: Mapping[Any, float | None] | float | None = None
    #: "meta" nodes: the nested MetaDAG.
    meta: NestedMeta | None = None
    #: Durability: "dag" nodes record and resume their run in ``store`` under
    #: ``run_id``; "reconciler" nodes checkpoint there (reconciler id ``run_id``).
    #: ``MetaDAG.execute(store=..., run_id=...)`` fills both in for every node.
    store: RunStore | None = None
    run_id: str | None = None
    #: "dag" nodes: where the node's task bodies run, as ``DAGExecutor.execute``'s
    #: ``backend=`` and ``backends=`` (a mapping task id -> backend or a function
    #: ``(task_id, spec) -> backend or None``); None: in the event loop.
    backend: Backend | None = None
    backends: Any = None

    def with_tasks(self, tasks: Mapping[Any, Any]) -> MetaDAGNodeSpec:
        """A shallow copy with other ``tasks`` (``dataclasses.replace`` costs 20x more)."""
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.tasks = tasks
        return copy


class TaskSummaries(Mapping[Any, dict[str, Any]]):
    """``task id -> TaskResult.to_dict()``, made when read (most results never are)."""

    __slots__ = ("_results",)

    def __init__(self, results: Mapping[Any, TaskResult]) -> None:
        self._results = results

    def __getitem__(self, task_id: Any) -> dict[str, Any]:
        return self._results[task_id].to_dict()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    def __repr__(self) -> str:
        return repr(dict(self))


@dataclass
class NodeOutcome:
    """What a ``NodeRunner`` reports for one node."""

    status: str  # "success", "failed" or "timeout"
    task_outputs: dict[Any, Any] = field(default_factory=dict)
    task_results: Mapping[Any, dict[str, Any]] = field(default_factory=dict)
    dag_result: DAGExecutionResult | None = None
    error: str | None = None
    nested: MetaDAGResult | None = None


@dataclass
class MetaDAGNodeResult:
    """The outcome of one node. ``status``: success, failed, timeout or skipped."""

    node_id: Hashable
    status: str
    task_outputs: dict[Any, Any] = field(default_factory=dict)
    dag_result: DAGExecutionResult | None = None
    error: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: float = 0.0
    node_type: str = "dag"
    #: task id -> a JSON-ready summary of the task (TaskResult.to_dict() for "dag" nodes).
    task_results: Mapping[Any, dict[str, Any]] = field(default_factory=dict)
    #: "meta" nodes: the nested run's result.
    nested: MetaDAGResult | None = None
    #: The node's ``task_dependencies`` (for the critical path).
    task_dependencies: Mapping[Any, Iterable[Any]] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status == "success"

    def critical_path(self) -> list[tuple[Any, ...]]:
        """The longest chain inside this node, as id paths starting with this node's id."""
        me = self.node_id
        if self.nested is not None:
            return [(me, *step) for step in self.nested.critical_path()]
        if self.dag_result is not None and self.dag_result.task_results:
            return [(me, t) for t in self.dag_result.get_critical_path(self.task_dependencies)]
        return [(me,)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "node_id": _key(self.node_id),
            "node_type": self.node_type,
            "status": self.status,
            "task_outputs": jsonable(self.task_outputs),
            "task_results": jsonable(self.task_results),
            "dag_result": None if self.dag_result is None else jsonable(self.dag_result.to_dict()),
            "error": self.error,
            "started_at": _iso(self.started_at),
            "completed_at": _iso(self.completed_at),
            "duration_ms": round(self.duration_ms, 2),
            "task_output_keys": [_key(k) for k in self.task_outputs],
            "nested": None if self.nested is None else self.nested.to_dict(),
        }


class NodeResults(Mapping[Hashable, MetaDAGNodeResult]):
    """``node id -> MetaDAGNodeResult`` in node order, each made when first read.

    Nodes that ran as plain tasks of the node run (and skipped ones) have
    their record made from that run's row on demand, as ``TaskResultTable``
    does for tasks: a large MetaDAG pays for the records that are read.
    """

    __slots__ = ("_made", "_make", "_order")

    def __init__(
        self,
        order: Iterable[Hashable],
        made: dict[Hashable, MetaDAGNodeResult],
        make: Callable[[Hashable], MetaDAGNodeResult],
    ) -> None:
        self._order = dict.fromkeys(order)
        self._made = made
        self._make = make

    def __getitem__(self, node_id: Hashable) -> MetaDAGNodeResult:
        result = self._made.get(node_id)
        if result is None:
            if node_id not in self._order:
                raise KeyError(node_id)
            result = self._made[node_id] = self._make(node_id)
        return result

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._order

    def __repr__(self) -> str:
        return repr(dict(self))


@dataclass
class MetaDAGResult:
    """The outcome of one ``MetaDAG.execute()``."""

    execution_id: str
    node_results: Mapping[Hashable, MetaDAGNodeResult]
    total_nodes: int
    successful_nodes: int
    failed_nodes: int
    skipped_nodes: int
    duration_ms: float
    started_at: datetime | None = None
    completed_at: datetime | None = None
    #: node id -> its upstream node ids (for the critical path).
    dependencies: Mapping[Hashable, Iterable[Hashable]] = field(default_factory=dict)
    #: Of ``skipped_nodes``, those whose trigger rule was not met (not failures).
    skipped_by_rule_nodes: int = 0

    @property
    def succeeded(self) -> bool:
        """Every node succeeded, but those skipped because their trigger rule was
        not met (True for an empty MetaDAG)."""
        return self.successful_nodes == self.total_nodes - self.skipped_by_rule_nodes

    def critical_path(self) -> list[tuple[Any, ...]]:
        """The chain that decided how long the run took, root first, across levels.

        The chain of nodes with the longest summed duration, each expanded
        into the longest chain of its own tasks: ``(node_id, task_id)`` for
        "dag" nodes, ``(node_id, inner_node_id, ...)`` for nested MetaDAGs,
        ``(node_id,)`` for nodes without task timings (reconciler nodes,
        kinds of your own). Skipped nodes are not on it.
        """
        durations = {
            n: r.duration_ms for n, r in self.node_results.items() if r.started_at is not None
        }
        path: list[tuple[Any, ...]] = []
        for node_id in longest_path(durations, self.dependencies):
            path.extend(self.node_results[node_id].critical_path())
        return path

    def to_dict(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "total_nodes": self.total_nodes,
            "successful_nodes": self.successful_nodes,
            "failed_nodes": self.failed_nodes,
            "skipped_nodes": self.skipped_nodes,
            "succeeded": self.succeeded,
            "duration_ms": round(self.duration_ms, 2),
            "started_at": _iso(self.started_at),
            "completed_at": _iso(self.completed_at),
            "critical_path": jsonable(self.critical_path()),
            "nodes": {_key(k): r.to_dict() for k, r in self.node_results.items()},
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _key(key: Any) -> Any:
    return key if isinstance(key, str | int | float | bool) or key is None else str(key)


def jsonable(value: Any) -> Any:
    """A JSON-ready copy: dict keys become strings where needed, unknown objects repr()."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {_key(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return jsonable(to_dict())
    return repr(value)


def copy_outputs(outputs: Any) -> Any:
    """A node's ``task_outputs`` as one consumer gets them: a dict of its own.

    The outputs themselves are shared (as ``_dep_outputs`` shares them in a
    DAG run); the mapping is ours, and one node clearing or editing it must
    not change an upstream node's result or what its siblings see.
    """
    return dict(outputs) if isinstance(outputs, dict) else outputs


def nested_outputs(nested: MetaDAGResult) -> dict[Any, Any]:
    """A "meta" node's ``task_outputs``, ``{inner node: its task_outputs}``,
    freshly built at every level (see ``copy_outputs``)."""
    out: dict[Any, Any] = {}
    for node_id, result in nested.node_results.items():
        if result.succeeded:
            if result.nested is not None:
                out[node_id] = nested_outputs(result.nested)
            else:
                out[node_id] = copy_outputs(result.task_outputs)
    return out
