"""Single-task "dag" nodes, run as plain tasks of the node-level run.

A "dag" node is normally a DAG run of its own, and a run has a fixed
cost (graph, plan, worker task, records: about 150 µs here) that dwarfs a
small task. A node with one task and nothing that needs a run of its own
(no store, no task dependencies) is instead run by the node-level run
itself: the node's retry policy and attempt timeout become that task's
per-task settings there, and its ``dag_result`` is made from the outcome.

That is only done when the result cannot differ from a run of its own:
the node's breaker cannot open within its attempts, its total timeout
cannot bind before its attempts and delays are spent, seeded jitter is not
in play, and overloads are classified alike. Everything else takes the
ordinary path. tests/test_meta_direct.py compares both paths on random
configs and task behaviours.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from wave_executor._core.config import WaveConfig
from wave_executor._core.meta_records import MetaDAGNodeSpec
from wave_executor._core.names import StopReason
from wave_executor._core.records import DAGExecutionResult, TaskResult
from wave_executor._core.retry import RetryPolicy
from wave_executor._core.status import TaskStatus
from wave_executor._core.upstream import UPSTREAM_OUTPUTS, with_outputs
from wave_executor._runtime.attempt import TaskBody
from wave_executor._runtime.node_runners import describe_unsuccessful

__all__ = [
    "DirectNode",
    "NodeSettings",
    "direct_escalation",
    "direct_nodes",
    "direct_outcome",
    "direct_spec",
    "run_defaults",
]

_DEFAULT = WaveConfig()
#: The node run's own settings for a node body: no retries, no attempt timeout.
NO_RETRY = RetryPolicy(max_retries=0)


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """A node config as the node run applies it to the node's task."""

    config: WaveConfig
    policy: RetryPolicy
    timeout: float


@dataclass(slots=True)
class DirectNode:
    """A single-task node that the node-level run runs as a plain task."""

    task_id: Any
    spec: Any
    body: TaskBody
    inject_dep_outputs: bool
    settings: NodeSettings


def direct_nodes(
    nodes: Mapping[Hashable, MetaDAGNodeSpec], meta_config: WaveConfig
) -> dict[Hashable, DirectNode]:
    """The nodes that need no run of their own (configs are judged once each)."""
    judged: dict[int, NodeSettings | None] = {}
    out: dict[Hashable, DirectNode] = {}
    for node_id, spec in nodes.items():
        if (
            spec.node_type != "dag"
            or spec.store is not None
            or spec.accept_partial
            or spec.task_dependencies
            or spec.task_executor is None
            or not isinstance(spec.tasks, Mapping)
            or len(spec.tasks) != 1
        ):
            continue
        cfg = spec.config if spec.config is not None else _DEFAULT
        key = id(cfg)
        if key in judged:
            settings = judged[key]
        else:
            settings = judged[key] = _judge(cfg, meta_config)
        if settings is not None:
            ((task_id, task_spec),) = spec.tasks.items()
            out[node_id] = DirectNode(
                task_id, task_spec, spec.task_executor, spec.inject_dep_outputs, settings
            )
    return out


def _judge(cfg: WaveConfig, meta_config: WaveConfig) -> NodeSettings | None:
    """The settings, or None when a run of its own could end differently."""
    policy = cfg.effective_retry_policy()
    if policy.jitter and policy.seed is not None:
        return None  # the node-level run's generator would draw other numbers
    if cfg.overload_errors != meta_config.overload_errors:
        return None
    attempts = policy.max_retries + 1
    if cfg.circuit_breaker_enabled and cfg.circuit_failure_threshold <= attempts:
        return None  # the breaker could open between attempts
    timeout = cfg.default_task_timeout
    total = cfg.total_execution_timeout
    if total != math.inf:
        delays = sum(policy.delay(k, 1.0) for k in range(1, attempts))
        worst = attempts * timeout + delays  # inf when attempts have no timeout
        if not worst * 1.01 + 0.1 < total:
            return None
    return NodeSettings(cfg, policy, timeout)


def run_defaults(
    nodes: Mapping[Hashable, Any], direct: Mapping[Hashable, DirectNode]
) -> tuple[RetryPolicy, float, dict[Hashable, RetryPolicy], dict[Hashable, float | None]]:
    """The node run's default retry policy and attempt timeout, and per-node overrides.

    The settings most direct nodes share become the defaults, so that only
    the other nodes need an override (other nodes: no retry, no timeout).
    """
    shared: dict[int, tuple[NodeSettings, int]] = {}
    for node in direct.values():
        settings, count = shared.get(id(node.settings), (node.settings, 0))
        shared[id(node.settings)] = (settings, count + 1)
    if not shared:
        return NO_RETRY, math.inf, {}, {}
    common, _ = max(shared.values(), key=lambda pair: pair[1])
    policies: dict[Hashable, RetryPolicy] = {}
    timeouts: dict[Hashable, float | None] = {}
    for node_id in nodes:
        found = direct.get(node_id)
        if found is None:
            policies[node_id], timeouts[node_id] = NO_RETRY, None
        elif found.settings is not common:
            policies[node_id], timeouts[node_id] = found.settings.policy, found.settings.timeout
    return common.policy, common.timeout, policies, timeouts


def direct_spec(node: DirectNode, upstream: Mapping[Any, Any] | None) -> Any:
    """The task's spec as the node's own run holds it: the node's spec with
    ``_upstream_outputs`` (``upstream`` must be a fresh dict: the task gets it)."""
    if upstream is None:
        return node.spec
    return with_outputs(node.spec, UPSTREAM_OUTPUTS, upstream)


def direct_escalation(node: DirectNode, escalation: Mapping[str, Any]) -> dict[str, Any]:
    """The node run's escalation report as the node's own run would give it."""
    circuit = "closed" if node.settings.config.circuit_breaker_enabled else "disabled"
    return {**escalation, "task_id": node.task_id, "circuit_state": circuit}


def direct_outcome(
    node: DirectNode, outer: TaskResult, execution_id: str
) -> tuple[str, dict[Any, Any], DAGExecutionResult, str | None]:
    """(status, task_outputs, dag_result, error) of a node whose task ended in the node run.

    ``outer`` is the node's row in the node-level run: a success (output
    ``{task_id: output}``) or a final failure (output ``{"escalation": ...}``).
    """
    cfg = node.settings.config
    if outer.status == TaskStatus.SUCCESS:
        output = outer.output[node.task_id]
        outputs = {node.task_id: output}
        error = None
    else:
        output = {"escalation": direct_escalation(node, outer.output["escalation"])}
        outputs = {}
        error = outer.error
    task = TaskResult(
        node.task_id, "dag", outer.status, output, error, outer.duration_ms,
        outer.retry_count, outer.started_at, outer.completed_at,
    )  # fmt: skip
    failed = outer.status != TaskStatus.SUCCESS
    result = DAGExecutionResult(
        execution_id=execution_id,
        task_results={node.task_id: task},
        started_at=outer.started_at,
        completed_at=outer.completed_at,
        allow_partial_success=cfg.allow_partial_success,
        min_success_rate=cfg.min_success_rate,
        stopped_reason=StopReason.STOP_ON_FIRST_ERROR
        if failed and cfg.stop_on_first_error
        else None,
        duration_s=outer.duration_ms / 1000.0,
    )
    if not failed:
        return "success", outputs, result, None
    return "failed", outputs, result, describe_unsuccessful({node.task_id: task})
