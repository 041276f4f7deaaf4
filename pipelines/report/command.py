"""`make report`: reads the period's numbers and writes the page, the summary and the CSVs."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

from pipelines.report.data import ReportError, read_report
from pipelines.report.render import render_html, render_markdown, write_csv
from pipelines.report.settings import USAGE, load_report_settings, report_period


def write_report(db: Path, out_dir: Path, days: int = 30, end: date | None = None, include_tests: bool = False,
                 include_in_flight: bool = False) -> list[Path]:  # fmt: skip
    """Writes `<out_dir>/<end date>/` with report.html, summary.md and one CSV per table.

    Returns:
        The paths written: the page, the summary, then the CSVs.

    Raises:
        ReportError: no warehouse, no models, or no run in the period.
    """
    start, end = report_period(days, end)
    report = read_report(db, start, end, include_tests, include_in_flight)
    if not report.totals["runs"] and not any(report.excluded.values()):
        raise ReportError(f"{db} holds no runs created between {start} and {end}")
    folder = out_dir / f"{end}"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for table in report.tables.values():
        path = folder / f"{table.name}.csv"
        write_csv(table, path)
        written.append(path)
    (folder / "summary.md").write_text(render_markdown(report))
    (folder / "report.html").write_text(render_html(report))
    return [folder / "report.html", folder / "summary.md", *written]


def main() -> int:
    """Writes the report as the environment says; prints the paths. Exit 1 without data, 2 on a bad setting."""
    try:
        settings = load_report_settings()
    except ValueError:
        print(f"report: {USAGE}", file=sys.stderr)
        return 2
    try:
        paths = write_report(settings.db, settings.out_dir, settings.days, settings.end, settings.include_tests,
                             settings.include_in_flight)  # fmt: skip
    except (ReportError, OSError) as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0
