"""The report's files: the HTML page (from `templates/report.html`), the Markdown summary, the CSVs."""

from __future__ import annotations

import csv
from pathlib import Path
from string import Template
from typing import Any

from pipelines.report.charts import report_charts
from pipelines.report.data import Report, Table
from pipelines.report.formats import cell, esc, is_numeric, label, usd
from pipelines.report.notes import chart_days, comparison, completeness, coverage, freshness, kpis, scope

TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "report.html"
ROWS_SHOWN = 50  # per table on the page; the CSV beside it has them all
MARKDOWN_ROWS = 15
# The tables of each file, in order; the page shows the anomalies first, with a note.
PAGE_TABLES = ("cost_movers", "cost_by_account", "cost_by_task", "cost_by_env", "top_runs", "cost_by_tag",
               "reliability_by_task", "reliability_by_account_env", "speed_by_task", "top_errors")  # fmt: skip
SUMMARY_TABLES = ("cost_anomalies", "cost_movers", "cost_by_account", "cost_by_task", "cost_by_env", "top_runs",
                  "reliability_by_task", "speed_by_task", "top_errors")  # fmt: skip
NOTES = {"cost_by_tag": "; a run with several tags counts under each, so rows do not add up to the total",
         "top_errors": "; only failed runs whose error message is known"}  # fmt: skip


def _page_order(table: Table) -> tuple[list[int], int]:
    """The columns' order on the page, and how many lead as keys (the names before any number).

    The money columns come right after the keys, so that a phone shows them beside the name.
    """
    keys = 0
    while keys < len(table.columns) and not is_numeric(table, table.columns[keys]):
        keys += 1
    money = [i for i, c in enumerate(table.columns) if table.formats.get(c) in ("usd", "signed_usd")]
    rest = [i for i in range(keys, len(table.columns)) if i not in money]
    return list(range(keys)) + money + rest, keys


def html_table(table: Table, note: str = "") -> str:
    """A table with readable headers, numbers right-aligned, and the rows left out said."""
    wrap = {"error_message"}  # long prose; ids and numbers stay on one line
    order, keys = _page_order(table)
    columns = [table.columns[i] for i in order]
    numeric = {c for c in columns if is_numeric(table, c)}
    kinds = {
        c: "num" if c in numeric else "wrap" if c in wrap else "key" if c in columns[:keys] else ""
        for c in columns
    }

    def kind(c: str) -> str:
        return f" class={kinds[c]}" if kinds[c] else ""

    head = "".join(f"<th{' class=num' if c in numeric else ''}>{esc(label(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td{kind(c)}>{esc(cell(table, c, row[i]))}</td>" for c, i in zip(columns, order, strict=True))
        + "</tr>"
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
    days = (report.end - report.start).days + 1
    t = report.tables
    tables = html_table(t["cost_anomalies"], "; days whose cost exceeds 3× the median of the 7 days before")
    partial = comparison(report)
    notes = {**NOTES, "cost_movers": f"; {partial}" if partial else ""}
    tables += "".join(html_table(t[name], notes.get(name, "")) for name in PAGE_TABLES)
    return Template(TEMPLATE.read_text()).substitute(
        start=report.start, end=report.end, days=days, previous_start=report.previous_start,
        previous_end=report.previous_end, generated=f"{report.generated:%Y-%m-%d %H:%M}",
        comparison=f" ({esc(partial)})" if partial else "", coverage=coverage(report),
        completeness=completeness(report), freshness=freshness(report), scope=scope(report), kpis=kpis(report),
        charts=report_charts(report, chart_days(report)), tables=tables,
    )  # fmt: skip


def render_catalog(rows: list[dict[str, Any]], generated: str) -> str:
    """catalog.html: each analytics relation, what a row is, what it is built from, and its columns."""
    relations: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        relations.setdefault(row["relation"], []).append(row)
    sections = []
    for name, columns in relations.items():
        first = columns[0]
        body = "".join(f"<tr><td class=key><code>{esc(c['column_name'])}</code></td><td>{esc(c['data_type'])}</td>"
                       f"<td class=wrap>{esc(c['description'])}</td></tr>" for c in columns)  # fmt: skip
        sections.append(
            f'<section id="{esc(name)}"><h2><code>{esc(name)}</code> <small>({esc(first["relation_kind"])})</small></h2>'
            f'<p>{esc(first["relation_description"])}</p><p class="note">Built from: {esc(first["built_from"] or "–")}</p>'
            f'<div class="scroll"><table><thead><tr><th>Column</th><th>Type</th><th>Description</th></tr></thead>'
            f"<tbody>{body}</tbody></table></div></section>"
        )
    index = " · ".join(f'<a href="#{esc(n)}">{esc(n.removeprefix("analytics."))}</a>' for n in relations)
    style = TEMPLATE.read_text().split("<style>", 1)[1].split("</style>", 1)[0]
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>Recoup analytics catalog</title><style>{style}</style>'
            f"</head><body><h1>The analytics catalog</h1><p class=period>Every table and view analysts query, from "
            f"<code>analytics.catalog</code> · generated {esc(generated)} UTC</p><p>{index}</p>{''.join(sections)}"
            "</body></html>")  # fmt: skip


def _markdown_table(table: Table) -> list[str]:
    if not table.rows:  # no empty table: one line says there is nothing
        return [f"## {table.title}", "", "None in the period.", ""]
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
             f"- Total cost: **{usd(now['cost'])}** over {now['runs']:,} runs (complete UTC days)",
             f"- Test runs {'counted' if report.include_tests else 'left out'}: {report.excluded['test_runs']:,} "
             f"({usd(report.excluded['test_cost'])}); in-flight runs "
             f"{'counted' if report.include_in_flight else 'left out'}: {report.excluded['in_flight_runs']:,} "
             f"({usd(report.excluded['in_flight_cost'])} so far)"]  # fmt: skip
    if report.data_since and report.data_since > report.previous_start:
        lines.append(f"- Data since {report.data_since}: no run older than that was ever synced")
    if report.month:
        month = report.month
        lines.append(f"- Month to date ({month['month_start']:%B %Y}, {month['days_counted']} of "
                     f"{month['days_in_month']} days): {usd(month['cost_usd'])}, projected "
                     f"{usd(month['projected_cost_usd'])}; last month {usd(month['previous_month_cost_usd'])}")  # fmt: skip
    if report.breakdown:
        split = report.breakdown
        lines.append(f"- Failed runs cost {usd(split['failed_cost_usd'])}; compute {usd(split['compute_cost_usd'])}"
                     f" + base {usd(split['base_cost_usd'])}")  # fmt: skip
    lines.append("")
    for name in SUMMARY_TABLES:
        lines += _markdown_table(report.tables[name])
    return "\n".join(lines)


def write_csv(table: Table, path: Path) -> None:
    """Every row of a table, with its column names as the header."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(table.columns)
        writer.writerows(table.rows)
