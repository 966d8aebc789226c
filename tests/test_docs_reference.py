"""The API reference (docs/reference/*.md) has an entry for every public name.

An entry is a mkdocstrings directive, ``::: wave_executor.DAGExecutor``; a
name counts as covered when a directive names the same object under any of
its import paths (``wave_executor.reconciler.WaveReconciler`` covers
``wave_executor.WaveReconciler``).
"""

from __future__ import annotations

import importlib
import importlib.util
import pathlib
import re
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"
DIRECTIVE = re.compile(r"^::: ([\w.]+)\s*$", re.MULTILINE)
PUBLIC_MODULES = [
    "wave_executor",
    "wave_executor.config",
    "wave_executor.dag",
    "wave_executor.errors",
    "wave_executor.events",
    "wave_executor.exceptions",
    "wave_executor.levels",
    "wave_executor.meta",
    "wave_executor.progress",
    "wave_executor.reconciler",
    "wave_executor.store",
    "wave_executor.testing",
]
#: Public modules that need an optional dependency: checked when it is installed.
OPTIONAL_MODULES = {
    "wave_executor.otel": "opentelemetry.instrumentation",
    "wave_executor.progress.rich": "rich",
    "wave_executor.progress.tqdm": "tqdm",
}


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is absent
        return False


PUBLIC_MODULES += [m for m, dep in OPTIONAL_MODULES.items() if installed(dep)]


def resolve(path: str) -> Any:
    """The object a dotted path names: a module, or an attribute of one."""
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError:
        module, _, name = path.rpartition(".")
        return getattr(importlib.import_module(module), name)


def directives() -> list[str]:
    """Every directive, but those of an optional module whose dependency is absent."""
    absent = tuple(m for m in OPTIONAL_MODULES if m not in PUBLIC_MODULES)
    found = [m for page in REFERENCE.glob("*.md") for m in DIRECTIVE.findall(page.read_text())]
    return [m for m in found if not m.startswith(absent)] if absent else found


def test_every_directive_names_something_public() -> None:
    for path in directives():
        assert not any(part.startswith("_") for part in path.split(".")), path
        resolve(path)


def test_every_public_name_has_an_entry() -> None:
    documented = {id(resolve(path)) for path in directives()}
    missing = [
        f"{module}.{name}"
        for module in PUBLIC_MODULES
        for name in importlib.import_module(module).__all__
        if name != "__version__"
        and id(getattr(importlib.import_module(module), name)) not in documented
    ]
    assert not missing, f"add these to docs/reference/: {missing}"


def test_every_public_module_is_named() -> None:
    text = "".join(page.read_text() for page in REFERENCE.glob("*.md"))
    assert [module for module in PUBLIC_MODULES if f"`{module}" not in text] == []
