"""The Python examples of docs/reconciler.md run, and their assertions hold."""

from __future__ import annotations

import pathlib
import re

import pytest

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "reconciler.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
RUNNABLE = [b for b in BLOCKS if "asyncio.run(" in b]


def test_the_doc_has_a_runnable_example() -> None:
    assert RUNNABLE


@pytest.mark.parametrize("index", range(len(RUNNABLE)))
def test_doc_example(index: int) -> None:
    code = compile(RUNNABLE[index], f"docs/reconciler.md example {index + 1}", "exec")
    exec(code, {"__name__": f"reconciler_doc_example_{index + 1}"})
