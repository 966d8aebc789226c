"""The state diagrams of docs/concepts/statuses.md are the transition tables.

Each diagram is a mermaid block that starts with ``%% generated from <table>``;
it must be exactly what ``render`` makes of that table, so a change to a table
that the page does not follow fails here. To rewrite the diagrams after such a
change: ``python -m tests.test_docs_diagrams``.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from wave_executor._core import reconcile, status

PAGE = pathlib.Path(__file__).resolve().parent.parent / "docs" / "concepts" / "statuses.md"

_T = status.TaskStatus
_R = reconcile.SupervisedStatus

# What makes each move, for the reader. The tables decide which moves exist;
# a label for a move the table lacks (or a move without a label) fails the test.
TASK_LABELS: dict[tuple[StrEnum, StrEnum], str] = {
    (_T.PENDING, _T.READY): "every dependency succeeded",
    (_T.PENDING, _T.SKIPPED): "a dependency did not succeed",
    (_T.PENDING, _T.CANCELLED): "run stopped",
    (_T.PENDING, _T.TIMEOUT): "total timeout",
    (_T.READY, _T.RUNNING): "took a slot",
    (_T.READY, _T.CANCELLED): "run stopped",
    (_T.READY, _T.TIMEOUT): "total timeout",
    (_T.RUNNING, _T.SUCCESS): "body returned",
    (_T.RUNNING, _T.FAILED): "last attempt raised",
    (_T.RUNNING, _T.TIMEOUT): "last attempt or run timed out",
    (_T.RUNNING, _T.BACKOFF): "attempt failed, a retry is left",
    (_T.RUNNING, _T.CANCELLED): "run stopped",
    (_T.BACKOFF, _T.READY): "retry delay over",
    (_T.BACKOFF, _T.CANCELLED): "run stopped",
    (_T.BACKOFF, _T.TIMEOUT): "total timeout",
}

SUPERVISED_LABELS: dict[tuple[StrEnum, StrEnum], str] = {
    (_R.PENDING, _R.RUNNING): "dependencies satisfied, a slot free",
    (_R.PENDING, _R.SKIPPED): "a dependency is dead",
    (_R.PENDING, _R.STOPPED): "removed, or stop()",
    (_R.RUNNING, _R.SUCCESS): "run returned",
    (_R.RUNNING, _R.FAILED): "run raised",
    (_R.RUNNING, _R.TIMEOUT): "ran past its timeout",
    (_R.RUNNING, _R.STOPPED): "removed, or stop()",
    (_R.RUNNING, _R.PENDING): "cancelled to run again",
    (_R.SUCCESS, _R.RUNNING): "always: restart",
    (_R.SUCCESS, _R.PENDING): "spec changed or upstream restarted",
    (_R.SUCCESS, _R.SKIPPED): "always: a dependency died",
    (_R.SUCCESS, _R.STOPPED): "removed, or stop()",
    (_R.FAILED, _R.PENDING): "restart due",
    (_R.FAILED, _R.BLOCKED): "restart limit hit",
    (_R.FAILED, _R.STOPPED): "removed, or stop()",
    (_R.TIMEOUT, _R.PENDING): "restart due",
    (_R.TIMEOUT, _R.BLOCKED): "restart limit hit",
    (_R.TIMEOUT, _R.STOPPED): "removed, or stop()",
    (_R.BLOCKED, _R.PENDING): "an update revives it",
    (_R.BLOCKED, _R.STOPPED): "removed, or stop()",
    (_R.SKIPPED, _R.PENDING): "the dependency revived",
    (_R.SKIPPED, _R.STOPPED): "removed, or stop()",
    (_R.STOPPED, _R.PENDING): "added again, or start()",
}

Table = Mapping[Any, frozenset[Any]]
DIAGRAMS: dict[str, tuple[Table, Mapping[tuple[Any, Any], str]]] = {
    "wave_executor._core.status": (status._ALLOWED, TASK_LABELS),
    "wave_executor._core.reconcile": (reconcile._ALLOWED, SUPERVISED_LABELS),
}


def render(source: str) -> str:
    """The mermaid block (without its fences) for the table of ``source``."""
    table, labels = DIAGRAMS[source]
    lines = [f"%% generated from {source} (tests/test_docs_diagrams.py)", "stateDiagram-v2"]
    first = next(iter(table))
    lines.append(f"    [*] --> {first.value}")
    for src, targets in table.items():
        order: list[Any] = list(src.__class__.__members__.values())
        for dst in sorted(targets, key=order.index):
            lines.append(f"    {src.value} --> {dst.value}: {labels[(src, dst)]}")
        if not targets:  # final: nothing leaves it
            lines.append(f"    {src.value} --> [*]")
    return "\n".join(lines) + "\n"


BLOCK = re.compile(r"```mermaid\n(%% generated from (\S+) [^\n]*\n.*?)```", re.DOTALL)


def _blocks(text: str) -> dict[str, str]:
    return {m.group(2): m.group(1) for m in BLOCK.finditer(text)}


def test_labels_name_exactly_the_moves_of_each_table() -> None:
    for table, labels in DIAGRAMS.values():
        moves = {(src, dst) for src, targets in table.items() for dst in targets}
        assert set(labels) == moves


def test_each_diagram_is_its_table() -> None:
    found = _blocks(PAGE.read_text())
    assert set(found) == set(DIAGRAMS)
    for source, block in found.items():
        assert block == render(source), (
            f"the diagram of {source} in {PAGE.name} is out of date; "
            "run `python -m tests.test_docs_diagrams` to regenerate it"
        )


def rewrite() -> None:
    """Replace every generated diagram of the page with a fresh one."""
    text = PAGE.read_text()
    PAGE.write_text(BLOCK.sub(lambda m: f"```mermaid\n{render(m.group(2))}```", text))


if __name__ == "__main__":
    rewrite()
