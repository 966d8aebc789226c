"""What ``wave-executor run`` shows while it runs.

On a terminal, a live panel (rich): counts, the running tasks, elapsed
time and an estimate of what is left. Elsewhere (a pipe, a CI log), one
plain line per event, flushed at once.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any, Protocol, TextIO

__all__ = ["LiveProgress", "PlainProgress", "Progress", "Tally", "make_progress"]


class Tally:
    """Counts and running tasks, fed by the executor's events."""

    def __init__(self, total: int, jobs: int, expected: Mapping[str, float] | None = None) -> None:
        self.total = total
        self.jobs = jobs
        self.expected = dict(expected or {})
        self.t0 = time.monotonic()
        self.running: dict[str, float] = {}
        self.done = self.failed = self.skipped = self.reused = 0
        self.durations: list[float] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def finished(self) -> int:
        return self.done + self.failed + self.skipped

    def eta(self) -> float | None:
        """Seconds left: the mean duration so far, over what is left, spread over the slots."""
        left = self.total - self.finished()
        if left <= 0:
            return 0.0
        mean = (
            sum(self.durations) / len(self.durations)
            if self.durations
            else (sum(self.expected.values()) / len(self.expected) if self.expected else None)
        )
        if mean is None:
            return None
        return mean * left / max(1, min(self.jobs, left))

    def update(self, event_type: str, event: Mapping[str, Any]) -> str | None:
        """Apply one event; return a line describing it, if it is worth one."""
        task = str(event.get("task_id"))
        now = time.monotonic()
        if event_type == "TASK_STARTED":
            self.running[task] = now
            return f"start   {task}"
        if event_type == "TASK_RETRYING":
            first = str(event.get("error") or "").splitlines()[:1]
            return (
                f"retry   {task} after attempt {event.get('attempt')} "
                f"(in {float(event.get('delay_s') or 0):.1f}s): {' '.join(first)}"
            )
        if event_type == "TASK_COMPLETED":
            started = self.running.pop(task, None)
            self.done += 1
            if event.get("restored"):
                self.reused += 1
                return f"reused  {task} (succeeded in an earlier execution)"
            took = now - started if started is not None else 0.0
            self.durations.append(took)
            return f"ok      {task} ({took:.1f}s)"
        if event_type == "TASK_FAILED":
            self.running.pop(task, None)
            self.failed += 1
            return f"FAILED  {task} [{event.get('status')}]: {event.get('error')}"
        if event_type == "TASK_SKIPPED":
            self.skipped += 1
            if event.get("skip_reason") == "rule_not_met":
                return f"skipped {task} (trigger rule {event.get('trigger_rule')} not met)"
            deps = ", ".join(str(d) for d in event.get("failed_deps") or ())
            return f"skipped {task} (upstream {deps} did not succeed)"
        return None

    def summary(self) -> str:
        eta = self.eta()
        eta_text = f", ETA {eta:.0f}s" if eta is not None and self.running else ""
        return (
            f"{self.done}/{self.total} done, {len(self.running)} running, {self.failed} failed, "
            f"{self.skipped} skipped, {self.elapsed():.1f}s elapsed{eta_text}"
        )


class Progress(Protocol):
    tally: Tally

    def __enter__(self) -> Progress: ...
    def __exit__(self, *exc: object) -> None: ...
    def event(self, event_type: str, event: Mapping[str, Any]) -> None: ...
    def message(self, text: str) -> None: ...


class PlainProgress:
    """One line per event: for pipes and logs."""

    def __init__(self, tally: Tally, out: TextIO | None = None) -> None:
        self.tally = tally
        self.out = out or sys.stdout

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def message(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def event(self, event_type: str, event: Mapping[str, Any]) -> None:
        line = self.tally.update(event_type, event)
        if line is not None:
            first, *rest = line.splitlines() or [""]
            text = "\n".join([f"[{self.tally.elapsed():7.1f}s] {first}", *rest])
            print(text, file=self.out, flush=True)


class LiveProgress:
    """A live panel on a terminal (rich), with event lines printed above it."""

    def __init__(self, tally: Tally) -> None:
        from rich.console import Console
        from rich.live import Live

        self.tally = tally
        self.console = Console()
        self.live = Live(
            get_renderable=self._render, console=self.console, refresh_per_second=8, transient=True
        )

    def _render(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 2))
        t = self.tally
        eta = t.eta()
        head = Text.assemble(
            ("done ", "bold"),
            (f"{t.done}/{t.total}", "green"),
            ("  running ", "bold"),
            (str(len(t.running)), "cyan"),
            ("  failed ", "bold"),
            (str(t.failed), "red" if t.failed else ""),
            ("  skipped ", "bold"),
            (str(t.skipped), "yellow" if t.skipped else ""),
            (f"  elapsed {t.elapsed():.1f}s", ""),
            (f"  ETA {eta:.0f}s" if eta is not None and t.running else "", "dim"),
        )
        table.add_row(head)
        now = time.monotonic()
        for name, started in sorted(t.running.items(), key=lambda kv: kv[1])[:12]:
            table.add_row(Text(f"  ⠿ {name}  {now - started:.1f}s", style="cyan"))
        if len(t.running) > 12:
            table.add_row(Text(f"  ... and {len(t.running) - 12} more", style="dim"))
        return table

    def __enter__(self) -> LiveProgress:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)

    def event(self, event_type: str, event: Mapping[str, Any]) -> None:
        line = self.tally.update(event_type, event)
        if line is None or line.startswith("start"):
            return
        style = {"ok": "green", "FA": "bold red", "sk": "yellow", "re": "magenta"}.get(line[:2])
        self.console.print(
            f"[{self.tally.elapsed():7.1f}s] {line}", style=style, highlight=False, markup=False
        )
        self.live.refresh()


def make_progress(tally: Tally, *, plain: bool) -> Progress:
    if plain or not sys.stdout.isatty():
        return PlainProgress(tally)
    return LiveProgress(tally)
