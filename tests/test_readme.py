"""Every Python example in the README runs, and its assertions hold."""

from __future__ import annotations

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example(index: int) -> None:
    code = compile(BLOCKS[index], f"README.md example {index + 1}", "exec")
    exec(code, {"__name__": f"readme_example_{index + 1}"})


def test_readme_gives_the_two_commands_ci_runs() -> None:
    text = README.read_text()
    assert "./dev demo" in text and "./dev test" in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert "./dev test" in ci


def test_the_demo_runs() -> None:
    import subprocess
    import sys

    demo = README.parent / "examples" / "demo.py"
    out = subprocess.run(
        [sys.executable, str(demo), "0.02"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "5/5 tasks succeeded" in out
    assert "critical path: A -> C" in out
    assert "start E" in out


def test_the_readme_is_a_pitch_not_a_manual() -> None:
    """The reference material lives in docs/; the README stays one screen or so."""
    assert len(README.read_text().splitlines()) <= 200
