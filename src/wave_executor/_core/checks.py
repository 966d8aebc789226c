"""Argument checks shared by the constructors: each names the argument and the value.

A bool is refused wherever a number is expected (``True`` is an ``int`` to
Python, but a count of ``True`` is a mistake), and so is NaN, which
compares false with everything and so slips through ``< 0`` tests.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

__all__ = [
    "check_bool",
    "check_exception_types",
    "check_int",
    "check_mapping",
    "check_number",
    "is_number",
]


def is_number(value: object) -> bool:
    """A real number (``int``, ``float``, a NumPy scalar...), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` must be an integer >= ``minimum`` (not a bool, a float or NaN)."""
    if type(value) is int and value >= minimum:  # the common case, first
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value  # type: ignore[return-value]


def check_number(
    name: str,
    value: object,
    *,
    above: float | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
    finite: bool = False,
    hint: str = "",
) -> float:
    """``value`` must be a number (not a bool, not NaN) within the bounds given."""
    ok = (type(value) is float or type(value) is int) or is_number(value)
    ok = ok and not math.isnan(value)  # type: ignore[arg-type]
    if ok:
        number = float(value)  # type: ignore[arg-type]
        ok = (
            (above is None or number > above)
            and (at_least is None or number >= at_least)
            and (at_most is None or number <= at_most)
            and (not finite or math.isfinite(number))
        )
    if not ok:
        bounds = [
            f"> {above:g}" if above is not None else "",
            f">= {at_least:g}" if at_least is not None else "",
            f"<= {at_most:g}" if at_most is not None else "",
            "finite" if finite else "",
        ]
        wanted = " and ".join(b for b in bounds if b)
        wanted = f" {wanted}" if wanted else ""
        raise ValueError(f"{name} must be a number{wanted}{hint}, got {value!r}")
    return value  # type: ignore[return-value]


def check_bool(name: str, value: object) -> None:
    """``value`` must be a bool (``0`` and ``1`` pass too: they are read as one)."""
    if not isinstance(value, bool) and not (type(value) is int and value in (0, 1)):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def check_exception_types(name: str, value: object) -> None:
    """``value`` must be a tuple of exception classes (what ``isinstance`` takes)."""
    ok = isinstance(value, tuple) and all(
        isinstance(t, type) and issubclass(t, BaseException) for t in value
    )
    if not ok:
        raise TypeError(f"{name} must be a tuple of exception classes, got {value!r}")


def check_mapping(name: str, value: object) -> None:
    """``value`` must be a mapping (or None)."""
    if value is not None and not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping (or None), got {value!r}")
