"""Every kind of exception at every call into user code of a reconciler's life, at every k."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.faults.harness import KINDS, Faults, tally
from tests.faults.reconciler_scenario import SITES, ReconcilerFaultRun, open_store


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("site", SITES)
def test_a_fault_at_every_call_of_a_reconciler_site(tmp_path: Path, site: str, kind: str) -> None:
    store = open_store(tmp_path / "checkpoints.db")
    try:
        clean = Faults()
        run = ReconcilerFaultRun(store, clean, "clean")
        run.run()
        assert run.raised is None, run.raised
        calls = clean.calls[site]
        assert calls > 0, f"the scenario never calls {site}"
        for k in range(1, calls + 1):
            faults = Faults(site, k, kind)
            run = ReconcilerFaultRun(store, faults, f"r{k}")
            run.run()
            tally("reconciler", site, kind, run.outcome)
            if faults.fired is None:  # checkpoint writes coalesce: fewer calls this time
                assert site.startswith("store."), f"{site} was not called {k} times"
                continue
            run.check(site)
            run.check_store()
    finally:
        asyncio.run(store.close())
