"""The report's numbers: every one read from an `analytics` view, each column by its name.

The warehouse is opened read-only (or the lake through its reader), so a report never blocks
or is blocked by a sync.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb

from pipelines.config import StorageSettings
from pipelines.models import SQL_DIR
from pipelines.recoup.errors import RecoupError
from pipelines.storage.reader import describe, open_reader


class ReportError(RecoupError):
    """The report cannot be written; the message says why in one line."""


@dataclass
class Table:
    """One table of the report: its rows, and how each column is formatted."""

    name: str
    title: str
    columns: list[str]
    rows: list[tuple]
    formats: dict[str, str]
    names: dict[str, str] = field(default_factory=dict)  # account id to the name the page shows

    def records(self) -> list[dict[str, Any]]:
        """The rows keyed by column name, so that no reader depends on the order of the columns."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass
class Report:
    """Everything the report shows, read from the warehouse."""

    start: date
    end: date
    generated: datetime
    include_tests: bool
    include_in_flight: bool
    account_names: dict[str, str] = field(default_factory=dict)  # RECOUP_ACCOUNT_NAMES
    tables: dict[str, Table] = field(default_factory=dict)
    totals: dict[str, Any] = field(default_factory=dict)  # this period: runs, cost, failed, finished, p95_s
    previous: dict[str, Any] = field(default_factory=dict)  # the same over the period just before
    excluded: dict[str, Any] = field(
        default_factory=dict
    )  # test and in-flight runs of the period, their cost
    breakdown: dict[str, Any] = field(default_factory=dict)  # analytics.cost_breakdown
    month: dict[str, Any] = field(default_factory=dict)  # analytics.month_to_date
    completeness: dict[str, Any] = field(
        default_factory=dict
    )  # failed runs with a known error, details pending
    today: dict[str, Any] = field(default_factory=dict)  # the UTC day the report runs on, so far
    coverage: dict[str, date] = field(default_factory=dict)  # account: the first day it has a run
    catalog: list[dict[str, Any]] = field(default_factory=list)  # analytics.catalog, for catalog.html
    last_sync: datetime | None = None
    sync_accounts: int = 0  # accounts in the latest sync
    sync_problems: list[tuple[str, str]] = field(default_factory=list)  # (account, what went wrong)

    @property
    def data_since(self) -> date | None:
        """The first UTC day the warehouse has a run of any account."""
        return min(self.coverage.values()) if self.coverage else None

    @property
    def previous_start(self) -> date:
        """The first day of the period of the same length just before this one."""
        return self.start - (self.end - self.start) - timedelta(days=1)

    @property
    def previous_end(self) -> date:
        """The last day of the period just before this one."""
        return self.start - timedelta(days=1)


COST = {"run_count": "int", "succeeded_run_count": "int", "total_cost_usd": "usd",
        "cost_per_successful_run_usd": "usd"}  # fmt: skip
RELIABILITY = {"run_count": "int", "finished_run_count": "int", "failed_run_count": "int",
               "failure_rate": "percent", "retried_run_count": "int"}  # fmt: skip
SPEED = {"run_count": "int", "total_duration_h": "hours", "duration_p50_s": "seconds", "duration_p95_s": "seconds",
         "queue_wait_p50_s": "seconds", "queue_wait_p95_s": "seconds"}  # fmt: skip


# name: (title, formats); each one's SQL is sql/report/<name>.sql, over analytics.*, with $1 and
# $2 the period's first and last day where it needs them.
QUERIES = {
    "cost_by_account": ("Cost by account", COST),
    "cost_by_task": ("Cost by task", COST),
    "cost_by_env": ("Cost by environment", {"run_count": "int", "total_cost_usd": "usd"}),
    "reliability_by_task": ("Reliability by task", RELIABILITY),
    "reliability_by_account_env": ("Reliability by account and environment", RELIABILITY),
    "speed_by_task": ("Speed by task", SPEED),
    "top_errors": ("Top errors", {"run_count": "int"}),
    "cost_anomalies": ("Cost anomalies",
                       {"day": "day", "total_cost_usd": "usd", "trailing_median_usd": "usd", "ratio": "ratio"}),
    "cost_movers": ("Top movers against the previous period",
                    {"previous_cost_usd": "usd", "cost_usd": "usd", "change_usd": "signed_usd"}),
    "top_runs": ("Most expensive runs", {"cost_rank": "int", "created_at": "time", "total_cost_usd": "usd",
                                         "duration_s": "seconds"}),
    "cost_by_tag": ("Cost by tag", {"run_count": "int", "total_cost_usd": "usd"}),
    "daily_cost": ("Daily cost by account", {"day": "day", "total_cost_usd": "usd", "run_count": "int"}),
    "daily_runs_by_status": ("Runs per day by status", {"day": "day", "run_count": "int"}),
    "daily_task_health": ("Failures and p95 duration per task per day",
                          {"day": "day", "run_count": "int", "failed_run_count": "int", "duration_p95_s": "seconds"}),
}  # fmt: skip


@functools.cache
def report_sql(name: str) -> str:
    """The report's query `name`, from sql/report/."""
    return (SQL_DIR / "report" / f"{name}.sql").read_text()


def _records(result: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    columns = [d[0] for d in result.description]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    return _records(con.execute(sql))[0]


def _period(con: duckdb.DuckDBPyConnection, start: date, end: date) -> None:
    """Points the analytics period views (runs_in_period and those over it) at [start, end]."""
    con.execute("set variable period_start = ?", [start])
    con.execute("set variable period_end = ?", [end])


def _read(con: duckdb.DuckDBPyConnection, report: Report) -> None:
    _period(con, report.start, report.end)
    report.excluded = _one(con, report_sql("excluded"))  # the views count every run until told otherwise
    con.execute(f"set variable include_test_runs = {report.include_tests}")
    con.execute(f"set variable include_in_flight_runs = {report.include_in_flight}")
    _period(con, report.previous_start, report.previous_end)
    report.previous = _one(con, report_sql("totals"))
    _period(con, report.start, report.end)
    report.totals = _one(con, report_sql("totals"))
    report.breakdown = _one(con, report_sql("cost_breakdown"))
    report.month = _one(con, report_sql("month_to_date"))
    report.completeness = _one(con, report_sql("completeness"))
    report.today = _one(con, report_sql("today"))
    report.coverage = dict(con.execute(report_sql("coverage")).fetchall())
    report.catalog = _records(con.execute(report_sql("catalog")))
    for name, (title, formats) in QUERIES.items():
        sql = report_sql(name)
        result = con.execute(sql, [report.start, report.end] if "$1" in sql else [])
        columns = [d[0] for d in result.description]
        report.tables[name] = Table(name, title, columns, result.fetchall(), formats, report.account_names)
    latest = _records(con.execute(report_sql("latest_sync")))
    report.sync_accounts = len(latest)
    report.last_sync = latest[0]["synced_at"] if latest else None
    for account in latest:
        if account["error"]:
            report.sync_problems.append((account["account_id"], f"failed: {account['error']}"))
        elif account["possible_gap"]:
            report.sync_problems.append(
                (account["account_id"], "possible gap: the list was full and reached no stored run")
            )


def read_report(storage: StorageSettings, start: date, end: date, include_tests: bool = True,
                include_in_flight: bool = True, account_names: dict[str, str] | None = None) -> Report:  # fmt: skip
    """Reads every number of the report over the period [start, end] (UTC days, inclusive).

    Raises:
        ReportError: no warehouse, or one without the analytics models.
    """
    con = open_reader(storage)
    report = Report(
        start, end, datetime.now(UTC), include_tests, include_in_flight, dict(account_names or {})
    )
    with con:
        try:
            _read(con, report)
        except duckdb.CatalogException:
            raise ReportError(
                f"{describe(storage)} has no analytics models yet; run `recoup sync` first"
            ) from None
    return report
