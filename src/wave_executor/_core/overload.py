"""Is this error the service saying "too much"? (Pure classification.)

Overload signals move the adaptive window; other errors do not. An error
is overload when it is an instance of a type the user declared, or carries
an HTTP status 429 or 503 the way common clients expose it (``status_code``
on httpx/requests-style errors and responses, ``status`` on aiohttp's), or
is a timeout of the attempt.
"""

from __future__ import annotations

from typing import Any

__all__ = ["OVERLOAD_STATUSES", "is_overload", "status_of_error"]

OVERLOAD_STATUSES = frozenset({429, 503})


def status_of_error(exc: BaseException) -> int | None:
    """The HTTP status an error carries, if any."""
    holders: list[Any] = [exc, getattr(exc, "response", None)]
    for holder in holders:
        if holder is None:
            continue
        for name in ("status_code", "status"):
            value = getattr(holder, name, None)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


def is_overload(
    exc: BaseException,
    declared: tuple[type[BaseException], ...] = (),
    timed_out: bool = False,
) -> bool:
    if timed_out or (declared and isinstance(exc, declared)):
        return True
    return status_of_error(exc) in OVERLOAD_STATUSES
