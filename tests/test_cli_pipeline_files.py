"""Pipeline files: what loads, and the errors for what does not (fuzzed with hypothesis)."""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli_helpers import cli
from wave_executor.cli.pipeline import TASK_FIELDS, PipelineError, load_pipeline

GOOD = """
[pipeline]
jobs = 2
retries = 1
groups = { db = 1 }
env = { STAGE = "test" }

[tasks.extract]
cmd = "python3 extract.py --fast"
inputs = ["extract.py"]

[tasks.load]
cmd = ["sh", "-c", "echo loaded"]
deps = ["extract"]
group = "db"
timeout = 5
env = { TABLE = "orders" }

[tasks.report]
call = "operator:eq"
deps = ["load"]
retries = 0
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.toml"
    path.write_text(text)
    (tmp_path / "extract.py").write_text("print('x')\n")
    return path


def test_a_valid_file_loads_with_defaults_applied_and_commands_split(tmp_path: Path) -> None:
    pipeline = load_pipeline(write(tmp_path, GOOD))
    assert pipeline.jobs == 2 and dict(pipeline.groups) == {"db": 1}
    extract, load, report = (pipeline.tasks[n] for n in ("extract", "load", "report"))
    assert extract.cmd == ("python3", "extract.py", "--fast") and extract.retries == 1
    assert load.env == {"STAGE": "test", "TABLE": "orders"} and load.timeout == 5.0
    assert report.retries == 0 and report.function is not None
    assert pipeline.dependencies() == {"load": ["extract"], "report": ["load"]}
    assert "_inputs" in pipeline.specs()["extract"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('deps = ["extract"]', 'deps = ["nope"]'), ":14: task 'load', field 'deps': unknown task"),
        (("timeout = 5", "timeout = -1"), ":16: task 'load', field 'timeout': must be a positive"),
        (('group = "db"', 'group = "web"'), ":15: task 'load', field 'group': unknown group"),
        (
            ("retries = 0", "retries = 'x'"),
            ":22: task 'report', field 'retries': must be an integer",
        ),
        (
            ('call = "operator:eq"', 'call = "operator:nothing"'),
            "task 'report', field 'call': cannot",
        ),
        (("retries = 0", "colour = 1"), ":22: task 'report', field 'colour': unknown field"),
        (("jobs = 2", "jobs = 0"), ":3: field 'jobs': must be >= 1"),
        (('inputs = ["extract.py"]', 'inputs = ["gone.py"]'), "field 'inputs': input 'gone.py'"),
        (("jobs = 2", "jobs = = 2"), ":3: invalid TOML"),
        (('deps = ["load"]', 'deps = ["load", "report"]'), "field 'deps': a task cannot depend"),
    ],
)
def test_a_broken_field_is_reported_with_file_line_task_and_field(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    path = write(tmp_path, GOOD.replace(*change, 1))
    with pytest.raises(PipelineError) as caught:
        load_pipeline(path)
    assert str(caught.value).startswith(str(path))
    assert expected in str(caught.value)


def test_a_cycle_is_reported_with_its_tasks(tmp_path: Path) -> None:
    text = GOOD.replace('cmd = "python3 extract.py --fast"', 'cmd = "true"\ndeps = ["report"]')
    with pytest.raises(PipelineError, match=r"dependency cycle: .*report.*->"):
        load_pipeline(write(tmp_path, text))


names = st.text(string.ascii_lowercase + "_-", min_size=1, max_size=6)
scalars: st.SearchStrategy[Any] = st.one_of(
    st.integers(-3, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(string.printable, max_size=12),
)
values = st.one_of(scalars, st.lists(st.one_of(names, scalars), max_size=3))
task_tables = st.dictionaries(
    st.one_of(st.sampled_from(sorted(TASK_FIELDS)), names), values, max_size=5
)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def toml_text(head: dict[str, Any], tasks: dict[str, dict[str, Any]]) -> str:
    lines = ["[pipeline]"] + [f"{k} = {toml_value(v)}" for k, v in head.items()]
    for name, table in tasks.items():
        lines.append(f"[tasks.{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    head=st.dictionaries(
        st.sampled_from(["jobs", "retries", "timeout", "shell", "x"]), values, max_size=3
    ),
    tasks=st.dictionaries(names, task_tables, min_size=0, max_size=4),
    cut=st.integers(0, 400),
    garble=st.booleans(),
)
def test_any_malformed_file_gets_a_pipeline_error_naming_the_file_and_what_is_wrong(
    tmp_path: Path, head: dict[str, Any], tasks: dict[str, dict[str, Any]], cut: int, garble: bool
) -> None:
    text = toml_text(head, tasks)
    if garble:
        text = text[:cut] + ']="' + text[cut:]
    path = tmp_path / "fuzz.toml"
    path.write_text(text)
    error: PipelineError | None = None
    try:
        pipeline = load_pipeline(path, resolve_calls=False)
    except PipelineError as exc:
        error = exc
    if error is None:
        assert set(pipeline.tasks) == set(tasks)
        return
    message = str(error)
    assert message.startswith(f"{path}"), message
    assert error.message and "Traceback" not in message
    if error.line is not None:
        assert 1 <= error.line <= text.count("\n") + 1
    if error.task is not None:
        assert error.task in tasks, message
    if error.field is not None and error.task is not None:
        assert error.field in tasks[error.task] or error.field in head or error.field in TASK_FIELDS


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(junk=st.text(string.printable, min_size=1, max_size=80))
def test_the_command_line_turns_a_malformed_file_into_exit_status_2_and_one_clear_line(
    tmp_path: Path, junk: str
) -> None:
    path = tmp_path / "junk.toml"
    path.write_text('[tasks.a]\ncmd = "true"\n' + junk + "\n[tasks.a]\n")
    done = cli("run", path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"wave-executor: {path}")
    assert "Traceback" not in done.stderr
    assert re.match(rf"wave-executor: {re.escape(str(path))}(:\d+)?: ", done.stderr)
