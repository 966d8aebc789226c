"""The command line end to end, as a subprocess, on the example pipelines."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cli_helpers import ROOT, cli, copy_example


def last_run_id(folder: Path) -> str:
    runs = cli("runs", "--store", folder / ".wave")
    assert runs.returncode == 0, runs.stdout + runs.stderr
    return runs.stdout.splitlines()[1].split()[0]


def test_importing_the_library_does_not_import_rich_or_the_command_line() -> None:
    code = (
        "import sys, wave_executor, wave_executor.store; "
        "bad = [m for m in sys.modules "
        "if m.split('.')[0] == 'rich' or m.startswith('wave_executor.cli')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_etl_example_succeeds_with_its_flaky_step_retried(tmp_path: Path) -> None:
    etl = copy_example("etl", tmp_path)
    done = cli("run", etl / "pipeline.toml", "-j", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "retry   rates after attempt 1" in done.stdout
    assert "all 7 tasks succeeded" in done.stdout
    assert "total in EUR by currency" in (etl / "out" / "summary.txt").read_text()
    run_id = last_run_id(etl)
    shown = cli("show", run_id, "rates", "--store", etl / ".wave")
    assert "attempt 1: failed" in shown.stdout and "attempt 2: success" in shown.stdout
    assert "503 Service Unavailable" in shown.stdout  # the log's last lines


def test_a_failing_step_exits_1_with_its_exit_code_and_resume_reruns_only_what_failed(
    tmp_path: Path,
) -> None:
    etl = copy_example("etl", tmp_path)
    failed = cli("run", etl / "pipeline.toml", env={"ETL_BREAK": "validate"})
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "validate failed: exit code 3: python3 validate.py out/orders.csv" in failed.stdout
    assert "order 17 has a negative amount" in failed.stdout
    assert "skipped transform" in failed.stdout
    run_id = last_run_id(etl)
    table = cli("show", run_id, "--store", etl / ".wave").stdout
    assert re.search(r"^validate\s+failed\s+1\b", table, re.MULTILINE), table
    assert re.search(r"^extract\s+success\b", table, re.MULTILINE), table

    resumed = cli("run", etl / "pipeline.toml", "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming {run_id}" in resumed.stdout
    started = set(re.findall(r"\] start\s+(\S+)", resumed.stdout))
    reused = set(re.findall(r"\] reused\s+(\S+)", resumed.stdout))
    assert reused == {"extract", "rates"}
    assert started == {"validate", "transform", "summary", "archive", "publish"}


def test_resume_reruns_a_task_whose_input_file_changed(tmp_path: Path) -> None:
    etl = copy_example("etl", tmp_path)
    assert cli("run", etl / "pipeline.toml").returncode == 0
    with (etl / "extract.py").open("a") as f:
        f.write("# changed\n")
    again = cli("run", etl / "pipeline.toml", "--resume")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "start   extract" in again.stdout
    assert "reused  rates" in again.stdout


def _alive(pid: int) -> bool:
    """Running: a zombie (killed, waiting for a parent that may never reap it) is not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _wait_for(path: Path, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _wait_until_recorded(folder: Path, task: str, seconds: float = 60.0) -> None:
    """Until the running run's store shows ``task`` succeeded (another process writes it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        runs = cli("runs", "--store", folder / ".wave")
        lines = runs.stdout.splitlines()
        if runs.returncode == 0 and len(lines) > 1:
            shown = cli("show", lines[1].split()[0], "--store", folder / ".wave").stdout
            if re.search(rf"^{task}\s+success\b", shown, re.MULTILINE):
                return
        time.sleep(0.2)
    raise AssertionError(f"{task} was not recorded as succeeded within {seconds} s")


def test_sigint_stops_every_command_even_one_ignoring_it_and_a_resume_finishes_the_run(
    tmp_path: Path,
) -> None:
    (tmp_path / "long.toml").write_text(
        """
[tasks.quick]
cmd = "true"
[tasks.slow]
cmd = "sh -c 'echo $$ > slow.pid; exec sleep 120'"
[tasks.stubborn]
cmd = "trap '' INT TERM; echo $$ > stubborn.pid; sleep 120 & echo $! > child.pid; wait"
shell = true
[tasks.after]
cmd = "true"
deps = ["slow"]
"""
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "wave_executor", "run", "long.toml"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for name in ("slow.pid", "stubborn.pid", "child.pid"):
            _wait_for(tmp_path / name)
        pids = [int((tmp_path / n).read_text()) for n in ("slow.pid", "stubborn.pid", "child.pid")]
        assert all(_alive(pid) for pid in pids)
        _wait_until_recorded(tmp_path, "quick")  # its success is in the store: a resume reuses it
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGINT, out
    assert "interrupted by SIGINT" in out
    assert [pid for pid in pids if _alive(pid)] == []
    run_id = last_run_id(tmp_path)
    runs = cli("runs", "--store", tmp_path / ".wave").stdout
    assert re.search(rf"^{run_id}\s+interrupted", runs, re.MULTILINE), runs

    (tmp_path / "long.toml").write_text(
        (tmp_path / "long.toml")
        .read_text()
        .replace("exec sleep 120", "true")
        .replace("sleep 120 & echo $! > child.pid; wait", "true")
    )
    resumed = cli("run", "long.toml", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout
    assert "reused  quick" in resumed.stdout
    assert {"slow", "stubborn", "after"} <= set(re.findall(r"\] ok\s+(\S+)", resumed.stdout))


def test_a_pipeline_error_names_file_line_task_and_field_before_anything_runs(
    tmp_path: Path,
) -> None:
    (tmp_path / "bad.toml").write_text(
        '[tasks.a]\ncmd = "touch ran"\n\n[tasks.b]\ncmd = "true"\ndeps = ["a", "nope"]\n'
    )
    done = cli("run", "bad.toml", cwd=tmp_path)
    assert done.returncode == 2
    assert "bad.toml:6: task 'b', field 'deps': unknown task 'nope'" in done.stderr
    assert not (tmp_path / "ran").exists()
    assert not (tmp_path / ".wave").exists()


def test_the_console_script_is_installed_and_prints_help() -> None:
    script = Path(sys.executable).parent / "wave-executor"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    for command in ("run", "runs", "show", "graph", "report", "demo"):
        assert command in done.stdout
    assert ROOT.is_dir()


def test_trigger_rules_run_a_cleanup_step_after_a_failure_and_leave_an_idle_alert_skipped(
    tmp_path: Path,
) -> None:
    (tmp_path / "pipeline.toml").write_text(
        """
[tasks.work]
cmd = ["python3", "-c", "raise SystemExit(3)"]
[tasks.cleanup]
cmd = ["python3", "-c", "open('cleaned', 'w').write('yes')"]
deps = ["work"]
trigger_rule = "all_done"
[tasks.alert]
cmd = ["python3", "-c", "open('alerted', 'w').write('yes')"]
deps = ["work"]
trigger_rule = "one_failed"
[tasks.quiet]
cmd = ["python3", "-c", "open('quiet', 'w').write('yes')"]
deps = ["cleanup"]
trigger_rule = "one_failed"
"""
    )
    done = cli("run", tmp_path / "pipeline.toml")
    assert done.returncode == 1, done.stdout + done.stderr  # "work" failed
    assert (tmp_path / "cleaned").exists() and (tmp_path / "alerted").exists()
    assert not (tmp_path / "quiet").exists()
    assert "skipped quiet (trigger rule one_failed not met)" in done.stdout
    assert "1 of 4 tasks did not succeed" in done.stdout  # "quiet" is not a failure


def test_an_unknown_trigger_rule_is_refused_naming_the_task_and_the_field(tmp_path: Path) -> None:
    (tmp_path / "pipeline.toml").write_text(
        '[tasks.a]\ncmd = "true"\n[tasks.b]\ncmd = "true"\ndeps = ["a"]\n'
        'trigger_rule = "sometimes"\n'
    )
    done = cli("run", tmp_path / "pipeline.toml")
    assert done.returncode == 2
    assert "sometimes" in done.stderr + done.stdout and "trigger_rule" in done.stderr + done.stdout
