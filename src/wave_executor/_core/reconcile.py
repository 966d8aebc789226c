"""The reconciler's pure core: task statuses, records, and the desired-vs-observed diff.

``diff_desired`` compares two desired states (what ``update()`` changes) and
``reconcile_task`` decides the next action for one task from its record and
its dependencies' records. The supervisor in ``_runtime`` applies actions;
nothing here awaits, and time is the ``now`` passed in.

Dependencies: a task starts once each dependency is *satisfied*: ``success``,
or ``running`` and declared ready by its body (``mark_ready()``). A
dependency that is *dead* (failed or timed out with no restart coming,
blocked, stopped, or skipped itself) makes the task ``skipped``: terminal,
naming the dependency, and undone if an update revives the dependency.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any, Protocol

from wave_executor._core.restart import RestartHistory, RestartPolicy
from wave_executor.errors import IllegalTransitionError

__all__ = [
    "DEAD",
    "TERMINAL",
    "Action",
    "ActionKind",
    "CheckpointStore",
    "DesiredDiff",
    "ReconcileStatus",
    "ReconcileTaskSpec",
    "ReconcileTaskState",
    "SupervisedStatus",
    "SupervisedRecord",
    "diff_desired",
    "record_from_checkpoint",
    "reconcile_task",
    "satisfied",
    "spec_from_checkpoint",
]


class SupervisedStatus(StrEnum):
    """Where a supervised task is. Compares equal to 0.3.0's status strings.

    ``skipped`` is ours: 0.3.0 left a task whose dependency died ``pending``
    forever; here it ends ``skipped`` and says which dependency is to blame.
    """

    PENDING = "pending"  # waiting for dependencies, a slot, or its restart time
    RUNNING = "running"
    SUCCESS = "success"  # under "always" also while waiting to restart after a clean exit
    FAILED = "failed"
    TIMEOUT = "timeout"
    STOPPED = "stopped"  # removed from the desired state, or the reconciler stopped
    BLOCKED = "blocked"  # restart limits hit: a crash loop
    SKIPPED = "skipped"  # a dependency is dead; see ``reason``


_S = SupervisedStatus
TERMINAL: frozenset[str] = frozenset(
    {_S.SUCCESS, _S.FAILED, _S.TIMEOUT, _S.STOPPED, _S.BLOCKED, _S.SKIPPED}
)
DEAD: frozenset[str] = TERMINAL - {_S.SUCCESS}
_ALLOWED: dict[SupervisedStatus, frozenset[SupervisedStatus]] = {
    _S.PENDING: frozenset({_S.RUNNING, _S.SKIPPED, _S.STOPPED}),
    # running -> pending: cancelled to run again (spec changed, upstream restarted)
    _S.RUNNING: frozenset({_S.SUCCESS, _S.FAILED, _S.TIMEOUT, _S.STOPPED, _S.PENDING}),
    _S.SUCCESS: frozenset({_S.RUNNING, _S.PENDING, _S.SKIPPED, _S.STOPPED}),
    _S.FAILED: frozenset({_S.PENDING, _S.BLOCKED, _S.STOPPED}),
    _S.TIMEOUT: frozenset({_S.PENDING, _S.BLOCKED, _S.STOPPED}),
    _S.BLOCKED: frozenset({_S.PENDING, _S.STOPPED}),
    _S.SKIPPED: frozenset({_S.PENDING, _S.STOPPED}),
    _S.STOPPED: frozenset({_S.PENDING}),
}


@dataclass(slots=True)
class ReconcileTaskSpec:
    """Desired state of one task (0.3.0 fields, plus an optional per-run timeout)."""

    task_id: Any
    spec: Any
    restart_policy: RestartPolicy = RestartPolicy.ON_FAILURE
    max_restart_attempts: int = 5
    restart_backoff_base: float = 3.0
    timeout_s: float | None = None  # None: a supervised run may last forever


@dataclass(slots=True)
class ReconcileTaskState:
    """Observed state of one task: a snapshot, never the reconciler's live record."""

    task_id: Any
    status: str = SupervisedStatus.PENDING
    restart_count: int = 0  # restarts since the spec was set (0 during the first run)
    last_started: datetime | None = None
    next_start_after: datetime | None = None
    last_error: str | None = None
    output: Any = None
    ready: bool = False
    reason: str | None = None  # why blocked, skipped or stopped

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def is_running(self) -> bool:
        return self.status == SupervisedStatus.RUNNING


@dataclass(slots=True)
class ReconcileStatus:
    """Aggregate snapshot (0.3.0 fields in 0.3.0's order, then ours)."""

    desired_task_count: int
    running_count: int
    success_count: int
    failed_count: int  # failed + timeout
    pending_count: int
    stopped_count: int
    blocked_count: int
    task_states: dict[Any, str]
    uptime_s: float
    reconcile_cycle: int
    skipped_count: int = 0


@dataclass(slots=True, eq=False)
class SupervisedRecord:
    """The reconciler's live, mutable view of one task; times are monotonic seconds."""

    task_id: Hashable
    status: SupervisedStatus = SupervisedStatus.PENDING
    runs: int = 0  # starts since the spec was set
    restart_count: int = 0
    run_id: int = 0  # reconciler-wide id of the current or last run (0: none yet)
    ready: bool = False
    started_at: float | None = None
    next_start_after: float | None = None  # None: no restart delay pending
    last_error: str | None = None
    output: Any = None
    reason: str | None = None
    root: Hashable | None = None  # for skipped: the first dead task up the chain
    dep_runs: dict[Any, int] = field(default_factory=dict)  # at this run's start
    history: RestartHistory = field(default_factory=RestartHistory)

    def move(self, to: SupervisedStatus) -> None:
        """Change status through the transition table."""
        if to not in _ALLOWED[self.status]:
            raise IllegalTransitionError(
                f"illegal supervised task transition {self.status.value} -> {to.value} "
                f"for task {self.task_id!r}"
            )
        self.status = to

    def fresh_quota(self) -> None:
        """Forget restarts and crashes: a changed spec starts over."""
        self.runs = self.restart_count = 0
        self.history = RestartHistory()
        self.next_start_after = None
        self.last_error = self.reason = self.root = None


def satisfied(dep: SupervisedRecord) -> bool:
    """May a dependent of ``dep`` start (or keep its start)?"""
    status = dep.status
    return status is SupervisedStatus.SUCCESS or (status is SupervisedStatus.RUNNING and dep.ready)


class ActionKind(Enum):
    NOTHING = "nothing"  # wait for a trigger (a dependency changes, a slot frees)
    START = "start"
    WAIT = "wait"  # restart delay not over: wake at ``at``
    SKIP = "skip"  # ``deps`` are dead
    UNSKIP = "unskip"  # no dependency is dead any more: back to pending
    STOP = "stop"  # rest_for_one: ``deps[0]`` restarted under a running task


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    at: float = 0.0
    deps: tuple[Hashable, ...] = ()


NOTHING = Action(ActionKind.NOTHING)
_START = Action(ActionKind.START)
_UNSKIP = Action(ActionKind.UNSKIP)
# A timer may fire a hair before its deadline (asyncio's clock resolution).
_EARLY = 1e-6


def reconcile_task(
    record: SupervisedRecord,
    deps: Mapping[Any, SupervisedRecord],
    now: float,
    *,
    rest_for_one: bool = False,
) -> Action:
    """The next action for one desired task, given its dependencies' records."""
    status = record.status
    if status is SupervisedStatus.RUNNING:
        if rest_for_one:
            for dep_id, dep in deps.items():
                started_with = record.dep_runs.get(dep_id)
                if started_with is not None and (dep.run_id != started_with or not satisfied(dep)):
                    return Action(ActionKind.STOP, deps=(dep_id,))
        return NOTHING
    if status is SupervisedStatus.SKIPPED:
        alive = all(dep.status not in DEAD for dep in deps.values())
        return _UNSKIP if alive else NOTHING
    waiting = status is SupervisedStatus.PENDING or (
        status is SupervisedStatus.SUCCESS and record.next_start_after is not None
    )
    if not waiting:
        return NOTHING
    dead = tuple(dep_id for dep_id, dep in deps.items() if dep.status in DEAD)
    if dead:
        return Action(ActionKind.SKIP, deps=dead)
    if not all(satisfied(dep) for dep in deps.values()):
        return NOTHING
    due = record.next_start_after
    if due is not None and now + _EARLY < due:
        return Action(ActionKind.WAIT, at=due)
    return _START


@dataclass(frozen=True, slots=True)
class DesiredDiff:
    """How a new desired state differs from the old one (ids in the new order)."""

    added: tuple[Hashable, ...]
    removed: tuple[Hashable, ...]
    changed: tuple[Hashable, ...]  # the spec differs: restart with a fresh quota
    retuned: tuple[Hashable, ...]  # same spec, other settings: applied from the next exit
    unchanged: tuple[Hashable, ...]


def diff_desired(
    old: Mapping[Any, ReconcileTaskSpec], new: Mapping[Any, ReconcileTaskSpec]
) -> DesiredDiff:
    added: list[Hashable] = []
    changed: list[Hashable] = []
    retuned: list[Hashable] = []
    unchanged: list[Hashable] = []
    for task_id, spec in new.items():
        before = old.get(task_id)
        if before is None:
            added.append(task_id)
        elif before.spec is not spec.spec and before.spec != spec.spec:
            changed.append(task_id)
        elif before != spec:
            retuned.append(task_id)
        else:
            unchanged.append(task_id)
    removed = tuple(task_id for task_id in old if task_id not in new)
    return DesiredDiff(tuple(added), removed, tuple(changed), tuple(retuned), tuple(unchanged))


class CheckpointStore(Protocol):
    """Where a reconciler keeps its desired state and outcomes (0.3.0's protocol).

    ``save_reconciler_state`` is called with ``spec=None`` when a task was
    removed, unless the store also has ``delete_reconciler_state(reconciler_id,
    task_id)``, which is then called instead. Loaded entries whose spec is
    None are ignored, so a removed task never comes back.
    """

    async def save_reconciler_state(
        self,
        reconciler_id: str,
        task_id: Any,
        spec: ReconcileTaskSpec | None,
        state: ReconcileTaskState,
        deps: set[Any],
    ) -> None: ...

    async def load_reconciler_state(
        self, reconciler_id: str
    ) -> tuple[Mapping[Any, Any], Mapping[Any, Any], Mapping[Any, Iterable[Any]]]: ...


def _field(raw: Any, name: str, default: Any = None) -> Any:
    """A field of a loaded record: an object (ours, 0.3.0's) or a mapping (a JSON store)."""
    if isinstance(raw, Mapping):
        return raw.get(name, default)
    return getattr(raw, name, default)


def spec_from_checkpoint(task_id: Hashable, raw: Any) -> ReconcileTaskSpec:
    """A private copy of a loaded spec; also accepts 0.3.0's spec objects and mappings."""
    policy = _field(raw, "restart_policy", RestartPolicy.ON_FAILURE)
    return ReconcileTaskSpec(
        task_id=task_id,
        spec=_field(raw, "spec"),
        restart_policy=RestartPolicy(str(getattr(policy, "value", policy))),
        max_restart_attempts=int(_field(raw, "max_restart_attempts", 5)),
        restart_backoff_base=float(_field(raw, "restart_backoff_base", 3.0)),
        timeout_s=_field(raw, "timeout_s"),
    )


def record_from_checkpoint(
    task_id: Hashable, state: Any, policy: RestartPolicy
) -> SupervisedRecord:
    """The record a restored task starts from (restoring is not a transition).

    Outcomes that are final under ``policy`` are kept (success unless
    "always"; failed or timeout under "no"; blocked; skipped). Anything else
    (running, pending, stopped by a shutdown) becomes pending, so it runs again.
    """
    record = SupervisedRecord(task_id)
    if state is None:
        return record
    try:
        status = SupervisedStatus(str(_field(state, "status")))
    except ValueError:
        status = SupervisedStatus.PENDING
    restarts = int(_field(state, "restart_count", 0))
    record.restart_count = restarts
    record.runs = restarts + (0 if _field(state, "last_started") is None else 1)
    record.last_error = _field(state, "last_error")
    record.output = _field(state, "output")
    record.reason = _field(state, "reason")
    final = (
        status in (SupervisedStatus.BLOCKED, SupervisedStatus.SKIPPED)
        or (status is SupervisedStatus.SUCCESS and policy is not RestartPolicy.ALWAYS)
        or (status in (_S.FAILED, _S.TIMEOUT) and policy is RestartPolicy.NO)
    )
    record.status = status if final else SupervisedStatus.PENDING
    return record
