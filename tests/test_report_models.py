"""The report's newer figures, each an `analytics` model, on hand-made rows worked out by hand.

Every expected value is computed in the comment beside it from the rows given, so an analyst
reading the view gets the number the page shows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from pipelines.models import apply_models
from tests.test_models import ACCOUNT_A, ACCOUNT_B, T0, _insert_run, _period

NOV = date(2026, 11, 1)


def _day(d: int, month: int = 11) -> datetime:
    return datetime(2026, month, d, 12, 0, tzinfo=UTC)


def _tag(con, run_id: str, *tags: str) -> None:
    for i, tag in enumerate(tags):
        con.execute(
            "insert into raw.runs__tags (run_id, observation_id, tag_index, value, seen_at) values (?, ?, ?, ?, ?)",
            [run_id, f"{run_id}-obs", i, tag, T0],
        )


def test_cost_breakdown_splits_compute_and_base_and_names_the_waste(raw_con) -> None:
    _insert_run(raw_con, "r1", ACCOUNT_A, "render", "COMPLETED", T0, cost=30, base=0.5)
    _insert_run(raw_con, "r2", ACCOUNT_A, "render", "FAILED", T0, cost=9, base=0.5, attempts=2)
    _insert_run(raw_con, "r3", ACCOUNT_A, "render", "COMPLETED", T0, cost=10, is_test=True)
    _insert_run(raw_con, "r4", ACCOUNT_B, "mail", "EXECUTING", T0, cost=4)
    _insert_run(raw_con, "r5", ACCOUNT_B, "mail", "FAILED", T0 - timedelta(days=40), cost=500)  # outside
    apply_models(raw_con)
    _period(raw_con, NOV, date(2026, 11, 30))
    row = raw_con.execute("select * from analytics.cost_breakdown").fetchone()
    columns = [d[0] for d in raw_con.description]
    assert dict(zip(columns, row, strict=True)) == {
        "run_count": 4,
        "total_cost_usd": Decimal("0.54"),  # (30.5 + 9.5 + 10 + 4) cents
        "compute_cost_usd": Decimal("0.53"),  # (30 + 9 + 10 + 4) cents
        "base_cost_usd": Decimal("0.01"),  # (0.5 + 0.5) cents
        "failed_run_count": 1,
        "failed_cost_usd": Decimal("0.095"),  # r2: 9.5 cents
        "retried_run_count": 1,
        "retried_cost_usd": Decimal("0.095"),  # r2 ran twice
        "test_run_count": 1,
        "test_cost_usd": Decimal("0.10"),  # r3
        "in_flight_run_count": 1,
        "in_flight_cost_usd": Decimal("0.04"),  # r4, so far
    }


def test_cost_movers_rank_tasks_and_accounts_by_their_change_against_the_period_before(raw_con) -> None:
    # Period 11-20 Nov (10 days); the period before: 1-10 Nov.
    for run_id, account, task, day, cents in [
        ("p1", ACCOUNT_A, "render", 5, 100), ("n1", ACCOUNT_A, "render", 15, 300),  # +$2.00
        ("p2", ACCOUNT_A, "sync", 6, 200), ("n2", ACCOUNT_A, "sync", 16, 50),  # -$1.50
        ("n3", ACCOUNT_B, "mail", 17, 25),  # +$0.25, nothing before
        ("p4", ACCOUNT_B, "same", 7, 100), ("n4", ACCOUNT_B, "same", 18, 100),  # unchanged: no row
        ("o5", ACCOUNT_B, "same", 30, 9999),  # after the period: no part in either
    ]:  # fmt: skip
        _insert_run(raw_con, run_id, account, task, "COMPLETED", _day(day), cost=cents)
    apply_models(raw_con)
    _period(raw_con, date(2026, 11, 11), date(2026, 11, 20))
    rows = raw_con.execute(
        "select dimension, name, previous_cost_usd, cost_usd, change_usd, change_rank"
        " from analytics.cost_movers order by dimension, change_rank"
    ).fetchall()
    assert rows == [
        ("account", ACCOUNT_A, Decimal("3"), Decimal("3.5"), Decimal("0.5"), 1),  # 1 + 2 -> 3 + 0.5
        ("account", ACCOUNT_B, Decimal("1"), Decimal("1.25"), Decimal("0.25"), 2),  # 1 -> 0.25 + 1
        ("task", "render", Decimal("1"), Decimal("3"), Decimal("2"), 1),
        ("task", "sync", Decimal("2"), Decimal("0.5"), Decimal("-1.5"), 2),
        ("task", "mail", Decimal("0"), Decimal("0.25"), Decimal("0.25"), 3),
    ]


def test_month_to_date_projects_the_daily_rate_to_the_month_end(raw_con) -> None:
    for run_id, day, month, cents in [("a", 5, 11, 400), ("b", 20, 11, 600), ("late", 21, 11, 10000),
                                      ("oct", 15, 10, 3100), ("sep", 30, 9, 5000)]:  # fmt: skip
        _insert_run(raw_con, run_id, ACCOUNT_A, "render", "COMPLETED", _day(day, month), cost=cents)
    apply_models(raw_con)
    _period(raw_con, date(2026, 10, 22), date(2026, 11, 20))
    assert raw_con.execute(
        "select month_start, through_day, days_counted, days_in_month, cost_usd, projected_cost_usd,"
        " previous_month_cost_usd from analytics.month_to_date"
    ).fetchall() == [
        # $4 + $6 in 20 of November's 30 days: $10 / 20 * 30 = $15; October whole: $31
        (NOV, date(2026, 11, 20), 20, 30, Decimal("10"), Decimal("15.00"), Decimal("31")),
    ]


def test_top_runs_rank_the_costliest_runs_with_their_ids(raw_con) -> None:
    for run_id, cents in [("run_b", 700), ("run_a", 700), ("run_c", 500)]:
        _insert_run(raw_con, run_id, ACCOUNT_A, "render", "COMPLETED", T0, cost=cents, duration_ms=90_000)
    _insert_run(raw_con, "run_old", ACCOUNT_A, "render", "COMPLETED", T0 - timedelta(days=60), cost=99_999)
    apply_models(raw_con)
    _period(raw_con, NOV, date(2026, 11, 30))
    assert raw_con.execute(
        "select cost_rank, run_id, total_cost_usd, duration_s from analytics.top_runs order by cost_rank"
    ).fetchall() == [
        (1, "run_a", Decimal("7"), 90.0),
        (2, "run_b", Decimal("7"), 90.0),
        (3, "run_c", Decimal("5"), 90.0),
    ]


def test_cost_by_tag_counts_each_tagged_run_once_per_tag(raw_con) -> None:
    _insert_run(raw_con, "r1", ACCOUNT_A, "render", "COMPLETED", T0, cost=100)
    _insert_run(raw_con, "r2", ACCOUNT_A, "render", "COMPLETED", T0, cost=200)
    _insert_run(raw_con, "r3", ACCOUNT_A, "render", "COMPLETED", T0, cost=400)
    _insert_run(raw_con, "r4", ACCOUNT_A, "render", "COMPLETED", T0, cost=800)  # untagged: in no row
    _tag(raw_con, "r1", "artist:a", "campaign:x")
    _tag(raw_con, "r2", "artist:b")
    _tag(raw_con, "r3", "artist:a", "artist:a")  # the same tag twice counts once
    apply_models(raw_con)
    _period(raw_con, NOV, date(2026, 11, 30))
    assert raw_con.execute(
        "select tag_key, tag_value, run_count, total_cost_usd from analytics.cost_by_tag order by 1, 2"
    ).fetchall() == [
        ("artist", "a", 2, Decimal("5")),  # r1 $1 + r3 $4
        ("artist", "b", 1, Decimal("2")),
        ("campaign", "x", 1, Decimal("1")),
    ]


def test_speed_by_task_totals_the_execution_time_in_hours(raw_con) -> None:
    _insert_run(
        raw_con, "r1", ACCOUNT_A, "render", "COMPLETED", T0, started=T0, duration_ms=5_400_000
    )  # 1.5 h
    _insert_run(
        raw_con, "r2", ACCOUNT_A, "render", "COMPLETED", T0, started=T0, duration_ms=1_800_000
    )  # 0.5 h
    _insert_run(raw_con, "r3", ACCOUNT_A, "render", "QUEUED", T0)  # never started: no time
    apply_models(raw_con)
    _period(raw_con, NOV, date(2026, 11, 30))
    assert raw_con.execute("select run_count, total_duration_h from analytics.speed_by_task").fetchall() == [
        (3, 2.0)
    ]


def test_the_catalog_lists_every_analytics_column_with_its_type_description_and_lineage(raw_con) -> None:
    _insert_run(raw_con, "r1", ACCOUNT_A, "render", "COMPLETED", T0, cost=100)
    apply_models(raw_con)
    described = raw_con.execute("""
        select table_name, column_name, data_type, comment from duckdb_columns()
        where schema_name = 'analytics' and table_name <> 'catalog' order by 1, column_index
    """).fetchall()  # fmt: skip
    catalog = raw_con.execute("""
        select split_part(relation, '.', 2), column_name, data_type, description from analytics.catalog
        order by 1, column_index
    """).fetchall()  # fmt: skip
    assert catalog == described and len(catalog) > 150, "every column, as the file's own comments say"
    lineage = dict(raw_con.execute("select distinct relation, built_from from analytics.catalog").fetchall())
    assert lineage["analytics.cost_by_task"] == "analytics.runs_in_period"
    assert lineage["analytics.runs_in_scope"] == "analytics.runs, staging.report_period"
    assert lineage["analytics.runs_in_period"] == "analytics.runs_in_scope, staging.report_period"
    assert raw_con.execute("select count(*) from analytics.catalog where description = ''").fetchone() == (0,)
