"""Restart decisions for supervised tasks: policy, backoff and crash-loop limits.

Modelled on systemd (``Restart=``, ``RestartSec=``, ``StartLimitBurst=`` /
``StartLimitIntervalSec=``), Kubernetes (CrashLoopBackOff: exponential,
capped, forgotten after a healthy run) and Erlang/OTP supervisors
(``rest_for_one``; intensity within a period). Pure: no asyncio, every time
is a monotonic number passed in.

When a run exits at ``now`` after running ``ran_for`` seconds:

1. The run is *healthy* if it succeeded or ran at least ``healthy_after_s``;
   a healthy run ends the crash streak (the backoff starts over).
2. The policy decides whether to restart at all: ``no`` never,
   ``on-failure`` after a failure (failed or timeout), ``always`` after any exit.
3. A failure lengthens the streak to ``n``. The task is *blocked* when
   ``n > max_restart_attempts`` (crashes in a row) or when more than
   ``crash_loop_burst`` failures fell within ``crash_loop_window_s``.
4. Otherwise it restarts ``delay(n)`` seconds after ``now`` (the exit, not
   the start), with ``n = 1`` after a clean exit::

       delay(n) = min(backoff_cap_s, base * 2 ** (n - 1) * (1 + jitter * u))

   which is ``RetryPolicy.delay`` with factor 2: the same formula as DAG
   retries, written once. Jitter only adds time, so the jitter-free delays
   stay lower bounds.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from wave_executor._core.checks import check_int, check_number
from wave_executor._core.retry import RetryPolicy

__all__ = ["RestartDecision", "RestartHistory", "RestartPolicy", "RestartSettings", "decide"]


class RestartPolicy(StrEnum):
    """When a supervised task is started again after it exits (0.3.0 values)."""

    NO = "no"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartSettings:
    """Reconciler-wide restart knobs (per-task ones live on ``ReconcileTaskSpec``).

    ``healthy_after_s=None`` means only a clean exit ends a crash streak.
    ``crash_loop_burst=None`` turns the window limit off (the default: the
    per-task ``max_restart_attempts`` already bounds crash loops).
    ``rest_for_one``: when a task restarts, its running dependents are
    restarted too, once it is satisfied again (OTP's ``rest_for_one``).
    """

    backoff_cap_s: float = 300.0
    jitter: float = 0.0
    healthy_after_s: float | None = 60.0
    crash_loop_burst: int | None = None
    crash_loop_window_s: float = 60.0
    rest_for_one: bool = False

    def __post_init__(self) -> None:
        for name in ("backoff_cap_s", "jitter", "crash_loop_window_s", "healthy_after_s"):
            value = getattr(self, name)
            if value is not None or name != "healthy_after_s":
                check_number(name, value, at_least=0)
        if self.crash_loop_burst is not None:
            check_int("crash_loop_burst", self.crash_loop_burst, 0)


@dataclass(slots=True)
class RestartHistory:
    """What the restart rules remember about one task since its spec was set."""

    streak: int = 0  # failures in a row since the last healthy run
    failures: deque[float] = field(default_factory=deque)  # recent failure times


@dataclass(frozen=True, slots=True)
class RestartDecision:
    """``restart`` with ``delay``; or not, and then ``blocked`` says why (None: final)."""

    restart: bool
    delay: float = 0.0
    blocked: str | None = None


def backoff(base: float, n: int, settings: RestartSettings, u: float = 0.0) -> float:
    """Seconds before restart number ``n`` of a streak (``n >= 1``); ``u`` in [0, 1)."""
    policy = RetryPolicy(
        max_retries=0,
        backoff_factor=2.0,
        base_delay=base,
        max_delay=settings.backoff_cap_s,
        jitter=settings.jitter,
    )
    return policy.delay(n, u)


def decide(
    policy: RestartPolicy,
    *,
    failed: bool,
    ran_for: float,
    now: float,
    max_restart_attempts: int,
    backoff_base: float,
    settings: RestartSettings,
    history: RestartHistory,
    u: float = 0.0,
) -> RestartDecision:
    """Apply the rules of the module docstring to one exit; updates ``history``."""
    healthy_after = settings.healthy_after_s
    if not failed or (healthy_after is not None and ran_for >= healthy_after):
        history.streak = 0
    if policy is RestartPolicy.NO or (policy is RestartPolicy.ON_FAILURE and not failed):
        return RestartDecision(restart=False)
    if not failed:
        return RestartDecision(restart=True, delay=backoff(backoff_base, 1, settings, u))
    history.streak += 1
    n = history.streak
    if n > max_restart_attempts:
        return RestartDecision(
            restart=False,
            blocked=f"failed {n} times in a row; max_restart_attempts={max_restart_attempts}",
        )
    burst = settings.crash_loop_burst
    if burst is not None:
        window = settings.crash_loop_window_s
        recent = history.failures
        recent.append(now)
        while recent and recent[0] <= now - window:
            recent.popleft()
        while len(recent) > burst + 1:  # never keep more than the limit needs
            recent.popleft()
        if len(recent) > burst:
            return RestartDecision(
                restart=False,
                blocked=(
                    f"crash loop: {len(recent)} failures within {window:g}s "
                    f"(crash_loop_burst={burst})"
                ),
            )
    return RestartDecision(restart=True, delay=backoff(backoff_base, n, settings, u))


def check_timeout(value: float | None) -> float:
    """A per-run timeout as the attempt runner takes it: ``math.inf`` for none."""
    if value is None:
        return math.inf
    if not value > 0:
        raise ValueError(f"a task timeout must be > 0 seconds (or None), got {value!r}")
    return float(value)
