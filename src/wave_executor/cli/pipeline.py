"""Pipeline files: TOML, one table per task, checked completely before anything runs.

```toml
[pipeline]
jobs = 4                       # at most this many tasks at once
groups = { db = 2 }            # group budgets
retries = 0                    # defaults for every task: retries, retry_delay,
timeout = 60                   # timeout, env, cwd, shell
[tasks.extract]
cmd = "python extract.py"
inputs = ["extract.py"]
[tasks.report]
call = "mypkg.reports:build"
deps = ["extract"]
```

Every error is a :class:`PipelineError` naming the file, the line (the
TOML parser's, or the line of the field found in the text), the task and
the field.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import math
import re
import shlex
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

from wave_executor._core.triggers import TriggerRule

__all__ = ["Pipeline", "PipelineError", "TaskDef", "load_pipeline"]

PIPELINE_FIELDS = {"jobs", "groups", "retries", "retry_delay", "timeout", "env", "cwd", "shell"}
TASK_FIELDS = {
    "cmd",
    "call",
    "deps",
    "retries",
    "retry_delay",
    "timeout",
    "group",
    "inputs",
    "env",
    "cwd",
    "shell",
    "trigger_rule",
}
TRIGGER_RULES = frozenset(rule.value for rule in TriggerRule)
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class PipelineError(Exception):
    """A pipeline file that cannot run, with where and what."""

    def __init__(
        self,
        path: Path,
        message: str,
        *,
        line: int | None = None,
        task: str | None = None,
        field: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.task = task
        self.field = field
        self.message = message
        where = str(path) + (f":{line}" if line is not None else "")
        what = []
        if task is not None:
            what.append(f"task {task!r}")
        if field is not None:
            what.append(f"field {field!r}")
        prefix = f"{where}: " + (", ".join(what) + ": " if what else "")
        super().__init__(prefix + message)


@dataclass(frozen=True, slots=True)
class TaskDef:
    """One task, with the pipeline's defaults applied."""

    name: str
    cmd: tuple[str, ...] | str | None
    call: str | None
    deps: tuple[str, ...]
    retries: int
    retry_delay: float
    timeout: float | None
    group: str | None
    inputs: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path
    shell: bool
    table: Mapping[str, Any]
    function: Callable[..., Any] | None = None
    trigger_rule: str = TriggerRule.ALL_SUCCESS.value

    def spec(self, base: Path) -> dict[str, Any]:
        """What the task is given and what its identity hashes: its table and its inputs."""
        spec: dict[str, Any] = dict(self.table)
        if self.inputs:
            spec["_inputs"] = {name: _digest(base / name) for name in self.inputs}
        return spec


@dataclass(frozen=True, slots=True)
class Pipeline:
    path: Path
    jobs: int
    groups: Mapping[str, int]
    tasks: Mapping[str, TaskDef] = field(default_factory=dict)

    @property
    def base(self) -> Path:
        return self.path.parent

    @property
    def name(self) -> str:
        return self.path.stem

    def dependencies(self) -> dict[str, list[str]]:
        return {name: list(t.deps) for name, t in self.tasks.items() if t.deps}

    def trigger_rules(self) -> dict[str, str]:
        """The tasks whose rule is not the default, and their rules."""
        default = TriggerRule.ALL_SUCCESS.value
        return {name: t.trigger_rule for name, t in self.tasks.items() if t.trigger_rule != default}

    def specs(self) -> dict[str, dict[str, Any]]:
        return {name: t.spec(self.base) for name, t in self.tasks.items()}


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def _find_line(text: str, task: str | None, key: str | None) -> int | None:
    """The line of ``key`` in ``[tasks.task]`` (or of the header, or of ``[pipeline]``)."""
    lines = text.splitlines()
    header = (
        re.compile(r"^\s*\[\s*tasks\s*\.\s*(\"?)" + re.escape(task) + r"\1\s*\]")
        if task is not None
        else re.compile(r"^\s*\[\s*pipeline\s*\]")
    )
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        return None
    if key is None:
        return start + 1
    pattern = re.compile(r"^\s*(\"?)" + re.escape(key) + r"\1\s*=")
    for i in range(start + 1, len(lines)):
        if lines[i].lstrip().startswith("["):
            break
        if pattern.match(lines[i]):
            return i + 1
    return start + 1


class _Checker:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text

    def fail(self, message: str, task: str | None = None, key: str | None = None) -> PipelineError:
        return PipelineError(
            self.path, message, line=_find_line(self.text, task, key), task=task, field=key
        )

    def integer(self, value: Any, task: str | None, key: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"must be an integer, got {value!r}", task, key)
        if value < minimum:
            raise self.fail(f"must be >= {minimum}, got {value}", task, key)
        return value

    def seconds(self, value: Any, task: str | None, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"must be a number of seconds, got {value!r}", task, key)
        if not (math.isfinite(value) and value > 0):
            raise self.fail(f"must be a positive number of seconds, got {value!r}", task, key)
        return float(value)

    def string(self, value: Any, task: str | None, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"must be a non-empty string, got {value!r}", task, key)
        return value

    def boolean(self, value: Any, task: str | None, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(f"must be true or false, got {value!r}", task, key)
        return value

    def strings(self, value: Any, task: str | None, key: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(f"must be a list of non-empty strings, got {value!r}", task, key)
        return tuple(value)

    def env(self, value: Any, task: str | None) -> dict[str, str]:
        if not isinstance(value, dict):
            raise self.fail(f"must be a table of strings, got {value!r}", task, "env")
        out: dict[str, str] = {}
        for k, v in value.items():
            if not isinstance(v, (str, int, float)) or isinstance(v, bool) or "=" in k or not k:
                raise self.fail(f"{k!r} = {v!r}: names and string values only", task, "env")
            out[k] = str(v)
        return out


def _resolve_call(check: _Checker, name: str, target: str, base: Path) -> Callable[..., Any]:
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise check.fail(f"must look like 'package.module:function', got {target!r}", name, "call")
    if str(base) not in sys.path:
        sys.path.insert(0, str(base))
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise check.fail(
            f"cannot load {target!r}: {type(exc).__name__}: {exc}", name, "call"
        ) from exc
    if not callable(obj):
        raise check.fail(f"{target!r} is not callable", name, "call")
    try:
        inspect.signature(obj).bind("task", {})
    except TypeError as exc:
        raise check.fail(f"{target!r} must accept (task_id, spec): {exc}", name, "call") from exc
    except ValueError:
        pass  # no signature to check (a builtin)
    return obj  # type: ignore[no-any-return]


def load_pipeline(path: str | Path, *, resolve_calls: bool = True) -> Pipeline:
    """Read and check a pipeline file; raises :class:`PipelineError`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PipelineError(path, f"cannot read: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PipelineError(path, f"not UTF-8 text: {exc.reason}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = int(match.group(1)) if match else None
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc)) or "invalid TOML"
        raise PipelineError(path, f"invalid TOML: {message}", line=line) from exc
    check = _Checker(path, text)
    base = path.resolve().parent

    for key in data:
        if key not in ("pipeline", "tasks"):
            raise PipelineError(path, f"unknown table [{key}]: expected [pipeline] and [tasks.*]")
    head = data.get("pipeline", {})
    if not isinstance(head, dict):
        raise check.fail("must be a table", None, "pipeline")
    for key in head:
        if key not in PIPELINE_FIELDS:
            raise check.fail(
                f"unknown field (known: {', '.join(sorted(PIPELINE_FIELDS))})", None, key
            )
    jobs = check.integer(head.get("jobs", 4), None, "jobs", 1)
    groups_raw = head.get("groups", {})
    if not isinstance(groups_raw, dict):
        raise check.fail(f"must be a table of group budgets, got {groups_raw!r}", None, "groups")
    groups = {g: check.integer(v, None, "groups", 1) for g, v in groups_raw.items()}
    defaults: dict[str, Any] = {k: head[k] for k in head if k not in ("jobs", "groups")}

    tasks_raw = data.get("tasks")
    if not isinstance(tasks_raw, dict) or not tasks_raw:
        raise PipelineError(path, "no tasks: add at least one [tasks.NAME] table")
    tasks: dict[str, TaskDef] = {}
    for name, table in tasks_raw.items():
        if not _NAME.match(name):
            raise check.fail("task names are letters, digits, '_', '-' and '.'", name, None)
        if not isinstance(table, dict):
            raise check.fail(f"must be a table, got {table!r}", name, None)
        for key in table:
            if key not in TASK_FIELDS:
                raise check.fail(
                    f"unknown field (known: {', '.join(sorted(TASK_FIELDS))})", name, key
                )
        merged = {**defaults, **table}
        if "env" in defaults and "env" in table:
            merged["env"] = {**check.env(defaults["env"], None), **check.env(table["env"], name)}

        def owner(key: str, name: str = name, table: dict[str, Any] = table) -> str | None:
            return name if key in table else None

        has_cmd, has_call = "cmd" in table, "call" in table
        if has_cmd == has_call:
            raise check.fail(
                "needs exactly one of 'cmd' (a command) or 'call' (a function)", name, None
            )
        cmd: tuple[str, ...] | str | None = None
        shell = check.boolean(merged.get("shell", False), owner("shell"), "shell")
        if has_cmd:
            value = table["cmd"]
            if isinstance(value, list):
                cmd = check.strings(value, name, "cmd")
                if not cmd:
                    raise check.fail("must not be empty", name, "cmd")
                if shell:
                    cmd = shlex.join(cmd)
            else:
                text_cmd = check.string(value, name, "cmd")
                if shell:
                    cmd = text_cmd
                else:
                    try:
                        cmd = tuple(shlex.split(text_cmd))
                    except ValueError as exc:
                        raise check.fail(f"cannot split {text_cmd!r}: {exc}", name, "cmd") from exc
                    if not cmd:
                        raise check.fail("must not be empty", name, "cmd")
        call = check.string(table["call"], name, "call") if has_call else None
        deps = check.strings(table.get("deps", []), name, "deps")
        if len(set(deps)) != len(deps):
            raise check.fail("lists a task twice", name, "deps")
        if name in deps:
            raise check.fail("a task cannot depend on itself", name, "deps")
        retries = check.integer(merged.get("retries", 0), owner("retries"), "retries", 0)
        retry_delay = (
            check.seconds(merged["retry_delay"], owner("retry_delay"), "retry_delay")
            if "retry_delay" in merged
            else 1.0
        )
        timeout = (
            check.seconds(merged["timeout"], owner("timeout"), "timeout")
            if "timeout" in merged
            else None
        )
        group = check.string(table["group"], name, "group") if "group" in table else None
        if group is not None and group not in groups:
            raise check.fail(
                f"unknown group {group!r}: give its budget in [pipeline] groups", name, "group"
            )
        inputs = check.strings(table.get("inputs", []), name, "inputs")
        for item in inputs:
            if not (base / item).is_file():
                raise check.fail(
                    f"input {item!r} is not a file (relative to {base})", name, "inputs"
                )
        env = check.env(merged.get("env", {}), owner("env"))
        cwd_raw = check.string(merged["cwd"], owner("cwd"), "cwd") if "cwd" in merged else "."
        cwd = (base / cwd_raw).resolve()
        if not cwd.is_dir():
            raise check.fail(f"{cwd_raw!r} is not a directory", owner("cwd"), "cwd")
        rule = TriggerRule.ALL_SUCCESS.value
        if "trigger_rule" in table:
            rule = check.string(table["trigger_rule"], name, "trigger_rule")
            if rule not in TRIGGER_RULES:
                raise check.fail(
                    f"{rule!r} is not supported; known: {', '.join(sorted(TRIGGER_RULES))}",
                    name,
                    "trigger_rule",
                )
        resolved = {**merged}
        tasks[name] = TaskDef(
            name=name,
            cmd=cmd,
            call=call,
            deps=deps,
            retries=retries,
            retry_delay=retry_delay,
            timeout=timeout,
            group=group,
            inputs=inputs,
            env=env,
            cwd=cwd,
            shell=shell,
            table=resolved,
            trigger_rule=rule,
        )
    for name, task in tasks.items():
        for dep in task.deps:
            if dep not in tasks:
                raise check.fail(f"unknown task {dep!r}", name, "deps")
    try:
        TopologicalSorter({n: t.deps for n, t in tasks.items()}).prepare()
    except CycleError as exc:
        cycle = list(exc.args[1])
        raise check.fail(
            f"dependency cycle: {' -> '.join(reversed(cycle))}", cycle[0], "deps"
        ) from exc
    if resolve_calls:
        for name, task in list(tasks.items()):
            if task.call is not None:
                function = _resolve_call(check, name, task.call, base)
                tasks[name] = _with_function(task, function)
    return Pipeline(path=path.resolve(), jobs=jobs, groups=groups, tasks=tasks)


def _with_function(task: TaskDef, function: Callable[..., Any]) -> TaskDef:
    from dataclasses import replace

    return replace(task, function=function)
