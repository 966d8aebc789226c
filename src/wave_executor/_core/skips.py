"""Why a task is skipped: the dependencies that ended without success."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["skip_error", "unsuccessful_deps"]


def unsuccessful_deps(deps: Iterable[Any], succeeded: Callable[[Any], bool]) -> list[Any]:
    """The ended-without-success dependencies among ``deps``, each once, in order.

    ``succeeded(d)`` is False for a dependency that ended unsuccessfully;
    callers that may ask about unfinished ones must say True for those.
    """
    return [d for d in dict.fromkeys(deps) if not succeeded(d)]


_NO_ROOT: Any = object()


def skip_error(failed_deps: list[Any], root: Any = _NO_ROOT) -> str:
    """The error a skipped task carries (``root``: the failure that started the skipping)."""
    error = f"skipped: dependencies did not succeed: {failed_deps!r}"
    if root is not _NO_ROOT and failed_deps != [root]:
        error += f" (root failure: {root!r})"
    return error
