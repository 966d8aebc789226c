"""Event names and stop reasons are one closed set each, typed and documented in one table."""

from __future__ import annotations

import asyncio
import pathlib
import re
from datetime import UTC, datetime
from typing import Any

from tests.helpers import Recorder
from wave_executor import (
    DAGExecutor,
    EventType,
    LevelExecutor,
    MetaDAG,
    MetaDAGNodeSpec,
    StopReason,
    WaveConfig,
    WaveReconciler,
)
from wave_executor.testing import run_virtual

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "events.md"


async def flaky(task_id: Any, spec: Any) -> str:
    if task_id == "bad":
        raise RuntimeError("boom")
    await asyncio.sleep(0.01)
    return f"out-{task_id}"


def test_every_event_of_a_dag_run_is_an_event_type_member() -> None:
    rec = Recorder()

    async def main() -> None:
        ex = DAGExecutor(WaveConfig(max_retries=1, retry_backoff_factor=1.0))
        ex.on_event(rec)
        await ex.execute({"a": 1, "bad": 2, "c": 3}, {"c": ["bad"]}, flaky)

    run_virtual(main())
    kinds = [t for t, _ in rec.events]
    assert all(type(t) is EventType for t in kinds)
    assert {"TASK_RETRYING", "TASK_ESCALATED", "TASK_SKIPPED"} <= set(kinds)


def test_level_mode_meta_and_reconciler_events_are_event_type_members() -> None:
    rec = Recorder()

    async def main() -> None:
        levels = LevelExecutor()
        levels.on_event(rec)
        await levels.execute({"a": 1, "b": 2}, {"b": ["a"]}, flaky)
        meta = MetaDAG()
        meta.on_event(rec)
        meta.add_node(MetaDAGNodeSpec("n1", {"x": 1}, flaky))
        meta.add_node(MetaDAGNodeSpec("n2", {"y": 1, "z": 2}, flaky), depends_on=["n1"])
        await meta.execute()
        reconciler = WaveReconciler(flaky)
        reconciler.on_event(rec)
        await reconciler.start()
        await reconciler.update({"r": 1})
        await reconciler.wait_until_complete(timeout=5)
        await reconciler.stop()

    run_virtual(main())
    kinds = {t for t, _ in rec.events}
    assert all(isinstance(t, EventType) for t in kinds)
    assert {"WAVE_STARTED", "NODE_COMPLETED", "RECONCILER_STARTED"} <= kinds


def test_a_stop_reason_is_a_stop_reason_member_and_still_equals_its_string() -> None:
    async def slow(task_id: Any, spec: Any) -> None:
        await asyncio.sleep(10)

    async def main() -> Any:
        cfg = WaveConfig(total_execution_timeout=1.0)
        return await DAGExecutor(cfg).execute({"a": 1}, None, slow)

    result, _ = run_virtual(main())
    assert result.stopped_reason == "total_timeout"
    assert result.stopped_reason is StopReason.TOTAL_TIMEOUT
    assert result.to_dict()["stopped_reason"] == "total_timeout"


def test_event_timestamps_follow_the_virtual_clock() -> None:
    rec = Recorder()

    async def sleepy(task_id: Any, spec: Any) -> None:
        await asyncio.sleep(3600)

    async def main() -> None:
        ex = DAGExecutor(WaveConfig(default_task_timeout=7200))
        ex.on_event(rec)
        await ex.execute({"a": 1}, None, sleepy)

    run_virtual(main())
    stamps = [datetime.fromisoformat(e["timestamp"]) for _, e in rec.events]
    assert (stamps[-1] - stamps[0]).total_seconds() == 3600.0  # an hour of virtual time
    assert all(s.tzinfo == UTC for s in stamps)


def test_the_events_doc_has_one_row_per_event_type() -> None:
    text = DOCS.read_text()
    table = text[text.index("## Every event and its payload") : text.index("## Stop reasons")]
    documented = set(re.findall(r"`([A-Z_]+)`", "\n".join(
        line.split("|")[1] for line in table.splitlines() if line.startswith("| `")
    )))  # fmt: skip
    assert documented == {member.value for member in EventType}
    reasons = text[text.index("## Stop reasons") :]
    assert all(f'`"{member.value}"`' in reasons for member in StopReason)
