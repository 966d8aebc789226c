"""docs/reference/config.md's table of ``WaveConfig`` fields matches the dataclass:
the same fields in the same order, each with its type and default."""

from __future__ import annotations

import dataclasses
import enum
import pathlib
import re

from wave_executor import WaveConfig

PAGE = pathlib.Path(__file__).resolve().parent.parent / "docs" / "reference" / "config.md"
ROW = re.compile(r"^\| `(\w+)` \| `(.+?)` \| `(.+?)` \| (.+) \|$")


def rows() -> list[tuple[str, str, str, str]]:
    found = []
    for line in PAGE.read_text().splitlines():
        match = ROW.match(line)
        if match:
            name, type_, default, meaning = match.groups()
            found.append((name, type_.replace("\\|", "|"), default, meaning))
    return found


def shown(value: object) -> str:
    """A default as the table writes it: an enum member by name, anything else by repr."""
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    return repr(value)


def test_the_table_lists_every_field_with_its_type_and_default() -> None:
    expected = []
    for f in dataclasses.fields(WaveConfig):
        default: object = f.default
        if default is dataclasses.MISSING:
            default = f.default_factory()  # type: ignore[operator]
        expected.append((f.name, str(f.type), shown(default)))
    assert [row[:3] for row in rows()] == expected


def test_every_row_says_what_the_field_does() -> None:
    assert all(len(meaning) > 20 for *_, meaning in rows())
