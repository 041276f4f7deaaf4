"""The report's files: the HTML page (from `templates/report.html`), the Markdown summary, the CSVs."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path
from string import Template
from typing import Any

from pipelines.report.charts import report_charts
from pipelines.report.data import Report, Table
from pipelines.report.formats import cell, esc, is_numeric, label, percent, seconds, usd

TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "report.html"
ROWS_SHOWN = 50  # per table on the page; the CSV beside it has them all
MARKDOWN_ROWS = 15
# The tables of each file, in order; the page shows the anomalies first, with a note.
PAGE_TABLES = ("cost_by_account", "cost_by_task", "cost_by_env", "reliability_by_task", "reliability_by_account_env",
               "speed_by_task", "top_errors")  # fmt: skip
SUMMARY_TABLES = ("cost_anomalies", "cost_by_account", "cost_by_task", "cost_by_env", "reliability_by_task",
                  "speed_by_task", "top_errors")  # fmt: skip


def _change(now: Any, before: Any, points: bool = False) -> str:
    if now is None or before is None or (not points and not before):
        return "no comparison: nothing in the previous period"
    if points:
        return f"{(now - before) * 100:+.1f} pts vs previous period"
    return f"{(float(now) - float(before)) / float(before) * 100:+.0f}% vs previous period"


def _rate(totals: dict[str, Any]) -> float | None:
    return totals["failed"] / totals["finished"] if totals["finished"] else None


def _kpis(report: Report) -> str:
    now, before = report.totals, report.previous
    cards = [("Total cost", usd(now["cost"]), _change(now["cost"], before["cost"])),
             ("Runs", f"{now['runs']:,}", _change(now["runs"], before["runs"])),
             ("Failure rate", percent(_rate(now)), _change(_rate(now), _rate(before), points=True)),
             ("Duration p95", seconds(now["p95_s"]), _change(now["p95_s"], before["p95_s"]))]  # fmt: skip
    return "".join(
        f'<div class="kpi">{k}<b data-kpi="{k}">{v}</b><small>{esc(c)}</small></div>' for k, v, c in cards
    )


def _freshness(report: Report) -> str:
    if report.last_sync is None:
        return '<p class="alert" data-freshness>No sync is recorded in this warehouse.</p>'
    age = report.generated - report.last_sync
    hours = age.total_seconds() / 3600
    text = (f"Last sync: <b>{report.last_sync:%Y-%m-%d %H:%M} UTC</b> "
            f"({hours:.1f} h before this report), {report.sync_accounts} account(s)")  # fmt: skip
    if not report.sync_problems:
        return f'<p class="fresh" data-freshness>{text}, each synced without error or gap.</p>'
    items = "".join(f"<li><code>{esc(a)}</code> {esc(p[:300])}</li>" for a, p in report.sync_problems)
    return (f'<div class="alert" data-freshness><p>{text}: <b>{len(report.sync_problems)} need attention</b>; '
            f"their runs may be missing or stale in this report.</p><ul>{items}</ul></div>")  # fmt: skip


def _scope(report: Report) -> str:
    ex = report.excluded
    tests = f"{ex['test_runs']:,} test runs ({usd(ex['test_cost'])})"
    flight = (
        f"{ex['in_flight_runs']:,} runs still queued, running or waiting ({usd(ex['in_flight_cost'])} so far)"
    )
    included = ["runs created in the period, every account and environment"]
    excluded: list[str] = []
    (included if report.include_tests else excluded).append(tests)
    (included if report.include_in_flight else excluded).append(flight)
    text = f"<b>Included:</b> {'; '.join(included)}."
    if excluded:
        text += (f" <b>Excluded:</b> {'; '.join(excluded)}. Set RECOUP_REPORT_INCLUDE_TESTS=true or "
                 "RECOUP_REPORT_INCLUDE_IN_FLIGHT=true to include them.")  # fmt: skip
    return f'<p class="scope">{text} Cost anomalies compare whole days of every run, test runs included.</p>'


def html_table(table: Table, note: str = "") -> str:
    """A table with readable headers, numbers right-aligned, and the rows left out said."""
    wrap = {"error_message"}  # long prose; ids and numbers stay on one line
    numeric = {c for c in table.columns if is_numeric(table, c)}
    head = "".join(f"<th{' class=num' if c in numeric else ''}>{esc(label(c))}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f'<td{" class=num" if c in numeric else " class=wrap" if c in wrap else ""}>'
                         f"{esc(cell(table, c, v))}</td>"
                         for c, v in zip(table.columns, row, strict=True)) + "</tr>"
        for row in table.rows[:ROWS_SHOWN]
    )  # fmt: skip
    count = len(table.rows)
    if not count:
        return f'<section><h2>{esc(table.title)}</h2><p class="note">None in the period{note}.</p></section>'
    shown = (f"showing {ROWS_SHOWN} of {count:,} rows; all are in {table.name}.csv" if count > ROWS_SHOWN
             else f"{count:,} row{'s' if count != 1 else ''}")  # fmt: skip
    return (f'<section><h2>{esc(table.title)}</h2><p class="note">{shown}{note}</p>'
            f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div></section>')  # fmt: skip


def render_html(report: Report) -> str:
    """The page: the template filled with the header, the KPIs, the charts and the tables."""
    days = [report.start + timedelta(days=i) for i in range((report.end - report.start).days + 1)]
    t = report.tables
    tables = html_table(t["cost_anomalies"], "; days whose cost exceeds 3× the median of the 7 days before")
    tables += "".join(html_table(t[name]) for name in PAGE_TABLES)
    return Template(TEMPLATE.read_text()).substitute(
        start=report.start, end=report.end, days=len(days), previous_start=report.previous_start,
        previous_end=report.previous_end, generated=f"{report.generated:%Y-%m-%d %H:%M}",
        freshness=_freshness(report), scope=_scope(report), kpis=_kpis(report), charts=report_charts(report, days),
        tables=tables,
    )  # fmt: skip


def _markdown_table(table: Table) -> list[str]:
    shown = f" (showing {MARKDOWN_ROWS} of {len(table.rows)})" if len(table.rows) > MARKDOWN_ROWS else ""
    lines = [f"## {table.title}{shown}", "", "| " + " | ".join(label(c) for c in table.columns) + " |",
             "|" + "".join("---:|" if is_numeric(table, c) else "---|" for c in table.columns)]  # fmt: skip
    for row in table.rows[:MARKDOWN_ROWS]:
        cells = [cell(table, c, v) for c, v in zip(table.columns, row, strict=True)]
        lines.append("| " + " | ".join(text.replace("|", "\\|") for text in cells) + " |")
    return [*lines, ""]


def render_markdown(report: Report) -> str:
    """The summary: the period, the last sync, the total and the main tables (their first rows)."""
    now = report.totals
    problems = [f"  - `{a}` {p}" for a, p in report.sync_problems]
    last = f"{report.last_sync:%Y-%m-%d %H:%M} UTC" if report.last_sync else "none recorded"
    lines = [f"# Recoup task run costs, {report.start} to {report.end} (UTC)", "",
             f"- Last sync: {last}; {len(problems)} account(s) failed or gapped in it", *problems,
             f"- Total cost: **{usd(now['cost'])}** over {now['runs']:,} runs "
             f"({_change(now['cost'], report.previous['cost'])})",
             f"- Test runs {'included' if report.include_tests else 'excluded'}: {report.excluded['test_runs']:,}; "
             f"in-flight runs {'included' if report.include_in_flight else 'excluded'}: "
             f"{report.excluded['in_flight_runs']:,}", ""]  # fmt: skip
    for name in SUMMARY_TABLES:
        lines += _markdown_table(report.tables[name])
    return "\n".join(lines)


def write_csv(table: Table, path: Path) -> None:
    """Every row of a table, with its column names as the header."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(table.columns)
        writer.writerows(table.rows)
