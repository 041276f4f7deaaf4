"""`make report`: the files it writes agree with the warehouse, and bad states read clearly."""

from __future__ import annotations

import csv
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.report import ReportError, usd, write_report
from tests.test_cli import run_cli

END = date(2026, 11, 20)  # the emulator clock of the shared fixture


def test_report_files_exist_and_totals_agree_with_the_warehouse(sync, db_path: Path, tmp_path: Path) -> None:
    sync()
    paths = write_report(db_path, tmp_path / "reports", days=30, end=END)
    folder = tmp_path / "reports" / "2026-11-20"
    names = {p.name for p in paths}
    assert {"report.html", "summary.md", "cost_by_task.csv", "reliability_by_task.csv", "speed_by_task.csv",
            "daily_cost.csv", "cost_by_account.csv", "top_errors.csv"} <= names  # fmt: skip
    assert all(p.exists() and p.parent == folder for p in paths)
    with duckdb.connect(str(db_path), read_only=True) as con:
        truth, runs = con.execute(
            "select sum(total_cost_usd), count(*) from analytics.runs"
            " where (created_at at time zone 'UTC')::date between date '2026-10-22' and date '2026-11-20'"
        ).fetchone()
    with open(folder / "cost_by_task.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sum(Decimal(r["total_cost_usd"]) for r in rows) == truth  # money is DECIMAL: exact
    assert sum(int(r["run_count"]) for r in rows) == runs
    with open(folder / "daily_cost.csv") as handle:
        assert sum(Decimal(r["total_cost_usd"]) for r in csv.DictReader(handle)) == truth
    page = (folder / "report.html").read_text()
    kpi = re.search(r'data-kpi="Total cost">([^<]+)<', page).group(1)
    assert kpi == usd(truth)
    assert page.count("<svg") == 4
    assert f"{runs:,} runs" in (folder / "summary.md").read_text()


def test_report_on_a_missing_warehouse_is_a_clear_message(tmp_path: Path) -> None:
    done = run_cli({"RECOUP_DB": str(tmp_path / "none.duckdb"), "RECOUP_REPORTS_DIR": str(tmp_path / "r")},
                   "pipelines.report")  # fmt: skip
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        == f"report: no warehouse at {tmp_path / 'none.duckdb'}; run `make sync` (or `make demo`) first"
    )


def test_report_on_a_warehouse_with_no_runs_in_the_period(sync, db_path: Path, tmp_path: Path) -> None:
    sync()
    with pytest.raises(ReportError, match="holds no runs created between 2020-01-02 and 2020-01-31"):
        write_report(db_path, tmp_path / "r", days=30, end=date(2020, 1, 31))


def test_report_on_an_unsynced_database_file(tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).close()
    with pytest.raises(ReportError, match="has no analytics models yet"):
        write_report(db, tmp_path / "r")


def test_report_cli_prints_the_paths(sync, db_path: Path, tmp_path: Path) -> None:
    sync()
    done = run_cli({"RECOUP_DB": str(db_path), "RECOUP_REPORTS_DIR": str(tmp_path / "out"),
                    "RECOUP_REPORT_END": "2026-11-20"}, "pipelines.report")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == str(tmp_path / "out" / "2026-11-20" / "report.html")
