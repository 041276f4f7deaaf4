"""What the page says about its own numbers: the cards, the data they cover, the scope, what is missing.

A reader must be able to tell "no spend" from "no data" and a partial day from a whole one, so
the header states the span the warehouse covers (the API keeps about 7 days: a warehouse holds
nothing older than its first sync), the runs the totals count, and where the details are not
complete yet.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pipelines.report.data import Report
from pipelines.report.formats import age, esc, percent, seconds, usd


def comparison(report: Report) -> str:
    """Why the cards can or cannot compare with the period before; empty when they can."""
    since = report.data_since
    if since is None or since <= report.previous_start:
        return ""
    if since > report.previous_end:
        return f"no comparison: data since {since}"
    return f"previous period covered since {since} only"


def _change(report: Report, now: Any, before: Any, points: bool = False) -> str:
    partial = comparison(report)
    if partial.startswith("no comparison"):
        return partial
    if now is None or before is None or (not points and not before):
        return "no comparison: nothing in the previous period"
    change = (f"{(now - before) * 100:+.1f} pts" if points
              else f"{(float(now) - float(before)) / float(before) * 100:+.0f}%")  # fmt: skip
    return f"{change} vs previous period" + (f" ({partial})" if partial else "")


def _rate(totals: dict[str, Any]) -> float | None:
    return totals["failed"] / totals["finished"] if totals["finished"] else None


def kpis(report: Report) -> str:
    """The cards: all spend, runs, failure rate, p95, month to date with its projection, waste."""
    now, before, month, split = report.totals, report.previous, report.month, report.breakdown
    cards = [("Total cost", usd(now["cost"]), _change(report, now["cost"], before["cost"])),
             ("Runs", f"{now['runs']:,}", _change(report, now["runs"], before["runs"])),
             ("Failure rate", percent(_rate(now)), _change(report, _rate(now), _rate(before), points=True)),
             ("Duration p95", seconds(now["p95_s"]), _change(report, now["p95_s"], before["p95_s"]))]  # fmt: skip
    if month:
        cards.append((f"Month to date ({month['month_start']:%b %Y})", usd(month["cost_usd"]),
                      f"projected {usd(month['projected_cost_usd'])} by month end "
                      f"({month['days_counted']} of {month['days_in_month']} days); "
                      f"last month {usd(month['previous_month_cost_usd'])}"))  # fmt: skip
    if split:
        cards.append(("Cost of failed runs", usd(split["failed_cost_usd"]),
                      f"{split['failed_run_count']:,} failed runs; {usd(split['retried_cost_usd'])} on "
                      f"{split['retried_run_count']:,} retried runs"))  # fmt: skip
    return "".join(
        f'<div class="kpi">{k}<b data-kpi="{k}">{v}</b><small>{esc(c)}</small></div>' for k, v, c in cards
    )


def coverage(report: Report) -> str:
    """The span the warehouse covers, when it begins inside the period or the one before."""
    since = report.data_since
    if since is None or since <= report.previous_start:
        return ""
    later = {a: d for a, d in report.coverage.items() if d > since}
    text = (f"<b>Data since {since}.</b> The warehouse holds no run created before it (the API keeps about "
            "7 days: older runs were never synced), so days before it show no data, not no spend")  # fmt: skip
    text += (
        "."
        if since <= report.start
        else f"; the charts start there, {(since - report.start).days} days into the period."
    )
    if later:
        listed = ", ".join(
            f"<code>{esc(a)}</code> since {d}" for a, d in sorted(later.items(), key=lambda x: x[1])[:10]
        )
        more = f" and {len(later) - 10} more" if len(later) > 10 else ""
        text += f" Accounts that begin later: {listed}{more}."
    return f'<p class="scope" data-coverage>{text}</p>'


def scope(report: Report) -> str:
    """The runs the totals count, stated once for the page, its CSVs and the analytics views."""
    ex, split = report.excluded, report.breakdown
    tests = f"{ex['test_runs']:,} test runs ({usd(ex['test_cost'])})"
    flight = (
        f"{ex['in_flight_runs']:,} runs still queued, running or waiting ({usd(ex['in_flight_cost'])} so far)"
    )
    counted: list[str] = []
    left: list[str] = []
    for part, on in ((tests, report.include_tests), (flight, report.include_in_flight)):
        (counted if on else left).append(part)
    text = "<b>Counted:</b> every run created in the period, every account and environment"
    text += f"; of which {' and '.join(counted)}." if counted else "."
    if split:
        text += f" Compute {usd(split['compute_cost_usd'])} + base {usd(split['base_cost_usd'])}."
    if left:
        text += (f" <b>Left out by the settings:</b> {'; '.join(left)} (RECOUP_REPORT_INCLUDE_TESTS, "
                 "RECOUP_REPORT_INCLUDE_IN_FLIGHT).")  # fmt: skip
    if report.today:
        text += (f" Today ({report.generated:%Y-%m-%d}, not complete, not in the period): "
                 f"{usd(report.today['cost'])} over {report.today['runs']:,} runs so far.")  # fmt: skip
    return f'<p class="scope" data-scope>{text} Cost anomalies compare whole days of every run.</p>'


def completeness(report: Report) -> str:
    """Where the details are not complete yet, so a count reads lower than the truth."""
    done = report.completeness
    if not done:
        return ""
    parts = []
    if done["failed_with_message"] < done["failed_runs"]:
        parts.append(f"error messages are known for {done['failed_with_message']:,} of {done['failed_runs']:,} "
                     "failed runs, so Top errors counts only those")  # fmt: skip
    if done["details_pending"]:
        parts.append(f"{done['details_pending']:,} finished runs still wait for their details (attempts, "
                     "errors), fetched over the next syncs: Retried and Top errors read low until then")  # fmt: skip
    if not parts:
        return ""
    return f'<p class="alert" data-completeness><b>Not complete yet:</b> {"; ".join(parts)}.</p>'


def freshness(report: Report) -> str:
    """The last sync, its age, and the accounts that failed or may have a gap in it."""
    if report.last_sync is None:
        return '<p class="alert" data-freshness>No sync is recorded in this warehouse.</p>'
    hours = (report.generated - report.last_sync).total_seconds() / 3600
    text = (f"Last sync: <b>{report.last_sync:%Y-%m-%d %H:%M} UTC</b> "
            f"({age(hours)} before this report), {report.sync_accounts} account(s)")  # fmt: skip
    if not report.sync_problems:
        return f'<p class="fresh" data-freshness>{text}, each synced without error or gap.</p>'
    items = "".join(f"<li><code>{esc(a)}</code> {esc(p[:300])}</li>" for a, p in report.sync_problems)
    return (f'<div class="alert" data-freshness><p>{text}: <b>{len(report.sync_problems)} need attention</b>; '
            f"their runs may be missing or stale in this report.</p><ul>{items}</ul></div>")  # fmt: skip


def chart_days(report: Report) -> list[date]:
    """The days the charts show: the period, from the first day the warehouse has data."""
    start = max(report.start, report.data_since or report.start)
    return [date.fromordinal(d) for d in range(start.toordinal(), report.end.toordinal() + 1)]
