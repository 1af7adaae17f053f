"""Reporters of a run: the HTML report (jinja2, inline SVG) and the pytest-benchmark JSON.

`write_reports(run_dir)` runs every registered reporter and returns the HTML path.
Other parts add reporters with `register_reporter` or HTML sections with
`harness.report.base.register_section`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from harness.files import atomic_write_text
from harness.record.run_record import load_record
from harness.report.base import SECTIONS, Reporter, register_section  # noqa: F401
from harness.report.benchmark_json import write_benchmark_json
from harness.report.html import render_html


class HtmlReporter(Reporter):
    name = "html"

    def write(self, record: dict, run_dir: Path) -> Path:
        path = Path(run_dir) / "index.html"
        return atomic_write_text(path, render_html(record, run_dir))


class BenchmarkJsonReporter(Reporter):
    name = "benchmark-json"

    def write(self, record: dict, run_dir: Path) -> Path:
        return write_benchmark_json(record, run_dir)


REPORTERS: list[Reporter] = [HtmlReporter(), BenchmarkJsonReporter()]


def register_reporter(reporter: Reporter) -> None:
    if all(type(r) is not type(reporter) for r in REPORTERS):
        REPORTERS.append(reporter)


#: modules that add report sections/reporters: each is imported before every render (so
#: `swaplab report` re-renders them too) and its `register()` called if it has one
#: (registration is idempotent); a missing module is skipped.
EXTENSION_MODULES: list[str] = ["harness.report.timeseries", "harness.report.trace",
                                  "harness.report.backends"]


def _load_extensions() -> None:
    for name in EXTENSION_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        register = getattr(module, "register", None)
        if callable(register):
            register()


def write_reports(run_dir: Path | str) -> Path:
    """Render every reporter for the run folder; returns the HTML report's path."""
    _load_extensions()
    run_dir = Path(run_dir)
    record = load_record(run_dir)
    html_path = run_dir / "index.html"
    for r in REPORTERS:
        out = r.write(record, run_dir)
        if isinstance(r, HtmlReporter) and out:
            html_path = out
    return html_path
