"""How the report looks: the HTML page (from `templates/report.html`) and the Markdown summary."""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.report import Report, Table

TEMPLATE = Path(__file__).resolve().parent / "templates" / "report.html"
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac")  # fmt: skip
STATUS_COLOURS = {"succeeded": "#59a14f", "failed": "#e15759", "canceled": "#bab0ac", "expired": "#9c755f",
                  "queued": "#a0cbe8", "running": "#4e79a7", "waiting": "#76b7b2", "unknown": "#b07aa1"}  # fmt: skip
LABELS = {
    "account_id": "Account", "task_identifier": "Task", "env_name": "Environment", "day": "Day",
    "run_count": "Runs", "succeeded_run_count": "Succeeded", "finished_run_count": "Finished",
    "failed_run_count": "Failed", "retried_run_count": "Retried", "failure_rate": "Failure rate",
    "total_cost_usd": "Cost", "cost_per_successful_run_usd": "Cost per successful run",
    "duration_p50_s": "Duration p50", "duration_p95_s": "Duration p95", "queue_wait_p50_s": "Queue wait p50",
    "queue_wait_p95_s": "Queue wait p95", "error_message": "Error", "trailing_median_usd": "Median of 7 days before",
    "ratio": "Times the median", "status_group": "Status",
}  # fmt: skip
ROWS_SHOWN = 50


def usd(value: Any) -> str:
    """A dollar amount with cents (four decimals below one cent); a dash for None."""
    if value is None:
        return "–"
    return f"${value:,.4f}" if 0 < abs(value) < 0.01 else f"${value:,.2f}"


def percent(value: Any) -> str:
    """A share (0.25) as a percentage with one decimal (`25.0%`); a dash for None."""
    return "–" if value is None else f"{value * 100:.1f}%"


def seconds(value: Any) -> str:
    """A duration in seconds, or in minutes from two minutes up; a dash for None."""
    if value is None:
        return "–"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


FORMATTERS: dict[str, Callable[[Any], str]] = {
    "usd": usd, "percent": percent, "seconds": seconds, "int": lambda v: f"{v:,}", "text": str,
    "day": lambda v: f"{v:%Y-%m-%d}", "ratio": lambda v: "–" if v is None else f"{v:.1f}×",
}  # fmt: skip


def _cell(table: Table, column: str, value: Any) -> str:
    return "–" if value is None else FORMATTERS[table.formats.get(column, "text")](value)


def _esc(value: Any) -> str:
    return html.escape(str(value))


# -- charts: inline SVG, 760 units wide; ticks on both axes ----------------------------------------

WIDTH, LEFT, TOP, PLOT_H = 760, 104, 12, 220


def _ticks(peak: float) -> list[float]:
    """Round steps from 0 past the peak: 1, 2, 2.5 or 5 times a power of ten."""
    if peak <= 0:
        return [0.0, 1.0]
    rough = peak / 4
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= rough)
    return [i * step for i in range(math.ceil(peak / step - 1e-9) + 1)]


def _tick_label(value: float, fmt: str, step: float) -> str:
    """A tick with as many decimals as its step needs ($0.025, 2.5 min, 40)."""
    decimals = next(d for d in range(8) if abs(step * 10**d - round(step * 10**d)) < 1e-6)
    if fmt == "usd":
        return f"${value:,.{0 if decimals == 0 else max(2, decimals)}f}"
    number = f"{value:,.{decimals}f}"
    return {"minutes": f"{number} min", "seconds": f"{number} s"}.get(fmt, number)


def _axes(days: list[date], peak: float, fmt: str) -> tuple[list[str], Callable[[float], float], float]:
    """Grid lines, y tick labels and x day labels; returns them, the y scale and the slot width."""
    unit = 60 if fmt == "seconds" and peak >= 120 else 1  # ticks at round minutes, not 200 s
    ticks = [t * unit for t in _ticks(peak / unit)]
    fmt = "minutes" if unit == 60 else fmt
    top, slot = ticks[-1] or 1, (WIDTH - LEFT - 10) / max(1, len(days))
    y = lambda v: TOP + PLOT_H * (1 - v / top)  # noqa: E731
    step = (ticks[1] - ticks[0]) / unit
    parts = [f'<line x1="{LEFT}" x2="{WIDTH - 10}" y1="{y(t):.1f}" y2="{y(t):.1f}" class="grid"/>'
             f'<text x="{LEFT - 6}" y="{y(t) + 4:.1f}" text-anchor="end" class="tick">{_tick_label(t / unit, fmt, step)}</text>'
             for t in ticks]  # fmt: skip
    every = max(1, math.ceil(len(days) / 7))
    for i, day in enumerate(days):
        if i % every == 0:
            x = LEFT + (i + 0.5) * slot
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP + PLOT_H}" y2="{TOP + PLOT_H + 4}" class="axis"/>'
                         f'<text x="{x:.1f}" y="{TOP + PLOT_H + 18}" text-anchor="middle" class="tick">{day:%b %d}</text>')  # fmt: skip
    return parts, y, slot


def _figure(
    title: str, parts: list[str], legend: list[tuple[str, str]], height: int = TOP + PLOT_H + 26
) -> str:
    keys = "".join(f'<span><i style="background:{c}"></i>{_esc(n)}</span>' for n, c in legend)
    return (f'<figure><figcaption>{_esc(title)}</figcaption><div class="chart"><svg viewBox="0 0 {WIDTH} {height}" '
            f'role="img" aria-label="{_esc(title)}">{"".join(parts)}</svg></div>'
            f'{f"<div class=legend>{keys}</div>" if keys else ""}</figure>')  # fmt: skip


def stacked_bars(title: str, days: list[date], series: dict[str, dict[date, float]], fmt: str,
                 colours: dict[str, str] | None = None) -> str:  # fmt: skip
    """One bar per day, one coloured segment per series."""
    colour = {name: (colours or {}).get(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(series)}
    peak = max((sum(float(s.get(d) or 0) for s in series.values()) for d in days), default=0)
    parts, y, slot = _axes(days, peak, fmt)
    for i, day in enumerate(days):
        base = 0.0
        for name, values in series.items():
            value = float(values.get(day) or 0)
            if value > 0:
                parts.append(f'<rect x="{LEFT + i * slot + slot * 0.1:.1f}" y="{y(base + value):.1f}" '
                             f'width="{slot * 0.8:.1f}" height="{y(base) - y(base + value):.1f}" fill="{colour[name]}">'
                             f'<title>{day} {_esc(name)}: {FORMATTERS[fmt](values[day])}</title></rect>')  # fmt: skip
            base += value
    return _figure(title, parts, list(colour.items()))


def lines(title: str, days: list[date], series: dict[str, dict[date, float]], fmt: str) -> str:
    """One line per series across the days; a day without a value breaks the line."""
    peak = max((float(v) for s in series.values() for v in s.values() if v is not None), default=0)
    parts, y, slot = _axes(days, peak, fmt)
    legend = []
    for j, (name, values) in enumerate(series.items()):
        colour = PALETTE[j % len(PALETTE)]
        path, pen = [], "M"
        for i, day in enumerate(days):
            if values.get(day) is None:
                pen = "M"
                continue
            x = LEFT + (i + 0.5) * slot
            path.append(f"{pen}{x:.1f},{y(float(values[day])):.1f}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y(float(values[day])):.1f}" r="2.5" fill="{colour}">'
                         f'<title>{day} {_esc(name)}: {FORMATTERS[fmt](values[day])}</title></circle>')  # fmt: skip
            pen = "L"
        parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
        legend.append((name, colour))
    return _figure(title, parts, legend)


def bars(title: str, rows: list[tuple[str, Any]], fmt: str, of: int) -> str:
    """Horizontal bars in HTML, a value on each; the title says when only the top ones are drawn."""
    rows = rows[:12]
    top = max((float(v) for _, v in rows if v), default=0) or 1
    items = "".join(
        f'<div class="bar"><span class="name" title="{_esc(label)}">{_esc(label)}</span>'
        f'<span class="track"><i style="width:{100 * float(value or 0) / top:.1f}%"></i></span>'
        f'<span class="num">{FORMATTERS[fmt](value) if value is not None else "–"}</span></div>'
        for label, value in rows
    )
    shown = f" (top {len(rows)} of {of})" if of > len(rows) else ""
    return f'<figure><figcaption>{_esc(title + shown)}</figcaption><div class="bars">{items}</div></figure>'


# -- the page -------------------------------------------------------------------------------------


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
        f'<div class="kpi">{k}<b data-kpi="{k}">{v}</b><small>{_esc(c)}</small></div>' for k, v, c in cards
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
    items = "".join(f"<li><code>{_esc(a)}</code> {_esc(p[:300])}</li>" for a, p in report.sync_problems)
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
    numeric = {c for c in table.columns if table.formats.get(c, "text") not in ("text", "day")}
    wrap = {"error_message"}  # long prose; ids and numbers stay on one line
    head = "".join(
        f"<th{' class=num' if c in numeric else ''}>{_esc(LABELS.get(c, c))}</th>" for c in table.columns
    )
    body = "".join(
        "<tr>" + "".join(f'<td{" class=num" if c in numeric else " class=wrap" if c in wrap else ""}>'
                         f"{_esc(_cell(table, c, v))}</td>"
                         for c, v in zip(table.columns, row, strict=True)) + "</tr>"
        for row in table.rows[:ROWS_SHOWN]
    )  # fmt: skip
    count = len(table.rows)
    shown = (f"showing {ROWS_SHOWN} of {count:,} rows; all are in {table.name}.csv" if count > ROWS_SHOWN
             else f"{count:,} row{'s' if count != 1 else ''}")  # fmt: skip
    if not count:
        return f'<section><h2>{_esc(table.title)}</h2><p class="note">None in the period{note}.</p></section>'

    return (f'<section><h2>{_esc(table.title)}</h2><p class="note">{shown}{note}</p>'
            f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div></section>')  # fmt: skip


def _by_day(rows: list[tuple], key: int, value: int, keep: list[str]) -> dict[str, dict[date, Any]]:
    """Sums rows (day first) into one series per kept name; the other names into 'others'."""
    series: dict[str, dict[date, Any]] = {name: {} for name in keep}
    for row in rows:
        bucket = series.setdefault(row[key] if row[key] in keep else "others", {})
        bucket[row[0]] = (bucket.get(row[0]) or 0) + (row[value] or 0)
    return series


def _charts(report: Report, days: list[date]) -> str:
    t = report.tables
    by_account: dict[str, Decimal | int] = {}  # 0: no cost known yet
    for _, account, cost, _ in t["daily_cost"].rows:
        by_account[account] = by_account.get(account, 0) + (cost or 0)
    top_accounts = sorted(by_account, key=lambda a: -by_account[a])[:9]
    cost_series = _by_day(t["daily_cost"].rows, 1, 2, top_accounts)
    statuses = [s for s in STATUS_COLOURS if any(r[1] == s for r in t["daily_runs_by_status"].rows)]
    health = t["daily_task_health"].rows
    failures: dict[str, int] = {}
    volume: dict[str, int] = {}
    for _, task, runs, failed, _ in health:
        failures[task] = failures.get(task, 0) + failed
        volume[task] = volume.get(task, 0) + runs
    failing = [k for k in sorted(failures, key=lambda k: (-failures[k], k)) if failures[k]][:6]
    busiest = sorted(volume, key=lambda k: (-volume[k], k))[:6]
    failed_series: dict[str, dict[date, Any]] = {task: {} for task in failing}
    speed_series: dict[str, dict[date, Any]] = {task: {} for task in busiest}
    for day, task, _, failed, p95 in health:
        if task in failed_series:
            failed_series[task][day] = failed
        if task in speed_series:
            speed_series[task][day] = p95
    by_task, by_env = t["cost_by_task"].rows, t["cost_by_env"].rows
    reliability = t["reliability_by_task"].rows
    return "".join([
        stacked_bars("Daily cost by account (USD)", days, cost_series, "usd"),
        stacked_bars("Runs per day by status", days, _by_day(t["daily_runs_by_status"].rows, 1, 2, statuses), "int",
                     STATUS_COLOURS),
        lines(f"Failed runs per day, the {len(failing)} tasks with most failures", days, failed_series, "int")
        if failing else "<p class=note>No failed runs in the period.</p>",
        lines(f"Duration p95 per day, the {len(busiest)} busiest tasks", days, speed_series, "seconds"),
        bars("Cost by task (USD)", [(r[0], r[3]) for r in by_task], "usd", len(by_task)),
        bars("Cost by environment (USD)", [(r[0] or "(none)", r[2]) for r in by_env], "usd", len(by_env)),
        bars("Failure rate by task", [(r[0], r[4]) for r in reliability], "percent", len(reliability)),
    ])  # fmt: skip


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page, from `templates/report.html`."""
    days = [report.start + timedelta(days=i) for i in range((report.end - report.start).days + 1)]
    t = report.tables
    tables = html_table(t["cost_anomalies"], "; days whose cost exceeds 3× the median of the 7 days before")
    tables += "".join(html_table(t[name]) for name in ("cost_by_account", "cost_by_task", "cost_by_env",
                      "reliability_by_task", "reliability_by_account_env", "speed_by_task", "top_errors"))  # fmt: skip
    return Template(TEMPLATE.read_text()).substitute(
        start=report.start, end=report.end, days=len(days), previous_start=report.previous_start,
        previous_end=report.previous_end, generated=f"{report.generated:%Y-%m-%d %H:%M}",
        freshness=_freshness(report), scope=_scope(report), kpis=_kpis(report), charts=_charts(report, days),
        tables=tables,
    )  # fmt: skip


def render_markdown(report: Report) -> str:
    """The report's summary in Markdown: the totals, then the first 15 rows of each table."""
    now = report.totals
    problems = [f"  - `{a}` {p}" for a, p in report.sync_problems]
    last = f"{report.last_sync:%Y-%m-%d %H:%M} UTC" if report.last_sync else "none recorded"
    lines_ = [f"# Recoup task run costs, {report.start} to {report.end} (UTC)", "",
              f"- Last sync: {last}; {len(problems)} account(s) failed or gapped in it", *problems,
              f"- Total cost: **{usd(now['cost'])}** over {now['runs']:,} runs "
              f"({_change(now['cost'], report.previous['cost'])})",
              f"- Test runs {'included' if report.include_tests else 'excluded'}: {report.excluded['test_runs']:,}; "
              f"in-flight runs {'included' if report.include_in_flight else 'excluded'}: "
              f"{report.excluded['in_flight_runs']:,}", ""]  # fmt: skip
    for name in ("cost_anomalies", "cost_by_account", "cost_by_task", "cost_by_env", "reliability_by_task",
                 "speed_by_task", "top_errors"):  # fmt: skip
        table = report.tables[name]
        shown = f" (showing 15 of {len(table.rows)})" if len(table.rows) > 15 else ""
        lines_ += [f"## {table.title}{shown}", "", "| " + " | ".join(LABELS.get(c, c) for c in table.columns) + " |",
                   "|" + "".join("---:|" if table.formats.get(c, "text") not in ("text", "day") else "---|"
                                 for c in table.columns)]  # fmt: skip
        for row in table.rows[:15]:
            cells = [_cell(table, c, v) for c, v in zip(table.columns, row, strict=True)]
            lines_.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        lines_.append("")
    return "\n".join(lines_)
