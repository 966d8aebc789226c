"""Feeding a ``RunStore`` with one execution, and what a resumed run reuses.

The run talks to the store only through the ``RunStore`` protocol of
``_core.store_protocol``: ``record_*`` calls are synchronous and buffer
(the store commits batches on its own thread), so recording costs the
scheduler a few microseconds per task and never blocks the loop.

A store is user code too: a ``record_*`` call that raises must not take the
run down. A lost attempt record is logged; an outcome the store refuses
fails a success (``outcome`` raises) and is logged for any other outcome.
A ``CancelledError`` from these synchronous calls is a failure like any
other (nobody cancelled them), never a cancellation of the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from wave_executor._core.graph import Graph
from wave_executor._core.logs import get_logger
from wave_executor._core.resume import fingerprint, reusable_tasks, stored_keys, task_key
from wave_executor._core.run_clock import RunClock
from wave_executor._core.store_protocol import AttemptRecord, RunStore, TaskRecord

__all__ = ["RunRecorder", "unpack_parent_output"]

log = get_logger("store")


def unpack_parent_output(stored: Any) -> dict[Any, Any] | None:
    """A fan-out parent's stored ``[[key, output], ...]`` as a dict; None if not that shape."""
    if not isinstance(stored, list):
        return None
    out: dict[Any, Any] = {}
    for pair in stored:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            return None
        key, value = pair
        try:
            out[key] = value
        except TypeError:
            return None
    return out


class RunRecorder:
    """One execution of ``run_id`` in ``store``: claim, restore, record, release."""

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        execution_id: str,
        graph: Graph,
        specs: Mapping[Any, Any],
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.execution_id = execution_id
        self._keys = [task_key(task_id) for task_id in graph.ids]  # rejects bad ids early
        self._graph = graph
        self._specs = specs
        self._fingerprints: list[str | None] = []
        self._stored: Mapping[str, tuple[str | None, Any]] = {}
        self._clock = RunClock(0.0, 0.0)

    def set_clock(self, clock: RunClock) -> None:
        """Records carry wall-clock times: the run's monotonic times are mapped here."""
        self._clock = clock

    def _wall(self, t: float) -> float:
        return self._clock.seconds(t)

    async def begin(self, fan_out_parents: frozenset[int] = frozenset()) -> dict[int, Any]:
        """Claim the run; return the reusable tasks (index -> stored output).

        A fan-out parent's output is stored as ``[[key, output], ...]`` (so
        that a JSON store keeps int keys) and comes back as a dict; a stored
        row of another shape is not reused.

        A ``begin_run`` that raises has not claimed the run (the store's
        contract); anything that fails or is cancelled after it gives the run
        back ("interrupted") before it propagates, so that the run is not
        held until the store is closed.
        """
        await self.store.begin_run(self.run_id, self.execution_id, total_tasks=len(self._graph))
        try:
            stored = await self.store.load_successes(self.run_id)
            ids = self._graph.ids
            self._fingerprints = [fingerprint(self._specs[task_id]) for task_id in ids]
            if not stored:
                return {}
            self._stored = stored
            keys = stored_keys(ids, self._fingerprints, stored)
            parents: dict[int, dict[Any, Any]] = {}
            for i in fan_out_parents:
                key = keys[i]
                if key is not None and (output := unpack_parent_output(stored[key][1])) is not None:
                    parents[i] = output
                else:
                    keys[i] = None  # not reusable (nor is anything downstream)
            reuse = reusable_tasks(self._graph, self._fingerprints, stored, keys)
            return {
                i: parents[i] if i in parents else stored[key][1]
                for i in reuse
                if (key := keys[i]) is not None
            }
        except BaseException:
            try:
                await self.end("interrupted")
            except Exception:
                log.exception("run %r: could not release it after a failed start", self.run_id)
            raise

    def keys_for(self, ids: list[Any]) -> list[str]:
        """The store keys of fan-out children; raises ``TypeError``/``ValueError`` for
        an id a store cannot keep (an item key that is neither a string nor a number)."""
        return [task_key(task_id) for task_id in ids]

    def add_children(self, keys: list[str], items: list[Any]) -> dict[int, Any]:
        """Record fan-out children under ``keys``; return the stored successes they
        reuse (offset among them -> output): same key and same item fingerprint."""
        prints = [fingerprint(item) for item in items]
        self._keys.extend(keys)
        self._fingerprints.extend(prints)
        stored = self._stored
        reuse: dict[int, Any] = {}
        if stored:
            for k, (key, fp) in enumerate(zip(keys, prints, strict=True)):
                row = stored.get(key)
                if row is not None and fp is not None and row[0] == fp:
                    reuse[k] = row[1]
        return reuse

    def attempt(
        self, i: int, number: int, status: str, error: str | None, start: float, end: float
    ) -> None:
        """Record one attempt; a store that fails to is logged, and the run goes on."""
        try:
            self.store.record_attempt(
                self.run_id,
                AttemptRecord(
                    self._keys[i], number, status, error, self._wall(start), self._wall(end)
                ),
            )
        except (Exception, asyncio.CancelledError):
            log.exception(
                "run %r: the store failed to record attempt %d of task %r",
                self.run_id, number, self._graph.ids[i],
            )  # fmt: skip

    def outcome(
        self,
        i: int,
        status: str,
        output: Any,
        error: str | None,
        start: float,
        end: float,
        retries: int,
    ) -> None:
        """Record a task's outcome; raises if the store cannot serialize ``output``
        (or fails otherwise: a ``CancelledError`` comes out as a ``RuntimeError``)."""
        record = TaskRecord(
            self._keys[i], status, self._fingerprints[i], output, error,
            self._wall(start), self._wall(end), retries,
        )  # fmt: skip
        try:
            self.store.record_outcome(self.run_id, record)
        except asyncio.CancelledError as exc:
            raise RuntimeError(
                "the store's record_outcome raised CancelledError: the outcome is not recorded"
            ) from exc

    def unsuccessful(
        self,
        i: int,
        status: str,
        output: Any,
        error: str | None,
        start: float,
        end: float,
        retries: int,
    ) -> None:
        """Record an outcome other than a success, without ``output`` if the store
        cannot keep it; a store that fails even so is logged, and the run goes on."""
        try:
            try:
                self.outcome(i, status, output, error, start, end, retries)
            except Exception:
                self.outcome(i, status, None, error, start, end, retries)
        except Exception:
            log.exception(
                "run %r: the store failed to record the outcome of task %r",
                self.run_id, self._graph.ids[i],
            )  # fmt: skip

    def parent_outcome(
        self, i: int, status: str, output: Mapping[Any, Any] | None, error: str | None,
        start: float, end: float, retries: int,
    ) -> None:  # fmt: skip
        """Record a fan-out parent's outcome, its output as ``[[key, output], ...]``."""
        stored = None if output is None else [[k, v] for k, v in output.items()]
        self.outcome(i, status, stored, error, start, end, retries)

    async def end(self, status: str) -> None:
        await self.store.end_run(self.run_id, self.execution_id, status)
