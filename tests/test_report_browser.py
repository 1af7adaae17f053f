"""The report in headless Chromium (Debian `chromium`): it loads offline with no console
errors, its key parts are in the DOM, hostile strings stay text; a screenshot is kept as
a test artifact (reports/test-artifacts/report.png, and report.png in the run folder)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers.records import EVIL, REPO
from test_report_history import _compared_run

from harness.report.chromium import ChromiumError, check_report, find_chromium

pytestmark = pytest.mark.skipif(find_chromium() is None,
                                reason="chromium not installed (scripts/bootstrap installs "
                                       "the Debian package)")

ARTIFACTS = Path(os.environ.get("SWAPLAB_TEST_ARTIFACTS", REPO / "reports" / "test-artifacts"))


def test_report_in_headless_chromium(tmp_path):
    from harness.report import write_reports
    _, cand = _compared_run(tmp_path)
    html = write_reports(cand)
    shot = cand / "report.png"
    try:
        check = check_report(html, screenshot=shot, timeout=120)
    except ChromiumError as e:
        pytest.fail(str(e))
    assert check.console_errors == [], check.console_errors
    dom = check.dom
    for part in ('class="verdicts"', 'class="comparison"', 'class="device"',
                 'class="chart overlay"', 'class="chart trend"', 'class="quality"',
                 'href="trace.json"', "Per-frame latency over time"):
        assert part in dom, part
    assert dom.count("<svg") >= 5 and dom.count("<img") >= 4
    assert "<script>alert(1)</script>" not in dom and "&lt;script&gt;alert(1)" in dom
    assert EVIL not in dom.replace("&lt;", "<").split("<body", 1)[0]  # not in <head>
    assert shot.is_file() and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "report.png")


def test_chromium_check_catches_console_errors(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><html><body><p>x</p>"
                    "<script>missingFunction();</script></body></html>")
    check = check_report(page, timeout=120)
    assert any("missingFunction" in line for line in check.console_errors)


def test_swaplab_report_screenshot(tmp_path, capsys):
    from harness.cli import main
    _, cand = _compared_run(tmp_path)
    assert main(["report", str(cand), "--screenshot"]) == 0
    assert (cand / "report.png").is_file()
    assert capsys.readouterr().out.strip().endswith("report.png")
