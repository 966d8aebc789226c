"""Every Python example of the documentation site runs, and its assertions hold.

Each ```python block of docs/**/*.md is executed on its own, in a fresh
namespace and a temporary working directory, as tests/test_readme.py does
for the README. A block that cannot run alone (a signature, an excerpt that
needs names defined elsewhere) is marked with ``<!-- fragment -->`` on the
line before its opening fence; fragments are neither run nor compiled.
"""

from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FRAGMENT = "<!-- fragment -->"
FENCE = re.compile(r"^```python[ \t]*$")
#: Optional dependencies some examples need: without them those examples are skipped.
OPTIONAL = ("opentelemetry", "prometheus_client")


def blocks(path: pathlib.Path) -> list[tuple[int, str, bool]]:
    """(line of the opening fence, code, is a fragment) for each python block."""
    lines = path.read_text().splitlines()
    found: list[tuple[int, str, bool]] = []
    i = 0
    while i < len(lines):
        if FENCE.match(lines[i]):
            start = i
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            fragment = j >= 0 and lines[j].strip() == FRAGMENT
            i += 1
            body: list[str] = []
            while i < len(lines) and lines[i].rstrip() != "```":
                body.append(lines[i])
                i += 1
            found.append((start + 1, "\n".join(body) + "\n", fragment))
        i += 1
    return found


EXAMPLES = [
    pytest.param(code, id=f"{path.relative_to(DOCS)}:{line}")
    for path in sorted(DOCS.rglob("*.md"))
    for line, code, fragment in blocks(path)
    if not fragment
]


def test_the_docs_have_examples() -> None:
    assert len(EXAMPLES) >= 10


def test_a_fragment_marker_is_recognised() -> None:
    page = "text\n\n<!-- fragment -->\n```python\nundefined_name\n```\n\n```python\nx = 1\n```\n"
    path = DOCS.parent / ".pytest_cache" / "fragment-check.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text(page)
    assert blocks(path) == [(4, "undefined_name\n", True), (8, "x = 1\n", False)]


@pytest.mark.parametrize("code", EXAMPLES)
def test_docs_example(code: str, request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> None:
    name = request.node.callspec.id
    compiled = compile(code, f"docs/{name}", "exec")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)  # examples may create files (a runs.db)
        try:
            exec(compiled, {"__name__": "docs_example_" + re.sub(r"\W", "_", name)})
        except ModuleNotFoundError as exc:
            if exc.name is None or not exc.name.startswith(OPTIONAL):
                raise
            pytest.skip(f"needs {exc.name} (an optional dependency; the dev extra has it)")
