"""Running a pipeline's tasks: commands in their own process group, callables.

A command runs without a shell unless its task says ``shell = true``; its
stdout and stderr go to the task's log file. It runs in a session of its
own, so that a cancelled attempt (Ctrl-C, SIGTERM, a timeout) can signal it
and everything it started: the signal first, SIGKILL after a grace period
for whatever ignores it. :class:`Children` waits for those clean-ups, so
the command line never exits while a child is alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import time
from collections import deque
from pathlib import Path
from typing import Any

from wave_executor.cli.pipeline import Pipeline, TaskDef

__all__ = ["Children", "CommandFailed", "TaskRunner", "tail"]

#: Seconds a signalled command has to exit before it is killed.
KILL_AFTER_S = 5.0


class CommandFailed(Exception):
    """A command exited with a non-zero status; the message has its last lines."""


def tail(path: Path, lines: int = 10) -> list[str]:
    """The last ``lines`` lines of a text file ([] if there is none)."""
    try:
        with path.open("r", encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n") for line in deque(f, maxlen=lines)]
    except OSError:
        return []


class Children:
    """The running commands, and the clean-ups of those that were cancelled."""

    def __init__(self, kill_after: float = KILL_AFTER_S) -> None:
        self.kill_after = kill_after
        self.signal = signal.SIGTERM
        self.running: set[asyncio.subprocess.Process] = set()
        self._cleanups: set[asyncio.Task[None]] = set()

    def stop(self, proc: asyncio.subprocess.Process) -> None:
        """Signal ``proc``'s process group now; kill it later if it is still there."""
        _signal_group(proc.pid, self.signal)
        task = asyncio.get_running_loop().create_task(self._reap(proc))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _reap(self, proc: asyncio.subprocess.Process) -> None:
        try:
            await asyncio.wait_for(proc.wait(), self.kill_after)
        except TimeoutError:
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
        _signal_group(proc.pid, signal.SIGKILL)  # what it started and left behind
        self.running.discard(proc)

    async def wait(self) -> None:
        """Return once every cancelled command is gone."""
        while self._cleanups:
            await asyncio.gather(*list(self._cleanups), return_exceptions=True)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class TaskRunner:
    """The task body handed to ``execute()``: runs a command or calls a function."""

    def __init__(self, pipeline: Pipeline, log_dir: Path, run_id: str, children: Children) -> None:
        self.pipeline = pipeline
        self.log_dir = log_dir
        self.run_id = run_id
        self.children = children
        self.attempts: dict[str, int] = {}

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    async def __call__(self, task_id: str, spec: dict[str, Any]) -> Any:
        task = self.pipeline.tasks[task_id]
        number = self.attempts.get(task_id, 0) + 1
        self.attempts[task_id] = number
        if task.function is not None:
            if inspect.iscoroutinefunction(task.function):
                return await task.function(task_id, spec)
            result = await asyncio.to_thread(task.function, task_id, spec)
            if inspect.isawaitable(result):
                return await result
            return result
        return await self._command(task, number)

    async def _command(self, task: TaskDef, number: int) -> dict[str, Any]:
        assert task.cmd is not None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path(task.name)
        env = {**os.environ, **task.env, "WAVE_TASK": task.name, "WAVE_RUN_ID": self.run_id}
        env["WAVE_ATTEMPT"] = str(number)
        shown = task.cmd if isinstance(task.cmd, str) else " ".join(task.cmd)
        with log.open("a", encoding="utf-8") as f:
            f.write(f"--- attempt {number} at {time.strftime('%Y-%m-%d %H:%M:%S')}: {shown}\n")
        with log.open("ab") as out:
            try:
                # A session of its own: a signal reaches the command's whole process group.
                io: dict[str, Any] = {
                    "stdin": asyncio.subprocess.DEVNULL, "stdout": out,
                    "stderr": asyncio.subprocess.STDOUT, "cwd": task.cwd, "env": env,
                    "start_new_session": True,
                }  # fmt: skip
                if isinstance(task.cmd, str):
                    proc = await asyncio.create_subprocess_shell(task.cmd, **io)
                else:
                    proc = await asyncio.create_subprocess_exec(*task.cmd, **io)
            except OSError as exc:
                raise CommandFailed(f"cannot start {shown!r}: {exc.strerror or exc}") from exc
        self.children.running.add(proc)
        try:
            code = await proc.wait()
        except asyncio.CancelledError:
            self.children.stop(proc)
            raise
        self.children.running.discard(proc)
        if code != 0:
            last = "\n".join("  " + line for line in tail(log, 10) if not line.startswith("--- "))
            what = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            raise CommandFailed(f"{what}: {shown}\n{last}".rstrip())
        return {"exit_code": 0, "log": str(log)}
