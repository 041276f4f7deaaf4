"""The report page on a hand-made warehouse: every figure worked out by hand, read as a reader would.

The data begins mid-period, a run is still in flight, one is a test run, a failed run has no
error message yet and the last sync left details pending; a run created today is not in the
period. Then the page is rendered in headless Chromium at 1400 and 390 px wide.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.config import FileSettings, ReportSettings
from pipelines.config.loader import read_account_names
from pipelines.models import apply_models
from pipelines.recoup.errors import ConfigError
from pipelines.report import write_report
from tests.test_models import ACCOUNT_A, ACCOUNT_B, _insert_run

END = date(2026, 11, 20)  # a 30-day period: 2026-10-22 to 2026-11-20; the one before from 2026-09-22
MONEY = ("Cost", "Change")  # the money column of each table (movers: the change)


def _day(d: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, d, hour, 0, tzinfo=UTC)


@pytest.fixture
def page(raw_con: duckdb.DuckDBPyConnection, tmp_path: Path) -> tuple[str, str, Path]:
    """The page and the summary of a warehouse whose data begins on 14 November."""
    con = raw_con
    _insert_run(con, "run_a1", ACCOUNT_A, "render", "COMPLETED", _day(14), cost=1000, base=50,
                started=_day(14), duration_ms=3_600_000)  # $10.50  # fmt: skip
    _insert_run(
        con, "run_a2", ACCOUNT_A, "render", "FAILED", _day(16), cost=400, error="out of memory"
    )  # $4.00
    _insert_run(
        con, "run_a3", ACCOUNT_A, "render", "FAILED", _day(17), cost=100
    )  # $1.00, its error not known yet
    _insert_run(con, "run_b1", ACCOUNT_B, "mail", "COMPLETED", _day(18), cost=200, is_test=True)  # $2.00 test
    _insert_run(con, "run_b2", ACCOUNT_B, "mail", "EXECUTING", _day(20), cost=50)  # $0.50 so far
    _insert_run(con, "run_later", ACCOUNT_B, "mail", "COMPLETED", _day(21), cost=9900)  # after the period
    _insert_run(
        con, "run_today", ACCOUNT_B, "mail", "EXECUTING", datetime.now(UTC) - timedelta(minutes=1), cost=25
    )
    synced = _day(20, 13)
    for account, pending in ((ACCOUNT_A, 3), (ACCOUNT_B, 0)):
        con.execute(
            "insert into raw.sync_log (synced_at, account_id, runs_seen, possible_gap, details_pending, finished_at)"
            " values (?, ?, 1, false, ?, ?)",
            [synced, account, pending, synced],
        )
    apply_models(con)
    con.close()
    db = tmp_path / "given.duckdb"
    write_report(FileSettings(db), ReportSettings(tmp_path / "r", days=30, end=END))
    folder = tmp_path / "r" / str(END)
    return (folder / "report.html").read_text(), (folder / "summary.md").read_text(), folder / "report.html"


def test_the_catalog_page_beside_the_report_describes_every_analytics_column(page) -> None:
    catalog = page[2].with_name("catalog.html").read_text()
    assert (
        '<section id="analytics.top_runs">' in catalog and "Built from: analytics.runs_in_period" in catalog
    )
    assert "<code>cost_rank</code></td><td>INTEGER</td><td class=wrap>1 for the most expensive run" in catalog
    assert '<a href="catalog.html">the catalog</a>' in page[0]


def _kpi(page: str, name: str) -> tuple[str, str]:
    found = re.search(
        rf'{re.escape(name)}<b data-kpi="{re.escape(name)}">([^<]+)</b><small>([^<]*)</small>', page
    )
    assert found, name
    return found.group(1), found.group(2)


def test_the_page_states_its_span_its_scope_and_what_is_not_complete(page) -> None:
    html, summary, _ = page
    # All spend: 10.50 + 4.00 + 1.00 + 2.00 (test) + 0.50 (in flight, so far) = $18.00 over 5 runs.
    assert _kpi(html, "Total cost") == ("$18.00", "no comparison: data since 2026-11-14")
    assert _kpi(html, "Runs")[0] == "5"
    # Failed 2 of 4 finished runs (run_b2 is in flight): 50.0%.
    assert _kpi(html, "Failure rate")[0] == "50.0%"
    # November to the 20th: $18.00 in 20 of 30 days: $18.00 / 20 * 30 = $27.00; October: nothing.
    assert _kpi(html, "Month to date (Nov 2026)") == (
        "$18.00",
        "projected $27.00 by month end (20 of 30 days); last month $0.00",
    )
    # Waste: the two failed runs, $4.00 + $1.00.
    assert _kpi(html, "Cost of failed runs")[0] == "$5.00"
    assert "(30 complete UTC days)" in html and "(no comparison: data since 2026-11-14)" in html
    assert (
        "<b>Data since 2026-11-14.</b>" in html and "the charts start there, 23 days into the period" in html
    )
    assert f"<code>{ACCOUNT_B}</code> since 2026-11-18" in html  # the other account begins later
    assert (
        "; of which 1 test runs ($2.00) and 1 runs still queued, running or waiting ($0.50 so far)." in html
    )
    assert "Compute $17.50 + base $0.50." in html  # 1000 + 400 + 100 + 200 + 50 cents; 50 cents
    assert "$0.25 over 1 runs so far" in html  # run_today: not in the period
    assert "error messages are known for 1 of 2 failed runs" in html
    assert "3 finished runs still wait for their details" in html
    assert "- Data since 2026-11-14" in summary and "projected $27.00" in summary
    assert "|  |" not in summary and "None in the period." in summary  # no empty table: the anomalies
    assert re.search(r"\(\d+\.\d days before this report\)", html), "the last sync was on 20 November"


def test_account_names_replace_the_ids_on_the_page_and_the_csvs_keep_the_ids(page, tmp_path: Path) -> None:
    names = tmp_path / "accounts.csv"
    names.write_text(f"account_id,name\n{ACCOUNT_A},Label Records\n")
    settings = ReportSettings(
        tmp_path / "named", days=30, end=END, account_names=read_account_names(str(names))
    )
    write_report(FileSettings(tmp_path / "given.duckdb"), settings)
    folder = tmp_path / "named" / str(END)
    html = (folder / "report.html").read_text()
    assert "<td class=key>Label Records</td>" in html and f"<td class=key>{ACCOUNT_B}</td>" in html
    assert re.search(r"<span><i [^>]*></i>Label Records</span>", html), "the chart's legend names it too"
    assert ACCOUNT_A in (folder / "cost_by_account.csv").read_text()
    names.write_text(f"{ACCOUNT_A}\n")
    with pytest.raises(
        ConfigError, match=r"RECOUP_ACCOUNT_NAMES: .*accounts.csv line 1 must be `account_id,name`"
    ):
        read_account_names(str(names))


def _measured(path: Path, width: int) -> dict:
    """The page in headless Chromium, `width` px wide: its console and where each money column ends.

    Headless Chromium's window is at least 500 px wide, so the page is loaded in a frame of
    exactly `width` px, which is the page's viewport (its media queries see `width`).
    """
    probe = path.with_name(f"probe-{width}.html")
    probe.write_text(f"""<!DOCTYPE html><body style="margin:0">
    <iframe id="page" src="{path.name}" style="border:0;width:{width}px;height:900px"></iframe>
    <script>
      document.getElementById('page').onload = () => {{
        const frame = document.getElementById('page'), doc = frame.contentDocument, money = {json.dumps(MONEY)};
        const ends = [...doc.querySelectorAll('table')].map(t => {{
          const th = [...t.querySelectorAll('th')].find(h => money.includes(h.textContent));
          return th ? Math.round(th.getBoundingClientRect().right) : null; }});
        document.body.setAttribute('data-measured', JSON.stringify({{width: doc.documentElement.clientWidth, ends}}));
      }};
    </script></body>""")
    done = subprocess.run([shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu",
                           "--allow-file-access-from-files", "--window-size=1400,900", "--enable-logging=stderr",
                           "--v=0", "--virtual-time-budget=3000", "--dump-dom", probe.as_uri()],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    found = re.search(r"data-measured=\"([^\"]+)\"", done.stdout)
    assert found, done.stderr[-2000:]
    measured = json.loads(found.group(1).replace("&quot;", '"'))
    measured["console"] = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return measured


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("chromium"), reason="no chromium on this machine")
@pytest.mark.parametrize("width", [1400, 390])
def test_the_money_column_of_every_table_is_on_screen(page, width: int) -> None:
    measured = _measured(page[2], width)
    assert measured["console"] == []
    ends = [end for end in measured["ends"] if end is not None]
    assert width - 20 <= measured["width"] <= width and len(ends) >= 4, measured  # less a scrollbar
    assert max(ends) <= measured["width"], (
        f"a money column ends past the {measured['width']} px screen: {ends}"
    )


def test_a_mover_and_a_spike_are_on_the_page_as_worked_out_by_hand(raw_con, tmp_path: Path) -> None:
    # Previous period 2026-09-22 to 2026-10-21, this one 2026-10-22 to 2026-11-20.
    for day in range(1, 15):  # render: $1.00 a day on 1-14 November, then $9.00 on the 15th
        _insert_run(raw_con, f"r{day}", ACCOUNT_A, "render", "COMPLETED", _day(day), cost=100)
    _insert_run(raw_con, "spike", ACCOUNT_A, "render", "COMPLETED", _day(15), cost=900)
    _insert_run(
        raw_con, "before", ACCOUNT_A, "mail", "COMPLETED", datetime(2026, 10, 1, 12, tzinfo=UTC), cost=700
    )
    apply_models(raw_con)
    raw_con.close()
    write_report(FileSettings(tmp_path / "given.duckdb"), ReportSettings(tmp_path / "r", days=30, end=END))
    html = (tmp_path / "r" / str(END) / "report.html").read_text()
    # render: $0 before, $14 + $9 = $23 now; mail: $7 before, $0 now.
    assert (
        "<td class=key>task</td><td class=key>render</td><td class=num>+$23.00</td><td class=num>$23.00</td>"
        in html
    )
    assert (
        "<td class=key>task</td><td class=key>mail</td><td class=num>−$7.00</td><td class=num>$0.00</td>"
        in html
    )
    # 15 November: $9.00 against a median of $1.00 over the 7 days before: 9.0x.
    assert re.search(r"<td[^>]*>2026-11-15</td>.*?<td class=num>\$9\.00</td><td class=num>\$1\.00</td>"
                     r"<td class=num>9\.0×</td>", html), "the spike is in Cost anomalies"  # fmt: skip
    # All spend: $23.00 against $7.00 before: +229%; the data covers the period before from 1 October.
    assert _kpi(html, "Total cost") == (
        "$23.00",
        "+229% vs previous period (previous period covered since 2026-10-01 only)",
    )
