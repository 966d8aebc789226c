"""One calling convention for the three implementations under comparison.

* ``ours``  - ``wave_executor`` as importable by the running interpreter (the repo's package);
* ``0.3.0`` - ``wave_executor`` 0.3.0 from PyPI, importable only inside ``.venv-0.3.0``;
* ``floor`` - :func:`floor.run_floor`, the minimal asyncio scheduler in this folder.

Both libraries are imported lazily and only for their own ``--impl``, so that a process that
measures the floor never pays for importing a library, and 0.3.0's interpreter never
tries to import the repo's code (nor the other way round: see :func:`load_library`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from floor import run_floor

IMPLS = ("ours", "0.3.0", "floor")
V030_VERSION = "0.3.0"
BENCH_DIR = Path(__file__).resolve().parent
V030_PYTHON = BENCH_DIR / ".venv-0.3.0" / "bin" / "python"

Body = Callable[[str, Any], Awaitable[Any]]
Runner = Callable[[Mapping[str, Any], Mapping[str, Any], Body], Awaitable[Any]]


def interpreter_for(impl: str, ours_python: str = sys.executable) -> str:
    """Interpreter that must run ``impl``: 0.3.0's own venv, else the caller's choice."""
    if impl == "0.3.0":
        if not V030_PYTHON.exists():
            raise FileNotFoundError(
                f"{V030_PYTHON} is missing; run benchmarks/setup_030_venv.sh first"
            )
        return str(V030_PYTHON)
    return ours_python


def load_library(impl: str) -> ModuleType:
    """Import ``wave_executor`` and check that it is the one ``impl`` names.

    A wrong interpreter would silently benchmark the other library, so this refuses it.
    """
    module = importlib.import_module("wave_executor")
    version = library_version(module)
    if impl == "0.3.0" and version != V030_VERSION:
        raise RuntimeError(f"--impl 0.3.0 expects wave-executor {V030_VERSION}, got {version}")
    if impl == "ours" and version == V030_VERSION:
        raise RuntimeError(f"--impl ours imported the PyPI {V030_VERSION} release instead")
    return module


def library_version(module: ModuleType) -> str:
    """``__version__`` if the package has one, else its installed distribution's version."""
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    from importlib import metadata

    try:
        return metadata.version("wave-executor")
    except metadata.PackageNotFoundError:
        return "unknown"


def source_hash(directory: str) -> str:
    """Short hash of the ``.py`` files under ``directory``.

    The library under test changes while it is being written; printing this with every
    result lets a report refuse to mix runs of different versions of the code.
    """
    digest = hashlib.sha256()
    for path in sorted(Path(directory).rglob("*.py")):
        digest.update(str(path.relative_to(directory)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def make_config(module: ModuleType, overrides: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """Build a ``WaveConfig`` from ``overrides``, dropping keys this version does not know.

    Returns the config and the dropped keys, which the caller reports instead of hiding.
    """
    config_cls = module.WaveConfig
    if dataclasses.is_dataclass(config_cls):
        known = {f.name for f in dataclasses.fields(config_cls)}
    else:
        known = set(inspect.signature(config_cls).parameters)
    kept = {k: v for k, v in overrides.items() if k in known}
    return config_cls(**kept), sorted(set(overrides) - known)


def accepts_priority_costs(module: ModuleType) -> bool:
    """Whether ``DAGExecutor.execute`` takes the ``priority_costs`` keyword (ours may)."""
    params = inspect.signature(module.DAGExecutor.execute).parameters
    return "priority_costs" in params


def make_runner(
    impl: str,
    config_overrides: Mapping[str, Any],
    *,
    priority_costs: Mapping[str, float] | None = None,
) -> tuple[Runner, dict[str, Any]]:
    """Return ``run(tasks, deps, body)`` for ``impl`` plus facts worth printing with results.

    The executor is constructed here, outside any timed region. ``config_overrides`` must hold
    ``max_parallel_per_wave``; for the floor only that cap is used.
    """
    cap = int(config_overrides["max_parallel_per_wave"])
    if impl == "floor":

        async def run_floor_impl(
            tasks: Mapping[str, Any], deps: Mapping[str, Any], body: Body
        ) -> Any:
            return await run_floor(tasks, deps, body, cap)

        return run_floor_impl, {"impl": "floor", "version": "-", "source_hash": "-"}
    if impl not in IMPLS:
        raise ValueError(f"unknown impl {impl!r}; known: {', '.join(IMPLS)}")
    module = load_library(impl)
    config, dropped = make_config(module, config_overrides)
    executor = module.DAGExecutor(config=config)
    extra: dict[str, Any] = {}
    if priority_costs is not None:
        extra["priority_costs"] = priority_costs

    async def run_library(tasks: Mapping[str, Any], deps: Mapping[str, Any], body: Body) -> Any:
        return await executor.execute(tasks, deps, body, **extra)

    module_dir = os.path.dirname(module.__file__ or "")
    info = {
        "impl": impl,
        "version": library_version(module),
        "module_path": module_dir,
        "source_hash": source_hash(module_dir),
        "config_dropped": dropped,
    }
    return run_library, info


def count_successes(impl: str, result: Any) -> int:
    """Tasks that finished successfully, read the way each implementation reports it."""
    if impl == "floor":
        return sum(1 for v in result.values() if v == "success")
    return int(result.total_successful)


def read_statuses(impl: str, result: Any) -> dict[str, Any]:
    """Every task's status, read the way a caller reads it (the timed "read" part).

    For both libraries that is ``{t: r.status for t, r in result.task_results.items()}``; the
    floor's result already is a dict of statuses, which is copied the same way.
    """
    if impl == "floor":
        return dict(result)
    return {t: r.status for t, r in result.task_results.items()}
