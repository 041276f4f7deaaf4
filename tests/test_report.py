"""`make report`: the files it writes agree with the warehouse, and bad states read clearly."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.config import FileSettings, ReportSettings
from pipelines.report import Report, ReportError, Table, write_report
from pipelines.report.charts import report_charts, tick_label, ticks
from pipelines.report.formats import usd
from pipelines.report.render import html_table
from tests.conftest import run_cli

END = date(2026, 11, 20)  # the emulator clock of the shared fixture


IN_PERIOD = "(created_at at time zone 'UTC')::date between date '2026-10-22' and date '2026-11-20'"
COUNTED = "true"  # the report's default: every run, test and in-flight runs among them


def _truth(db_path: Path, where: str) -> tuple[Decimal, int]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(
            f"select sum(total_cost_usd), count(*) from analytics.runs where {IN_PERIOD} and {where}"
        ).fetchone()


@pytest.mark.slow
def test_report_files_exist_and_totals_agree_with_the_warehouse(sync, db_path: Path, tmp_path: Path) -> None:
    sync()
    paths = write_report(FileSettings(db_path), ReportSettings(tmp_path / "reports", days=30, end=END))
    folder = tmp_path / "reports" / "2026-11-20"
    names = {p.name for p in paths}
    assert {"report.html", "summary.md", "cost_by_task.csv", "reliability_by_task.csv", "speed_by_task.csv",
            "daily_cost.csv", "cost_by_account.csv", "top_errors.csv", "cost_anomalies.csv", "cost_by_env.csv",
            "daily_runs_by_status.csv", "daily_task_health.csv"} <= names  # fmt: skip
    assert all(p.exists() and p.parent == folder for p in paths)
    truth, runs = _truth(db_path, COUNTED)
    with open(folder / "cost_by_task.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sum(Decimal(r["total_cost_usd"]) for r in rows) == truth  # money is DECIMAL: exact
    assert sum(int(r["run_count"]) for r in rows) == runs
    for name in ("daily_cost.csv", "cost_by_env.csv"):
        with open(folder / name) as handle:
            assert sum(Decimal(r["total_cost_usd"]) for r in csv.DictReader(handle)) == truth
    page = (folder / "report.html").read_text()
    kpi = re.search(r'data-kpi="Total cost">([^<]+)<', page).group(1)
    assert kpi == usd(truth)
    assert page.count("<svg") == 4  # cost and runs by day, failures and p95 per task by day
    assert f"{runs:,} runs" in (folder / "summary.md").read_text()


@pytest.mark.slow
def test_report_states_its_freshness_scope_and_fits_a_phone(sync, db_path: Path, tmp_path: Path) -> None:
    sync()
    with duckdb.connect(str(db_path), read_only=True) as con:
        synced_at = con.execute("select max(synced_at) from analytics.sync_log").fetchone()[0]
    tests, test_cost = _truth(db_path, "is_test")[::-1]
    in_flight = _truth(db_path, "status_group in ('queued', 'running', 'waiting')")[1]
    assert tests and in_flight  # the fixture's world has both
    write_report(FileSettings(db_path), ReportSettings(tmp_path / "r", days=30, end=END))
    page = (tmp_path / "r" / "2026-11-20" / "report.html").read_text()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert (
        "Period: <b>2026-10-22 – 2026-11-20</b> (30 complete UTC days), compared with 2026-09-22 – 2026-10-21"
        in page
    )
    assert f"Last sync: <b>{synced_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC</b>" in page
    assert "3 account(s), each synced without error or gap" in page
    # The headline is all spend; test and in-flight runs are parts of it, said once.
    truth, _ = _truth(db_path, "true")
    assert re.search(r'data-kpi="Total cost">([^<]+)<', page).group(1) == usd(truth)
    assert f"; of which {tests:,} test runs ({usd(test_cost)}) and {in_flight:,} runs still queued" in page
    assert "Left out by the settings" not in page
    assert "vs previous period" in page or "no comparison" in page
    assert "<th class=num>Runs</th>" in page and "<th>task_identifier</th>" not in page

    write_report(
        FileSettings(db_path),
        ReportSettings(tmp_path / "some", days=30, end=END, include_tests=False, include_in_flight=False),
    )
    page = (tmp_path / "some" / "2026-11-20" / "report.html").read_text()
    assert (
        f"<b>Left out by the settings:</b> {tests:,} test runs ({usd(test_cost)}); {in_flight:,} runs" in page
    )
    kept, _ = _truth(db_path, "not is_test and status_group not in ('queued', 'running', 'waiting')")
    assert re.search(r'data-kpi="Total cost">([^<]+)<', page).group(1) == usd(kept)


@pytest.mark.slow
def test_report_names_the_accounts_that_failed_or_gapped_in_the_latest_sync(
    sync, world, db_path: Path, tmp_path: Path
) -> None:
    forbidden = world.account_ids[2]
    world.revoke(world.demo_key, forbidden)
    sync()
    write_report(FileSettings(db_path), ReportSettings(tmp_path / "r", days=30, end=END))
    page = (tmp_path / "r" / "2026-11-20" / "report.html").read_text()
    assert "3 account(s): <b>1 need attention</b>" in page
    assert re.search(rf"<li><code>{forbidden}</code> failed: [^<]*403", page), page[:3000]
    assert f"`{forbidden}` failed:" in (tmp_path / "r" / "2026-11-20" / "summary.md").read_text()


def test_a_long_table_says_how_many_rows_it_shows() -> None:
    table = Table("cost_by_task", "Cost by task", ["task_identifier", "run_count"], [(f"t{i}", i) for i in range(312)],
                  {"run_count": "int"})  # fmt: skip
    section = html_table(table)
    assert "showing 50 of 312 rows; all are in cost_by_task.csv" in section
    assert section.count("<tr>") == 51 and "<th>Task</th><th class=num>Runs</th>" in section


def test_chart_axes_tick_at_round_values_past_the_peak() -> None:
    def labels(peak: float, fmt: str) -> list[str]:
        marks = ticks(peak)
        return [tick_label(t, fmt, marks[1] - marks[0]) for t in marks]

    assert labels(263, "usd") == ["$0", "$100", "$200", "$300"]
    assert labels(0.09, "usd") == ["$0.000", "$0.025", "$0.050", "$0.075", "$0.100"]
    assert labels(16, "int") == ["0", "5", "10", "15", "20"]
    assert labels(9.6, "minutes") == ["0.0 min", "2.5 min", "5.0 min", "7.5 min", "10.0 min"]


def _tables(reverse: bool) -> dict[str, Table]:
    """A few rows of the tables the charts draw; `reverse` lists every column in the opposite order."""
    day1, day2 = date(2026, 11, 19), date(2026, 11, 20)
    data = {
        "daily_cost": [{"day": day1, "account_id": "acct-a", "total_cost_usd": Decimal("1.5"), "run_count": 3},
                       {"day": day2, "account_id": "acct-b", "total_cost_usd": Decimal("0.25"), "run_count": 1}],
        "daily_runs_by_status": [{"day": day1, "status_group": "failed", "run_count": 2},
                                 {"day": day2, "status_group": "succeeded", "run_count": 1}],
        "daily_task_health": [{"day": day1, "task_identifier": "t-slow", "run_count": 3, "failed_run_count": 2,
                               "duration_p95_s": 200.0}],
        "cost_by_task": [{"task_identifier": "t-slow", "run_count": 4, "succeeded_run_count": 1,
                          "total_cost_usd": Decimal("1.75"), "cost_per_successful_run_usd": Decimal("1.75")}],
        "cost_by_env": [{"env_name": "prod", "run_count": 4, "total_cost_usd": Decimal("1.75")}],
        "reliability_by_task": [{"task_identifier": "t-slow", "run_count": 4, "finished_run_count": 3,
                                 "failed_run_count": 2, "failure_rate": 2 / 3, "retried_run_count": 0}],
    }  # fmt: skip
    tables = {}
    for name, records in data.items():
        columns = list(records[0])[:: -1 if reverse else 1]
        tables[name] = Table(name, name, columns, [tuple(r[c] for c in columns) for r in records], {})
    return tables


def test_charts_read_columns_by_name_not_by_position() -> None:
    def charts(reverse: bool) -> str:
        report = Report(
            date(2026, 11, 19), END, datetime(2026, 11, 20, tzinfo=UTC), False, False, tables=_tables(reverse)
        )
        return report_charts(report, [date(2026, 11, 19), END])

    drawn = charts(reverse=False)
    assert "2026-11-19 acct-a: $1.50" in drawn and "failed: 2" in drawn and "66.7%" in drawn
    assert charts(reverse=True) == drawn


def _console(page: Path) -> list[str]:
    """What headless Chromium logs to the page's console while loading it."""
    done = subprocess.run([shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu",
                           "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    return [line for line in done.stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("chromium"), reason="no chromium on this machine")
def test_report_renders_in_chromium_without_console_errors(sync, db_path: Path, tmp_path: Path) -> None:
    sync()
    write_report(FileSettings(db_path), ReportSettings(tmp_path / "r", days=30, end=END))
    assert _console(tmp_path / "r" / "2026-11-20" / "report.html") == []
    broken = tmp_path / "broken.html"  # the check can fail: a page with a bad chart is caught
    broken.write_text('<svg><path d="M 1,1 L x"/></svg><script>nothing()</script>')
    assert len(_console(broken)) == 2


def test_report_on_a_missing_warehouse_is_a_clear_message(tmp_path: Path) -> None:
    done = run_cli({"RECOUP_DB": str(tmp_path / "none.duckdb"), "RECOUP_REPORTS_DIR": str(tmp_path / "r")},
                   "pipelines.cli", "report")  # fmt: skip
    assert done.returncode == 2, "no warehouse is exit 2, as for status and models"
    [line] = done.stderr.strip().splitlines()
    assert line.endswith(
        f"ERROR report: no warehouse at {tmp_path / 'none.duckdb'}; run `recoup sync` (or `recoup demo`) first"
    )


@pytest.mark.slow
def test_report_on_a_warehouse_with_no_runs_in_the_period(sync, db_path: Path, tmp_path: Path) -> None:
    sync()
    with pytest.raises(ReportError, match="holds no runs created between 2020-01-02 and 2020-01-31"):
        write_report(FileSettings(db_path), ReportSettings(tmp_path / "r", days=30, end=date(2020, 1, 31)))


def test_report_refuses_a_setting_that_is_not_true_or_false(tmp_path: Path) -> None:
    done = run_cli({"RECOUP_DB": str(tmp_path / "none.duckdb"), "RECOUP_REPORT_INCLUDE_TESTS": "maybe"},
                   "pipelines.cli", "report")  # fmt: skip
    assert done.returncode == 2
    assert "RECOUP_REPORT_INCLUDE_TESTS must be true or false, got 'maybe'" in done.stderr


def test_report_on_an_unsynced_database_file(tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).close()
    with pytest.raises(ReportError, match="has no analytics models yet"):
        write_report(FileSettings(db), ReportSettings(tmp_path / "r"))


@pytest.mark.slow
def test_report_cli_prints_the_paths_on_dated_lines(sync, db_path: Path, tmp_path: Path) -> None:
    sync()
    done = run_cli({"RECOUP_DB": str(db_path), "RECOUP_REPORTS_DIR": str(tmp_path / "out"),
                    "RECOUP_REPORT_END": "2026-11-20"}, "pipelines.cli", "report")  # fmt: skip
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert re.match(r"^\d{4}-\d\d-\d\dT[\d:.]+Z report: wrote ", first), first
    assert first.endswith(" report: wrote " + str(tmp_path / "out" / "2026-11-20" / "report.html"))
