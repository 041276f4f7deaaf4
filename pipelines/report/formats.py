"""How each value of the report is written: money, rates, durations, days, and column labels."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from pipelines.report.data import Table

LABELS = {
    "account_id": "Account", "task_identifier": "Task", "env_name": "Environment", "day": "Day",
    "run_count": "Runs", "succeeded_run_count": "Succeeded", "finished_run_count": "Finished",
    "failed_run_count": "Failed", "retried_run_count": "Retried", "failure_rate": "Failure rate",
    "total_cost_usd": "Cost", "cost_per_successful_run_usd": "Cost per successful run",
    "duration_p50_s": "Duration p50", "duration_p95_s": "Duration p95", "queue_wait_p50_s": "Queue wait p50",
    "queue_wait_p95_s": "Queue wait p95", "error_message": "Error", "trailing_median_usd": "Median of 7 days before",
    "ratio": "Times the median", "status_group": "Status", "total_duration_h": "Total duration",
    "dimension": "By", "name": "Name", "previous_cost_usd": "Previous period", "cost_usd": "This period",
    "change_usd": "Change", "cost_rank": "#", "run_id": "Run", "created_at": "Created (UTC)",
    "duration_s": "Duration", "tag_key": "Tag", "tag_value": "Value",
}  # fmt: skip
NONE = "–"  # a missing value


def usd(value: Any) -> str:
    """Dollars, with four decimals below one cent so that a small cost never reads $0.00."""
    if value is None:
        return NONE
    return f"${value:,.4f}" if 0 < abs(value) < 0.01 else f"${value:,.2f}"


def percent(value: Any) -> str:
    """A rate (0 to 1) as a percentage with one decimal."""
    return NONE if value is None else f"{value * 100:.1f}%"


def seconds(value: Any) -> str:
    """A duration in seconds, or in minutes from two minutes on."""
    if value is None:
        return NONE
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def hours(value: Any) -> str:
    """A total duration in hours, or in minutes below one hour."""
    if value is None:
        return NONE
    return f"{value:,.1f} h" if value >= 1 else f"{value * 60:.1f} min"


def signed_usd(value: Any) -> str:
    """A change in dollars, with its sign."""
    return NONE if value is None else ("+" if value > 0 else "−" if value < 0 else "") + usd(abs(value))


def age(hours_old: float) -> str:
    """How long ago, in readable units: `12 min`, `3.5 h`, `2.0 days`."""
    if hours_old < 1:
        return f"{max(hours_old * 60, 0):.0f} min"
    return f"{hours_old:.1f} h" if hours_old < 48 else f"{hours_old / 24:.1f} days"


FORMATTERS: dict[str, Callable[[Any], str]] = {
    "usd": usd, "percent": percent, "seconds": seconds, "int": lambda v: f"{v:,}", "text": str,
    "day": lambda v: f"{v:%Y-%m-%d}", "ratio": lambda v: NONE if v is None else f"{v:.1f}×",
    "hours": hours, "signed_usd": signed_usd, "time": lambda v: f"{v:%Y-%m-%d %H:%M}",
}  # fmt: skip


NAMED = ("account_id", "name")  # columns that hold account ids (a mover's `name` may be one)


def cell(table: Table, column: str, value: Any) -> str:
    """One value of a table, written as its column's format says; an account by its name when it has one."""
    if value is None:
        return NONE
    if column in NAMED and table.names:
        value = table.names.get(value, value)
    return FORMATTERS[table.formats.get(column, "text")](value)


def is_numeric(table: Table, column: str) -> bool:
    """Whether a column holds numbers (aligned right), not text or days."""
    return table.formats.get(column, "text") not in ("text", "day", "time")


def label(column: str) -> str:
    """A column's header for readers."""
    return LABELS.get(column, column)


def esc(value: Any) -> str:
    """Text made safe inside HTML."""
    return html.escape(str(value))
