"""Tasks of no flow in particular, at module level: they pickle by reference (process tests)."""

from __future__ import annotations

import os

from wave_executor.flow import task


@task
def square(x: int) -> int:
    return x * x


@task
def pid_and_sum(values: list[int]) -> tuple[int, int]:
    return os.getpid(), sum(values)
