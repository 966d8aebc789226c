"""graph, report and demo: mermaid and dot text, the self-contained HTML report, the demo."""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli_helpers import cli, copy_example
from wave_executor.report import Bar, Timeline, critical_path, render_report
from wave_executor.report.html import assign_slots


def test_graph_prints_the_example_as_mermaid_and_as_dot(tmp_path: Path) -> None:
    etl = copy_example("etl", tmp_path)
    mermaid = cli("graph", etl / "pipeline.toml")
    assert mermaid.returncode == 0, mermaid.stderr
    assert mermaid.stdout.startswith("flowchart LR\n")
    assert "    extract --> validate\n" in mermaid.stdout
    dot = cli("graph", etl / "pipeline.toml", "--format", "dot")
    assert dot.stdout.startswith("digraph pipeline {")
    assert '    "summary" -> "publish";' in dot.stdout
    assert dot.stdout.count("->") == mermaid.stdout.count("-->") == 7


def test_slots_reuse_a_slot_once_it_is_free_and_the_critical_path_follows_the_last_end() -> None:
    bars = [
        Bar("a", 1, "success", 0, 2),
        Bar("b", 1, "success", 0, 1),
        Bar("c", 1, "success", 1, 3),
    ]
    assert assign_slots(bars) == [1, 0, 0]
    assert critical_path({"c": ["a", "b"]}, {"a": 2.0, "b": 1.0, "c": 3.0}) == ["a", "c"]


def test_the_report_has_one_bar_per_attempt_and_fetches_nothing() -> None:
    bars = [
        Bar("a", 1, "failed", 0, 1, "boom"),
        Bar("a", 2, "success", 2, 3),
        Bar("b", 1, "success", 3, 4),
    ]
    page = render_report(
        "t", [Timeline("run", bars, {"b": ["a"]}, {"a": "success", "b": "success"})]
    )
    assert len(re.findall(r'<rect class="bar ', page)) == 3
    assert 'data-task="a" data-attempt="2"' in page and "a #2" in page
    assert "<script" not in page and not re.search(r"(src|href)=", page)
    assert page.count(" critical") >= 2


def test_report_of_a_recorded_run_shows_the_retried_attempt(tmp_path: Path) -> None:
    etl = copy_example("etl", tmp_path)
    assert cli("run", etl / "pipeline.toml").returncode == 0
    run_id = cli("runs", "--store", etl / ".wave").stdout.splitlines()[1].split()[0]
    out = tmp_path / "report.html"
    done = cli("report", run_id, "-o", out, "--store", etl / ".wave")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(8 attempts)" in done.stdout
    page = out.read_text()
    assert len(re.findall(r'<rect class="bar ', page)) == 8
    assert 'data-task="rates" data-attempt="1" data-status="failed"' in page


def test_demo_prints_both_timelines_side_by_side_and_writes_its_report(tmp_path: Path) -> None:
    done = cli("demo", "-o", tmp_path / "demo.html")
    assert done.returncode == 0, done.stderr
    assert re.search(r"Level by level .*\s{4}Dependency-driven", done.stdout)
    assert re.search(
        r"^E \|\s{10}#\|\s+10\.0\.\.11\.0\s+E \| #\s+\|\s+1\.0\.\. 2\.0$", done.stdout, re.M
    )
    assert "E ends at t=2.0 driven by dependencies and at t=11.0 by levels" in done.stdout
    page = (tmp_path / "demo.html").read_text()
    assert len(re.findall(r'<rect class="bar ', page)) == 10
