"""The HTML report in a real headless Chromium (the system's, driven by Playwright).

Under CI (``CI`` set) a missing browser or Playwright fails the test;
elsewhere it is skipped. The screenshot's path is printed (``pytest -s``
shows it; it is also in the assertion messages).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.cli_helpers import cli, copy_example

CHROMIUM = os.environ.get("WAVE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def _need_browser() -> None:
    missing = []
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        missing.append(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("no playwright (pip install -e '.[dev]')")
    if missing:
        if os.environ.get("CI"):
            pytest.fail("; ".join(missing))
        pytest.skip("; ".join(missing))


def test_the_report_renders_in_chromium_with_one_bar_per_attempt_and_no_console_error(
    tmp_path: Path,
) -> None:
    _need_browser()
    from playwright.sync_api import sync_playwright

    etl = copy_example("etl", tmp_path)
    assert cli("run", etl / "pipeline.toml").returncode == 0
    run_id = cli("runs", "--store", etl / ".wave").stdout.splitlines()[1].split()[0]
    report = tmp_path / "report.html"
    assert cli("report", run_id, "-o", report, "--store", etl / ".wave").returncode == 0
    screenshot = tmp_path / "report.png"

    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report.as_uri())
            bars = page.locator("svg.timeline rect.bar")
            assert bars.count() == 8
            retried = page.locator('rect.bar[data-task="rates"]')
            assert retried.count() == 2
            assert page.locator('rect.bar[data-status="failed"]').count() == 1
            box = bars.first.bounding_box()
            assert box is not None and box["width"] > 0 and box["height"] > 0
            assert page.locator("svg.graph g.node").count() == 7
            assert page.locator("rect.bar.critical").count() >= 3
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    print(f"\nscreenshot of the report: {screenshot}")
    assert errors == [], errors
    assert [u for u in requests if not u.startswith("file:")] == []
    assert screenshot.stat().st_size > 10_000, f"screenshot: {screenshot}"
