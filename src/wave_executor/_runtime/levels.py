"""``LevelExecutor``: level mode, the graph run wave by wave with barriers.

Wave ``k`` holds the tasks of dependency depth ``k``. Each wave is one
engine run (``DagRun``) over tasks that do not depend on each other, so
caps, retries, breakers, groups and events behave exactly as in a DAG run;
the barrier is simply that the next wave starts only after that run ended.
It exists for callers who want barriers (a pause between waves for rate
limiting, a merged output per wave, a success gate per wave) and as the
baseline the README compares ``DAGExecutor`` with.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from wave_executor._core.backend import Backend
from wave_executor._core.config import WaveConfig
from wave_executor._core.graph import build_graph
from wave_executor._core.levels import waves_of
from wave_executor._core.retry import RetryPolicy
from wave_executor._core.triggers import parse_rules
from wave_executor._core.waves import ExecutionContext
from wave_executor._runtime.attempt import BackendSpec, resolve_backends, with_backends
from wave_executor._runtime.engine import (
    SpecialistSemaphore,
    as_specialist_semaphore,
    check_graph_arguments,
    check_run_arguments,
)
from wave_executor._runtime.executor_base import ExecutorBase
from wave_executor._runtime.level_run import LevelRun, WaveOptions
from wave_executor._runtime.progress_feed import feed_for
from wave_executor._runtime.settings import GroupSpec, KeyFunction
from wave_executor.progress import Progress

__all__ = ["LevelExecutor"]

TaskBody = Callable[[Any, Any], Any]


class LevelExecutor(ExecutorBase):
    """Runs a dependency graph level by level: wave ``k`` (the tasks of depth
    ``k``) starts only after every task of wave ``k - 1`` has ended.

    Slower than ``DAGExecutor`` whenever waves are uneven (a task waits for
    unrelated slow tasks of the previous wave); use it when you want the
    barriers. Event callbacks and keyed circuit breakers belong to the
    executor and are shared by its runs.
    """

    async def execute(
        self,
        tasks: Mapping[Any, Any],
        dependencies: Mapping[Any, Iterable[Any]] | None,
        task_executor: TaskBody,
        config: WaveConfig | None = None,
        inject_dep_outputs: bool = False,
        specialist_semaphore: SpecialistSemaphore | None = None,
        *,
        priority_costs: Mapping[Any, float] | None = None,
        groups: GroupSpec | None = None,
        retry_policies: Mapping[Any, RetryPolicy] | None = None,
        circuit_key: KeyFunction | None = None,
        trigger_rules: Mapping[Any, str] | None = None,
        backend: Backend | None = None,
        backends: BackendSpec | None = None,
        progress: Progress | None = None,
    ) -> ExecutionContext:
        """Run ``tasks`` wave by wave; return the filled ``ExecutionContext``.

        Arguments mean what they mean for ``DAGExecutor.execute()``; the
        keyword-only ones apply inside each wave. Raises ``TypeError`` for a
        non-mapping ``tasks`` or a non-callable ``task_executor``,
        ``UnknownDependencyError`` (a ``ValueError``) for an unknown id and
        ``WaveCircularDependencyError`` for a cycle, all before anything runs.

        ``trigger_rules`` (task id -> rule name, ``docs/trigger-rules.md``) are
        decided at the barrier before each wave, when every upstream has
        ended; unknown names or task ids raise ``ValueError`` before anything
        runs.

        ``backend`` and ``backends`` choose where bodies run, as for
        ``DAGExecutor.execute()``; outputs a backend keeps where they were
        made (``DaskBackend(keep_outputs=True)``) are fetched when the task
        ends, because each wave's outputs are merged in this process.

        ``progress`` (a ``wave_executor.progress.Progress``) follows the run
        over all its tasks, as for ``DAGExecutor.execute()``.
        """
        check_graph_arguments(tasks, task_executor)
        default = backend if backend is not None else self.backend
        if default is not None or backends is not None:
            chosen = resolve_backends(tasks, default, backends)
            task_executor = with_backends(task_executor, default, chosen, fetch_outputs=True)
        cfg = config if config is not None else self.config
        check_run_arguments(
            cfg,
            dependencies,
            semaphore=specialist_semaphore,
            circuit_key=circuit_key,
            groups=groups,
            mappings={
                "priority_costs": priority_costs,
                "retry_policies": retry_policies,
                "trigger_rules": trigger_rules,
            },
        )
        deps: Mapping[Any, Iterable[Any]] = dependencies if dependencies is not None else {}
        graph = build_graph(tasks, deps, priority_costs)
        for what, mapping in (("a group", groups), ("a retry policy", retry_policies)):
            if isinstance(mapping, Mapping):
                for task_id in mapping:
                    if task_id not in graph.index:
                        raise ValueError(
                            f"{what} is given for task {task_id!r}, which is not defined in tasks"
                        )
        rules = {graph.ids[i]: r for i, r in parse_rules(trigger_rules, graph.index).items()}
        waves = [[graph.ids[i] for i in wave] for wave in waves_of(graph)]
        execution_id = str(uuid.uuid4())
        events = self._hub.stream(execution_id, enabled=cfg.emit_events)
        run = LevelRun(
            tasks,
            deps,
            waves,
            task_executor,
            cfg,
            events,
            inject_dep_outputs,
            WaveOptions(
                as_specialist_semaphore(specialist_semaphore),
                priority_costs,
                groups,
                retry_policies,
                circuit_key,
                self._breakers,
            ),
            rules,
            feed_for(progress, execution_id),
        )
        return await run.run(execution_id)
