"""Prints the fault tally after a session that ran the campaign, and holds it to its size.

``./dev faults`` runs the campaign alone. When every test of the campaign
ran, fewer than ``MIN_FAULTS`` faults injected fails the session: the
campaign must not shrink unnoticed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.faults.harness import TALLY

MIN_FAULTS = 1000
HERE = Path(__file__).parent
#: The campaign's modules (the others here test single defects).
CAMPAIGN = frozenset(p.name for p in HERE.glob("test_*_faults.py"))
_collected: set[str] = set()
_outcomes: Counter[str] = Counter()


def _campaign_module(nodeid: str) -> str | None:
    name = nodeid.split("::")[0].rsplit("/", 1)[-1]
    return name if name in CAMPAIGN and f"{HERE.name}/" in nodeid else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = _campaign_module(item.nodeid)
        if module is not None:
            _collected.add(module)
            _outcomes["collected"] += 1


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed and _campaign_module(report.nodeid):
        _outcomes["passed"] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fault injection")
    by_site: Counter[tuple[str, str]] = Counter()
    by_outcome: Counter[str] = Counter()
    kinds = sorted({kind for _, _, kind, _ in TALLY})
    for (family, site, kind, outcome), n in TALLY.items():
        by_site[f"{family}: {site}", kind] += n
        by_outcome[outcome] += n
    sites = sorted({s for s, _ in by_site})
    width = max(len(s) for s in sites)
    col = max(len(k) for k in kinds)
    write(f"{'site':<{width}} " + " ".join(f"{k:>{col}}" for k in kinds) + f" {'total':>7}")
    for s in sites:
        row = [by_site[s, k] for k in kinds]
        write(f"{s:<{width}} " + " ".join(f"{n:>{col}}" for n in row) + f" {sum(row):>7}")
    write("")
    for outcome, n in by_outcome.most_common():
        write(f"{n:>7}  {outcome}")
    write(f"{sum(TALLY.values()):>7}  faults injected in all (at least {MIN_FAULTS} required)")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The whole campaign ran and passed: it must have injected ``MIN_FAULTS`` at least."""
    whole = _collected == CAMPAIGN and _outcomes["passed"] == _outcomes["collected"]
    total = sum(TALLY.values())
    if whole and total < MIN_FAULTS:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nthe fault campaign injected {total} faults, fewer than {MIN_FAULTS}")
