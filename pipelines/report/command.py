"""`recoup report`: reads the period's numbers and writes the page, the summary and the CSVs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pipelines.config import ReportSettings, StorageSettings
from pipelines.report.data import ReportError, read_report
from pipelines.report.render import render_catalog, render_html, render_markdown, write_csv
from pipelines.storage.reader import describe


def report_period(days: int, end: date | None = None) -> tuple[date, date]:
    """The first and last UTC day of a period of `days` days ending `end`, inclusive.

    By default the period ends yesterday: the last complete UTC day, so that two periods are
    like for like and the last bar is a whole day (today is shown apart, as "so far").
    """
    end = end or datetime.now(UTC).date() - timedelta(days=1)
    return end - timedelta(days=days - 1), end


def write_report(storage: StorageSettings, settings: ReportSettings) -> list[Path]:
    """Writes `<out_dir>/<end date>/` with report.html, summary.md, catalog.html and one CSV per table.

    Returns:
        The paths written: the page, the summary, the catalog, then the CSVs.

    Raises:
        NoWarehouse: there is no warehouse yet.
        ReportError: no models, or no run in the period.
    """
    start, end = report_period(settings.days, settings.end)
    report = read_report(storage, start, end, settings.include_tests, settings.include_in_flight,
                         settings.account_names)  # fmt: skip
    if not report.totals["runs"] and not any(report.excluded.values()):
        raise ReportError(f"{describe(storage)} holds no runs created between {start} and {end}")
    folder = settings.out_dir / f"{end}"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for table in report.tables.values():
        path = folder / f"{table.name}.csv"
        write_csv(table, path)
        written.append(path)
    (folder / "summary.md").write_text(render_markdown(report))
    (folder / "report.html").write_text(render_html(report))
    (folder / "catalog.html").write_text(render_catalog(report.catalog, f"{report.generated:%Y-%m-%d %H:%M}"))
    return [folder / "report.html", folder / "summary.md", folder / "catalog.html", *written]
