"""examples/flow_report.py runs, and docs/flow.md shows it as it is."""

from __future__ import annotations

import asyncio
import pathlib
import runpy

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "flow_report.py"
MAIN_GUARD = 'if __name__ == "__main__":\n    asyncio.run(main())\n'


def test_the_example_runs_and_prints_its_report(capsys: pytest.CaptureFixture[str]) -> None:
    namespace = runpy.run_path(str(EXAMPLE), run_name="flow_report_example")
    asyncio.run(namespace["main"]())
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "4 pages, 32 words"
    assert printed[-1].startswith("skipped - skipped: dependencies did not succeed")
    assert "(root failure: 'fetch')" in printed[-1]


def test_the_docs_show_the_example_verbatim() -> None:
    code = EXAMPLE.read_text()
    assert code.endswith(MAIN_GUARD)
    body = code[code.index("import asyncio") :]
    shown = body.replace(MAIN_GUARD, "asyncio.run(main())\n")
    assert "```python\n" + shown + "```" in (ROOT / "docs" / "flow.md").read_text()
