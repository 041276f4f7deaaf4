"""`make report`: the cost report (HTML with charts, Markdown summary, one CSV per table).

Reads the analysts' warehouse read-only, so it never blocks or is blocked by a sync. The
period is the last RECOUP_REPORT_DAYS UTC days (default 30) ending today, or
RECOUP_REPORT_END when given.
"""

from __future__ import annotations

import csv
import html
import os
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)


@dataclass
class Table:
    """One table of the report: its rows as shown, and how each column is formatted."""

    name: str
    title: str
    columns: list[str]
    rows: list[tuple]
    formats: dict[str, str]


def usd(value: Any) -> str:
    return "–" if value is None else f"${value:,.2f}"


def percent(value: Any) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def seconds(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


FORMATTERS = {"usd": usd, "percent": percent, "seconds": seconds, "int": lambda v: f"{v:,}", "text": str}


def _cost_by(key: str) -> str:
    """Totals of analytics.cost_by_task (one row per account and task) by one of its keys."""
    return f"""
        select {key}, sum(run_count)::integer as run_count,
               sum(succeeded_run_count)::integer as succeeded_run_count, sum(total_cost_usd) as total_cost_usd,
               sum(total_cost_usd) / nullif(sum(succeeded_run_count), 0) as cost_per_successful_run_usd
        from analytics.cost_by_task group by all order by total_cost_usd desc, {key}"""


COST_FORMATS = {"run_count": "int", "succeeded_run_count": "int", "total_cost_usd": "usd",
                "cost_per_successful_run_usd": "usd"}  # fmt: skip
QUERIES = {
    "cost_by_account": ("Cost by account", _cost_by("account_id"), COST_FORMATS),
    "cost_by_task": ("Cost by task", _cost_by("task_identifier"), COST_FORMATS),
    "reliability_by_task": ("Reliability by task", """
        select task_identifier, run_count, finished_run_count, failed_run_count, failure_rate, retried_run_count
        from analytics.reliability_by_task order by failure_rate desc nulls last, task_identifier""",
        {"run_count": "int", "finished_run_count": "int", "failed_run_count": "int", "failure_rate": "percent",
         "retried_run_count": "int"}),
    "speed_by_task": ("Speed by task", """
        select task_identifier, run_count, duration_p50_s, duration_p95_s, queue_wait_p50_s, queue_wait_p95_s
        from analytics.speed_by_task order by duration_p95_s desc nulls last, task_identifier""",
        {"run_count": "int", "duration_p50_s": "seconds", "duration_p95_s": "seconds",
         "queue_wait_p50_s": "seconds", "queue_wait_p95_s": "seconds"}),
    "top_errors": ("Top errors", """
        select task_identifier, error_message, run_count from analytics.top_errors
        where error_rank <= 3 order by run_count desc, task_identifier, error_message limit 20""",
        {"run_count": "int"}),
    "daily_cost": ("Daily cost by account", """
        select day, account_id, sum(total_cost_usd) as total_cost_usd, sum(run_count)::integer as run_count
        from analytics.daily_cost, staging.report_period
        where day between period_start and period_end group by all order by day, account_id""",
        {"total_cost_usd": "usd", "run_count": "int"}),
}  # fmt: skip


class ReportError(Exception):
    """The report cannot be written; the message says why in one line."""


def read_tables(db: Path, start: date, end: date) -> list[Table]:
    """Runs every report query over the period [start, end] (UTC days, inclusive)."""
    if not db.exists():
        raise ReportError(f"no warehouse at {db}; run `make sync` (or `make demo`) first")
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        raise ReportError(f"cannot open {db}: {str(exc).splitlines()[0]}") from None
    with con:
        con.execute("set variable period_start = ?", [start])
        con.execute("set variable period_end = ?", [end])
        tables = []
        for name, (title, sql, formats) in QUERIES.items():
            try:
                result = con.execute(sql)
            except duckdb.CatalogException:
                raise ReportError(f"{db} has no analytics models yet; run `make sync` first") from None
            columns = [d[0] for d in result.description]
            tables.append(Table(name, title, columns, result.fetchall(), formats))
    return tables


def _bar_chart(title: str, rows: list[tuple[str, float]], fmt: str) -> str:
    """A horizontal bar chart as inline SVG."""
    rows = rows[:12]
    top = max((v for _, v in rows if v), default=0) or 1
    height = 28 + 22 * len(rows)
    bars = []
    for i, (label, value) in enumerate(rows):
        y = 24 + i * 22
        width = 420 * (value or 0) / top
        bars.append(
            f'<text x="210" y="{y + 14}" text-anchor="end" class="label">{html.escape(str(label)[:30])}</text>'
            f'<rect x="216" y="{y}" width="{width:.1f}" height="16" fill="{PALETTE[0]}"/>'
            f'<text x="{222 + width:.1f}" y="{y + 13}" class="value">{FORMATTERS[fmt](value)}</text>'
        )
    return (f'<figure><figcaption>{html.escape(title)}</figcaption><svg viewBox="0 0 760 {height}" '
            f'role="img" aria-label="{html.escape(title)}">{"".join(bars)}</svg></figure>')  # fmt: skip


def _stacked_daily(rows: list[tuple], start: date, end: date) -> str:
    """Daily cost, one stacked bar per day, one colour per account (top 9, then 'others')."""
    totals: dict[str, float] = {}
    for _, account, cost, _ in rows:
        totals[account] = totals.get(account, 0) + (cost or 0)
    top = [a for a, _ in sorted(totals.items(), key=lambda kv: -kv[1])[:9]]
    series = [*top, "others"] if len(totals) > len(top) else top
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    stack = {(d, s): 0.0 for d in days for s in series}
    for day, account, cost, _ in rows:
        stack[(day, account if account in top else "others")] += float(cost or 0)  # geometry, not money
    peak = max((sum(stack[(d, s)] for s in series) for d in days), default=0) or 1
    width = 680 / max(1, len(days))
    parts = []
    for i, day in enumerate(days):
        y = 260.0
        for j, name in enumerate(series):
            h = 230 * stack[(day, name)] / peak
            y -= h
            if h > 0:
                parts.append(f'<rect x="{60 + i * width:.1f}" y="{y:.1f}" width="{width * 0.85:.1f}" height="{h:.1f}" '
                             f'fill="{PALETTE[j % len(PALETTE)]}"><title>{day} {html.escape(name)}: {usd(stack[(day, name)])}</title></rect>')  # fmt: skip
        if i % max(1, len(days) // 8) == 0:
            parts.append(f'<text x="{60 + i * width:.1f}" y="276" class="label">{day:%b %d}</text>')
    parts.append(f'<text x="55" y="34" text-anchor="end" class="label">{usd(peak)}</text>'
                 '<text x="55" y="260" text-anchor="end" class="label">$0</text>')  # fmt: skip
    legend = "".join(
        f'<span><i style="background:{PALETTE[j % len(PALETTE)]}"></i>{html.escape(name[:13])}</span>'
        for j, name in enumerate(series)
    )
    return (f'<figure><figcaption>Daily cost by account (USD, stacked)</figcaption>'
            f'<svg viewBox="0 0 760 285" role="img" aria-label="Daily cost by account">{"".join(parts)}</svg>'
            f'<div class="legend">{legend}</div></figure>')  # fmt: skip


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(
            f"<td>{html.escape(FORMATTERS[table.formats.get(c, 'text')](v) if v is not None else '–')}</td>"
            for c, v in zip(table.columns, row, strict=True)
        ) + "</tr>"
        for row in table.rows[:50]
    )  # fmt: skip
    return f"<h2>{html.escape(table.title)}</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:980px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0} .kpis{display:flex;gap:1rem;flex-wrap:wrap}
.kpi{border:1px solid #ddd;border-radius:8px;padding:.6rem 1rem;min-width:150px}
.kpi b{display:block;font-size:1.4rem} figure{margin:1.5rem 0} figcaption{font-weight:600;margin-bottom:.3rem}
svg{width:100%;height:auto} .label{font-size:11px;fill:#444} .value{font-size:11px;fill:#222}
.legend span{display:inline-block;margin-right:.8rem;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
table{border-collapse:collapse;width:100%;font-size:13px} th,td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left}
td:not(:first-child){font-variant-numeric:tabular-nums}
"""


def render_html(tables: dict[str, Table], start: date, end: date, generated: datetime) -> str:
    by_task = tables["cost_by_task"].rows
    total = sum(r[3] or 0 for r in by_task)
    runs = sum(r[1] for r in by_task)
    failed = sum(r[3] for r in tables["reliability_by_task"].rows)
    finished = sum(r[2] for r in tables["reliability_by_task"].rows)
    kpis = [("Total cost", usd(total)), ("Runs", f"{runs:,}"), ("Failure rate", percent(failed / finished if finished else None)),
            ("Accounts", f"{len(tables['cost_by_account'].rows):,}")]  # fmt: skip
    charts = [
        _stacked_daily(tables["daily_cost"].rows, start, end),
        _bar_chart("Cost by task (USD)", [(r[0], r[3]) for r in by_task], "usd"),
        _bar_chart(
            "Failure rate by task", [(r[0], r[4]) for r in tables["reliability_by_task"].rows], "percent"
        ),
        _bar_chart("Duration p95 by task", [(r[0], r[3]) for r in tables["speed_by_task"].rows], "seconds"),
    ]
    sections = "".join(_html_table(tables[n]) for n in ("cost_by_account", "cost_by_task", "reliability_by_task",
                                                        "speed_by_task", "top_errors"))  # fmt: skip
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Recoup task run costs {start} – {end}</title><style>{STYLE}</style></head><body>
<h1>Recoup task run costs</h1><p class="sub">{start} to {end} (UTC days) · generated {generated:%Y-%m-%d %H:%M} UTC</p>
<div class="kpis">{"".join(f'<div class="kpi">{k}<b data-kpi="{k}">{v}</b></div>' for k, v in kpis)}</div>
{"".join(charts)}{sections}</body></html>"""


def render_markdown(tables: dict[str, Table], start: date, end: date) -> str:
    by_task = tables["cost_by_task"].rows
    total = sum(r[3] or 0 for r in by_task)
    lines = [f"# Recoup task run costs, {start} to {end} (UTC)", "",
             f"- Total cost: **{usd(total)}** over {sum(r[1] for r in by_task):,} runs", ""]  # fmt: skip
    for name in ("cost_by_account", "cost_by_task", "reliability_by_task", "speed_by_task", "top_errors"):
        table = tables[name]
        lines += [f"## {table.title}", "", "| " + " | ".join(table.columns) + " |",
                  "|" + "---|" * len(table.columns)]  # fmt: skip
        for row in table.rows[:15]:
            cells = [FORMATTERS[table.formats.get(c, "text")](v) if v is not None else "–"
                     for c, v in zip(table.columns, row, strict=True)]  # fmt: skip
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def write_report(db: Path, out_dir: Path, days: int = 30, end: date | None = None) -> list[Path]:
    """Writes `<out_dir>/<end date>/` with report.html, summary.md and one CSV per table."""
    generated = datetime.now(UTC)
    end = end or generated.date()
    start = end - timedelta(days=days - 1)
    tables = {t.name: t for t in read_tables(db, start, end)}
    if not tables["cost_by_task"].rows:
        raise ReportError(f"{db} holds no runs created between {start} and {end}")
    folder = out_dir / f"{end}"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for table in tables.values():
        path = folder / f"{table.name}.csv"
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(table.columns)
            writer.writerows(table.rows)
        written.append(path)
    (folder / "summary.md").write_text(render_markdown(tables, start, end))
    (folder / "report.html").write_text(render_html(tables, start, end, generated))
    return [folder / "report.html", folder / "summary.md", *written]


def main() -> int:
    out_dir = Path(os.environ.get("RECOUP_REPORTS_DIR") or "reports")
    try:
        days = int(os.environ.get("RECOUP_REPORT_DAYS") or 30)
        end_text = os.environ.get("RECOUP_REPORT_END")
        end = date.fromisoformat(end_text) if end_text else None
        if days < 1:
            raise ValueError
    except ValueError:
        print("report: RECOUP_REPORT_DAYS must be a whole number >= 1 and RECOUP_REPORT_END a date (YYYY-MM-DD)",
              file=sys.stderr)  # fmt: skip
        return 2
    if os.environ.get("RECOUP_DB"):
        db = Path(os.environ["RECOUP_DB"])
    else:  # the .dlt/ files may name it; reading them needs dlt, a heavy import the report avoids otherwise
        from pipelines.config import database_path

        db = database_path()
    try:
        paths = write_report(db, out_dir, days, end)
    except (ReportError, OSError) as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
