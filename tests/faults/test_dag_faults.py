"""Every kind of exception, raised at every call into user code of a DAG run, at every k.

See ``tests/faults/dag_scenario.py`` for the scenario and its sites, and
``docs/robustness.md`` for the outcomes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.faults.dag_scenario import SITES, DagFaultRun, fresh_store
from tests.faults.harness import KINDS, Faults, tally
from wave_executor.store import SQLiteStore

#: Sites that are only reached when the run resumes stored successes.
RESUMING = ("serializer.loads", "store.load_successes", "store.run_tasks")


def fault_run(
    store: SQLiteStore, db: Path, faults: Faults, run_id: str, prime: bool
) -> DagFaultRun:
    serializer = store.serializer
    assert hasattr(serializer, "faults")
    if prime:  # a first execution that records successes to resume from
        DagFaultRun(db, Faults(), run_id, store).run()
    serializer.faults = faults
    try:
        run = DagFaultRun(db, faults, run_id, store)
        run.run()
    finally:
        serializer.faults = Faults()
    return run


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("site", SITES)
def test_a_fault_at_every_call_of_a_site(tmp_path: Path, site: str, kind: str) -> None:
    db = tmp_path / "runs.db"
    store, _ = fresh_store(db)
    prime = site in RESUMING
    try:
        clean = Faults()
        run = fault_run(store, db, clean, "clean", prime)
        assert run.raised is None and run.result is not None
        calls = clean.calls[site]
        assert calls > 0, f"the scenario never calls {site}"
        for k in range(1, calls + 1):
            faults = Faults(site, k, kind)
            run = fault_run(store, db, faults, f"run-{k}", prime)
            assert faults.fired is not None, f"{site} was not called {k} times"
            tally("dag", site, kind, run.outcome)
            run.check_caller(site)
            run.check_store(site)
    finally:
        asyncio.run(store.close())
