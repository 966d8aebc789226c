"""No file of the project keeps a merge-conflict marker (Markdown would render it)."""

from __future__ import annotations

import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
MARKERS = ("<" * 7 + " ", "=" * 7 + "\n", ">" * 7 + " ")


def test_no_tracked_file_has_a_conflict_marker() -> None:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    found = []
    for name in listed:
        path = ROOT / name
        if path.suffix not in {".md", ".py", ".toml", ".yml", ".yaml", ".cfg", ".txt", ""}:
            continue
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(True), 1):
            if line.startswith(MARKERS):
                found.append(f"{name}:{number}")
    assert not found, f"merge-conflict markers in {found}"
