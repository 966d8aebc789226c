"""0.3.0 and this package run the same programs; every difference is known and explained.

``tests/differential/programs.py`` is run under wave-executor 0.3.0 from PyPI
(in its own virtual environment) and under this package; their observations
are compared path by path. Each difference must match a row of ``KNOWN``,
and each row is a row of ``docs/migrating.md`` (by its id) that says what
0.3.0 did, what we do and why. A new difference fails this test, and so
does a row that no longer matches anything (the difference was fixed: drop
the row). Run it alone with ``./dev pytest tests/test_differential.py``.

The 0.3.0 environment is ``benchmarks/.venv-0.3.0`` (made by
``benchmarks/setup_030_venv.sh``, or by this test when missing), or the
interpreter named by ``WAVE_EXECUTOR_030_PYTHON``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "tests" / "differential" / "programs.py"
MIGRATING = ROOT / "docs" / "migrating.md"
VENV_030 = ROOT / "benchmarks" / ".venv-0.3.0"


@dataclass(frozen=True)
class Known:
    row: str  # the row of docs/migrating.md
    kind: str  # "added" (ours only), "missing" (0.3.0 only) or "changed"
    path: str  # a regular expression matched against "/program/path/..."


KNOWN = [
    Known(
        "M1", "added",
        r"/dag_\w+/(result/)?to_dict"
        r"/(restored|run_id|stopped_reason|succeeded|task_results|total_cancelled)$",
    ),
    Known("M2", "changed", r"/dag_\w+/events/keys/EXECUTION_COMPLETED$"),
    Known("M3", "added", r"/dag_(attempt|total)_timeout/events/keys/TASK_FAILED$"),
    Known("M3", "changed", r"/dag_\w+/events/keys/TASK_FAILED$"),
    Known("M3", "added", r"/dag_total_timeout/events/sequence/after$"),
    Known("M3", "changed", r"/dag_(attempt|total)_timeout/events/sequence/slow$"),
    Known("M4", "added", r"/dag_retries_\w+/events/keys/TASK_RETRYING$"),
    Known("M4", "changed", r"/dag_retries_\w+/events/sequence/x$"),
    Known("M5", "added", r"/dag_attempt_timeout/events/keys/CONCURRENCY_CHANGED$"),
    Known("M5", "changed", r"/dag_attempt_timeout/events/sequence/None$"),
    Known("M6", "changed", r"/dag_events_off/events$"),
    Known("M7", "changed", r"/dag_async_and_sync_callbacks/on_event_returns$"),
    Known("M8", "changed", r"/(dag_bad_graphs/\w+|reconciler_cycle)/(mro|raised)$"),
    Known("M9", "missing", r"/dag_dependencies_none/(raised|mro)$"),
    Known("M9", "added", r"/dag_dependencies_none/\w+$"),
    Known("M10", "changed", r"/dag_failure_skips_dependents/escalation_keys$"),
    Known(
        "M11", "added",
        r"/reconciler_\w+/events/keys"
        r"/(RECONCILER_STARTED|RECONCILER_STOPPED|TASK_RESTART_SCHEDULED|TASK_COMPLETED)$",
    ),
    Known(
        "M11", "changed",
        r"/reconciler_\w+/events/keys"
        r"/(DESIRED_STATE_UPDATED|TASK_STARTED|TASK_STOPPED|TASK_COMPLETED|TASK_FAILED)$",
    ),
    Known("M11", "changed", r"/reconciler_\w+/events/sequence/None$"),
    Known(
        "M12", "changed",
        r"/reconciler_restarts_on_failure/(calls/a|status/\w+|status"
        r"/task_states/a|events/sequence/a)$",
    ),
    Known("M13", "changed", r"/reconciler_removed_task_stops/events/sequence/b$"),
    Known("M14", "changed", r"/meta_\w+/events/keys/(NODE_\w+|META_EXECUTION_\w+)$"),
    Known("M15", "added", r"/meta_\w+/to_dict/(critical_path|succeeded)$"),
    Known(
        "M15", "added",
        r"/meta_\w+/to_dict/nodes/\w+"
        r"/(dag_result|nested|node_type|task_outputs|task_results)$",
    ),
    Known(
        "M16", "changed",
        r"/meta_failure_skips_downstream/to_dict/nodes/n2"
        r"/(started_at|completed_at)$",
    ),
]  # fmt: skip


def _python_030() -> str:
    named = os.environ.get("WAVE_EXECUTOR_030_PYTHON")
    if named:
        return named
    python = VENV_030 / "bin" / "python"
    if not python.exists():
        made = subprocess.run(
            [sys.executable, "-m", "venv", str(VENV_030)], capture_output=True, text=True
        )
        if made.returncode == 0:
            made = subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "wave-executor==0.3.0"],
                capture_output=True,
                text=True,
            )
        if made.returncode != 0:
            if os.environ.get("CI"):
                pytest.fail(f"cannot install wave-executor 0.3.0: {made.stderr[-500:]}")
            pytest.skip("wave-executor 0.3.0 cannot be installed here (no package index?)")
    return str(python)


def _observe(python: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [python, str(PROGRAMS)], capture_output=True, text=True, env=env, timeout=300,
        cwd=str(PROGRAMS.parent),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    observed: dict[str, Any] = json.loads(done.stdout)
    return observed


def differences(old: Any, new: Any, path: str = "") -> list[tuple[str, str, Any, Any]]:
    """(kind, path, 0.3.0's value, ours) for every place the observations differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[tuple[str, str, Any, Any]] = []
        for key in sorted(set(old) | set(new)):
            sub = f"{path}/{key}"
            if key not in old:
                found.append(("added", sub, None, new[key]))
            elif key not in new:
                found.append(("missing", sub, old[key], None))
            else:
                found.extend(differences(old[key], new[key], sub))
        return found
    return [] if old == new else [("changed", path, old, new)]


@pytest.fixture(scope="module")
def observations() -> tuple[dict[str, Any], dict[str, Any]]:
    return _observe(_python_030()), _observe(sys.executable)


def test_every_program_runs_under_both(observations: tuple[dict[str, Any], Any]) -> None:
    old, new = observations
    assert set(old) == set(new)
    crashed = {n: o for n, o in new.items() if isinstance(o, dict) and "program_raised" in o}
    assert not crashed


def test_every_difference_from_0_3_0_is_known(
    observations: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    old, new = observations
    unexplained = [
        (kind, path, a, b)
        for kind, path, a, b in differences(old, new)
        if not any(k.kind == kind and re.fullmatch(k.path, path) for k in KNOWN)
    ]
    assert not unexplained, "\n".join(
        f"{k} {p}: 0.3.0={a!r} ours={b!r}" for k, p, a, b in unexplained
    )


def test_every_known_difference_still_happens(
    observations: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    old, new = observations
    found = differences(old, new)
    stale = [
        k
        for k in KNOWN
        if not any(k.kind == kind and re.fullmatch(k.path, p) for kind, p, _, _ in found)
    ]
    assert not stale


def test_every_known_row_is_in_the_migration_guide() -> None:
    text = MIGRATING.read_text()
    for row in {k.row for k in KNOWN}:
        assert re.search(rf"^\| {row} \|", text, re.M), f"row {row} is missing from {MIGRATING}"
