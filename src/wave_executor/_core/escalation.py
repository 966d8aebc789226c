"""Diagnosis of a task that gave up: a root-cause heuristic and what to try next."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["AttemptFailure", "diagnose"]


@dataclass(frozen=True, slots=True)
class AttemptFailure:
    """One failed attempt, as the escalation report remembers it."""

    message: str
    timed_out: bool = False
    circuit_open: bool = False
    overload: bool = False
    error_type: str = ""
    duration_s: float = 0.0
    delay_s: float | None = None  # the wait before the next attempt, if one followed

    def to_dict(self, attempt: int) -> dict[str, Any]:
        return {
            "attempt": attempt,
            "error": self.message,
            "error_type": self.error_type,
            "timed_out": self.timed_out,
            "overload": self.overload,
            "circuit_open": self.circuit_open,
            "duration_ms": round(self.duration_s * 1000.0, 3),
            "delay_s": self.delay_s,
        }


def diagnose(history: Sequence[AttemptFailure]) -> tuple[str, list[str]]:
    """(root cause, resolution options) for a task whose attempts all failed."""
    if not history:
        return "no attempt was made", ["Check why the task was never started"]
    last = history[-1]
    n = len(history)
    if last.circuit_open:
        return (
            f"circuit open: the downstream service is unavailable ({last.message})",
            [
                "Wait for the circuit's recovery timeout and re-run",
                "Check the health of the service behind the circuit key",
                "Route the task to a different service or specialist",
            ],
        )
    if all(f.timed_out for f in history):
        return (
            f"timeout on {_attempts(n)}: the task exceeded its time limit ({last.message})",
            [
                "Raise the task timeout (default_task_timeout)",
                "Split the task into smaller subtasks",
                "Enable retry of timeouts if the slowness is transient",
            ],
        )
    if len({f.message for f in history}) == 1:
        return (
            f"consistent failure on {_attempts(n)}: likely a code bug or bad input spec "
            f"({last.message})",
            [
                "Retry with a corrected task spec",
                "Fix the task body; the same error will recur on retry",
                "Decompose the task into smaller subtasks",
            ],
        )
    return (
        f"intermittent failure: errors differed across {_attempts(n)} (last: {last.message})",
        [
            "Retry later: the failure looks transient",
            "Increase max_retries or the backoff delay",
            "Defer and investigate the dependency that is flaky",
        ],
    )


def _attempts(n: int) -> str:
    return "1 attempt" if n == 1 else f"all {n} attempts"
