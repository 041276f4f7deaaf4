"""The SQL models: integrity on a synced warehouse, and hand-worked given/expected rows."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.models import SQL_DIR, ModelError, apply_models, load_models
from pipelines.recoup.settings import GROUP_OF_STATUS
from tests.conftest import ISO_UTC, run_recoup

ACCOUNT_A = "aaaaaaaa-0000-4000-8000-000000000001"
ACCOUNT_B = "bbbbbbbb-0000-4000-8000-000000000002"
T0 = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


# -- integrity on a real synced warehouse -------------------------------------------------------


@pytest.mark.slow
def test_keys_are_unique_and_not_null(sync, query) -> None:
    sync()
    assert (
        query("select count(*), count(distinct run_id), count(run_id) from analytics.runs")[0]
        == (query("select count(*) from analytics.runs")[0][0],) * 3
    )
    assert query("select count(*) from analytics.runs where account_id is null or created_at is null") == [
        (0,)
    ]
    dupes = query(
        "select run_id, attempt_number, count(*) from analytics.run_attempts group by all having count(*) > 1"
    )
    assert dupes == []
    assert query("select count(*) from analytics.run_tags group by run_id, tag having count(*) > 1") == []


@pytest.mark.slow
def test_status_group_takes_only_accepted_values(sync, query, world) -> None:
    odd = world.add_run(world.account_ids[0], created_at=world.now - timedelta(minutes=2))
    world.change_run(odd["id"], status="COMPLETED")
    odd["status"] = "BRAND_NEW_STATUS"
    sync()
    groups = {r[0] for r in query("select distinct status_group from analytics.runs")}
    assert groups <= {"queued", "running", "waiting", "succeeded", "failed", "canceled", "expired", "unknown"}
    assert query("select status_group from analytics.runs where run_id = ?", odd["id"]) == [("unknown",)]


@pytest.mark.slow
def test_a_sync_fills_the_api_fields_of_runs(sync, query) -> None:
    sync()
    filled = query("""
        select count(*), count(env_id), count(task_kind), count(depth), count(trigger_function),
            count(metadata), count(ttl) filter (where status_group = 'queued')
        from analytics.runs
    """)[0]  # fmt: skip
    assert filled[0] > 0 and all(n > 0 for n in filled[1:]), filled


@pytest.mark.slow
def test_dlt_staging_schema_is_not_left_to_analysts_and_later_syncs_still_merge(sync, query, world) -> None:
    sync()
    assert query("select schema_name from duckdb_schemas() where schema_name like 'raw_%'") == []
    run = world.add_run(world.account_ids[0], created_at=world.now - timedelta(minutes=1))
    sync()  # dlt stages the merge again
    world.change_run(run["id"], status="FAILED")
    sync()
    assert query("select status from analytics.runs where run_id = ?", run["id"]) == [("FAILED",)]
    assert query("select count(*) = count(distinct run_id) from analytics.runs") == [(True,)]
    assert query("select schema_name from duckdb_schemas() where schema_name like 'raw_%'") == []


@pytest.mark.slow
def test_tags_and_attempts_point_at_existing_runs(sync, query) -> None:
    sync()
    for table in ("run_tags", "run_attempts"):
        orphans = query(f"select count(*) from analytics.{table} t anti join analytics.runs r using (run_id)")
        assert orphans == [(0,)], table
    assert query("select count(*) from analytics.run_tags")[0][0] > 0
    assert query("select count(*) from analytics.run_attempts")[0][0] > 0


def test_sql_status_groups_match_the_sync(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "x.duckdb")) as con:
        sql = (SQL_DIR / "staging" / "status_groups.sql").read_text()
        assert {status: group for status, group, *_ in con.execute(sql).fetchall()} == GROUP_OF_STATUS


# -- the runner -----------------------------------------------------------------------------------


def test_every_model_file_says_what_a_row_is() -> None:
    for model in load_models():
        first = model.sql.splitlines()[0]
        if first.startswith("-- materialized"):
            first = model.sql.splitlines()[1]
        assert first.startswith("-- One row"), model.path


def _undescribed(con) -> list[tuple]:
    """Every analytics relation and column whose catalog comment is missing or blank."""
    return con.execute("""
        select 'relation', table_name, null from duckdb_tables() where schema_name = 'analytics'
            and coalesce(trim(comment), '') = ''
        union all
        select 'relation', view_name, null from duckdb_views() where schema_name = 'analytics'
            and coalesce(trim(comment), '') = ''
        union all
        select 'column', table_name, column_name from duckdb_columns() where schema_name = 'analytics'
            and coalesce(trim(comment), '') = ''
    """).fetchall()


@pytest.mark.slow
def test_every_analytics_relation_and_column_has_a_catalog_comment(sync, db_path: Path) -> None:
    sync()
    sync()  # the second sync updates the tables incrementally: the comments must survive it
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert _undescribed(con) == []
        described = con.execute(
            "select count(*) from duckdb_columns() where schema_name = 'analytics' and comment <> ''"
        ).fetchone()[0]
        assert described >= 90
        comment = con.execute(
            "select comment from duckdb_columns() where schema_name = 'analytics' and table_name = 'runs'"
            " and column_name = 'status_group'"
        ).fetchone()[0]
    assert comment.startswith(
        "the status grouped over both API vocabularies: queued, running, waiting, succeeded"
    )


@pytest.mark.slow
def test_a_model_file_must_describe_every_column_it_has_and_no_other(warehouse_con, tmp_path: Path) -> None:
    changed = tmp_path / "sql"
    shutil.copytree(SQL_DIR, changed)
    runs = changed / "marts" / "runs.sql"
    original = runs.read_text()
    runs.write_text(original.replace("--   is_test: true for a test run (the API's isTest)\n", ""))
    with pytest.raises(ModelError, match=r"sql/marts/runs\.sql does not describe its columns is_test"):
        apply_models(warehouse_con, changed)
    runs.write_text(original.replace("--   is_test:", "--   is_a_test:"))
    with pytest.raises(
        ModelError, match=r"sql/marts/runs\.sql describes columns it does not have: is_a_test"
    ):
        apply_models(warehouse_con, changed)
    assert _undescribed(warehouse_con) == []  # the previous models and their comments stand


@pytest.mark.slow
def test_applying_twice_changes_nothing(warehouse_con) -> None:
    first = warehouse_con.execute("select * from analytics.daily_cost order by all").fetchall()
    apply_models(warehouse_con)
    assert warehouse_con.execute("select * from analytics.daily_cost order by all").fetchall() == first


@pytest.mark.slow
def test_a_broken_model_names_its_file_and_keeps_the_previous_models(warehouse_con, tmp_path: Path) -> None:
    broken = tmp_path / "sql"
    shutil.copytree(SQL_DIR, broken)
    (broken / "marts" / "daily_cost.sql").write_text(
        "-- One row of nothing\nselect no_such_column from analytics.runs"
    )
    before = warehouse_con.execute("select count(*) from analytics.daily_cost").fetchall()
    with pytest.raises(ModelError, match=r"sql/marts/daily_cost\.sql: Binder Error"):
        apply_models(warehouse_con, broken)
    assert warehouse_con.execute("select count(*) from analytics.daily_cost").fetchall() == before
    staged = (
        "select table_name from information_schema.tables where table_name like '%\\_\\_next' escape '\\'"
    )
    assert warehouse_con.execute(staged).fetchall() == [], "nothing staged is left behind"


@pytest.mark.slow
def test_a_full_rebuild_runs_within_the_memory_sized_for_the_stored_runs(
    warehouse_con, tmp_path: Path
) -> None:
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    (sql_dir / "marts" / "build_memory.sql").write_text(
        "-- One row: DuckDB's memory limit while the build ran.\n-- materialized: table\n-- Columns:\n"
        "--   memory_limit: the limit, as DuckDB shows it\nselect current_setting('memory_limit') as memory_limit"
    )
    warehouse_con.execute("set memory_limit = '200MB'")
    asked: list[int] = []

    def limits(runs: int) -> dict[str, str | int]:
        asked.append(runs)
        return {"memory_limit": "300MB"}

    apply_models(warehouse_con, sql_dir, rebuild_limits=limits)
    stored = warehouse_con.execute("select count(*) from raw.runs").fetchone()[0]
    assert asked == [stored]
    built = warehouse_con.execute("select memory_limit from analytics.build_memory").fetchone()[0]
    assert built == "286.1 MiB", "the rebuild ran within 300 MB, not the connection's 200 MB"
    apply_models(warehouse_con, sql_dir, changed_since=T0, rebuild_limits=limits)
    assert asked == [stored], "an update keeps the connection's limits"


@pytest.mark.slow
def test_make_models_rebuilds_within_memory_for_the_stored_runs_and_a_sync_within_the_models_own(
    sync, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.config import load_settings
    from pipelines.models import runner
    from pipelines.storage import open_storage
    from pipelines.warehouse import connection

    limits: list[str] = []
    staged_rebuild = runner.rebuild

    def watched(con, *args) -> None:
        limits.append(con.execute("select current_setting('memory_limit')").fetchone()[0])
        staged_rebuild(con, *args)

    monkeypatch.setattr(runner, "rebuild", watched)
    monkeypatch.setattr(
        connection, "REBUILD_MB_PER_MILLION_RUNS", 10**12
    )  # more than the cap, whatever the runs
    assert sync(RECOUP_MEMORY_MB="300").exit_code == 0  # a first sync rebuilds the models whole
    storage = load_settings(
        {"RECOUP_API_KEY": "key", "RECOUP_DB": str(db_path), "RECOUP_MEMORY_MB": "300"}
    ).storage
    open_storage(storage).rebuild_models()  # what `make models` runs
    assert limits == ["122.0 MiB", "286.1 MiB"], "the sync within 128 MB; make models within the 300 MB cap"


@pytest.mark.slow
def test_the_runs_a_failed_build_left_out_reach_analytics_at_the_next_sync(
    world, sync, query, db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync whose build fails still stores its runs; the next sync, with nothing new, models them."""
    from pipelines.config import FileSettings
    from pipelines.status import read_status
    from pipelines.storage import file as file_storage

    assert sync().exit_code == 0
    broken = tmp_path / "sql"
    shutil.copytree(SQL_DIR, broken)
    (broken / "marts" / "daily_cost.sql").write_text("select no_such_column from analytics.runs")
    monkeypatch.setattr(file_storage, "apply_models", lambda con, **kw: apply_models(con, broken, **kw))
    world.advance(minutes=5)
    for account in world.account_ids:
        world.add_run(account, created_at=world.now)
    failed = sync()
    assert failed.exit_code == 1 and "daily_cost.sql" in (failed.model_error or "")
    counts = "select (select count(distinct id) from raw.runs), (select count(*) from analytics.runs)"
    raw, modelled = query(counts)[0]
    assert raw == modelled + len(world.account_ids), "stored, not yet modelled"
    status = read_status(FileSettings(db=db_path))
    assert status.models_behind is not None
    assert any(line.startswith("models: BEHIND") for line in status.lines(None))

    monkeypatch.undo()
    again = sync()  # the API shows nothing new: only the lag is left to mend
    assert again.exit_code == 0 and sum(r.new for r in again.results) == 0
    assert query(counts)[0] == (raw, raw)
    assert read_status(FileSettings(db=db_path)).models_behind is None


def test_a_model_that_breaks_a_data_test_fails_the_build_by_the_tests_name(
    warehouse_con, tmp_path: Path
) -> None:
    changed = tmp_path / "sql"
    shutil.copytree(SQL_DIR, changed)
    runs = changed / "marts" / "runs.sql"  # every run twice: the key is no longer unique
    runs.write_text(
        runs.read_text().replace("select * from final", "select * from final union all select * from final")
    )
    before = warehouse_con.execute("select count(*) from analytics.runs").fetchall()
    with pytest.raises(
        ModelError, match=r"data test sql/tests/runs_have_one_row_per_run_id\.sql failed: .*run_id=run_1"
    ):
        apply_models(warehouse_con, changed)
    assert warehouse_con.execute("select count(*) from analytics.runs").fetchall() == before, (
        "the previous models stand"
    )


def test_every_data_test_runs_and_passes_on_a_built_warehouse(warehouse_con) -> None:
    from pipelines.models.checks import check_models, data_tests

    assert check_models(warehouse_con) == len(data_tests()) >= 5


# -- given rows, expected rows --------------------------------------------------------------------


def _insert_run(con, run_id: str, account: str, task: str, status: str, created: datetime, *,
                cost: float = 0.0, base: float = 0.0, started: datetime | None = None, duration_ms: int = 0,
                is_test: bool = False, env: str = "prod", attempts: int = 1, error: str | None = None) -> None:  # fmt: skip
    row = {"id": run_id, "account_id": account, "status": status, "task_identifier": task, "created_at": created,
           "updated_at": created, "started_at": started, "seen_at": T0, "is_test": is_test, "env_name": env,
           "cost_in_cents": cost, "base_cost_in_cents": base, "duration_ms": duration_ms, "has_attempts": True,
           "has_error": True, "error_message": error, "observation_id": f"{run_id}-obs", "attempts_listed": attempts}  # fmt: skip
    names = ", ".join(row)
    con.execute(f"insert into raw.runs ({names}) values ({', '.join('?' * len(row))})", list(row.values()))
    for n in range(attempts):
        con.execute(
            "insert into raw.runs__attempts (run_id, observation_id, attempt_id, attempt_number, status)"
            " values (?, ?, ?, ?, 'COMPLETED')",
            [run_id, f"{run_id}-obs", f"{run_id}-a{n}", n + 1],
        )


@pytest.fixture
def warehouse_con(raw_con) -> duckdb.DuckDBPyConnection:
    _insert_run(raw_con, "run_1", ACCOUNT_A, "render", "COMPLETED", T0, cost=1.005, base=0.0025)
    apply_models(raw_con)
    return raw_con


def _period(con, start: date, end: date) -> None:
    con.execute("set variable period_start = ?", [start])
    con.execute("set variable period_end = ?", [end])


@pytest.mark.slow
def test_daily_cost_splits_days_in_utc_whatever_the_reader_timezone(raw_con) -> None:
    last_ms = datetime(2026, 11, 10, 23, 59, 59, 999000, tzinfo=UTC)
    _insert_run(raw_con, "r1", ACCOUNT_A, "render", "COMPLETED", last_ms, cost=1.005, base=0.0025)
    _insert_run(
        raw_con,
        "r2",
        ACCOUNT_A,
        "render",
        "FAILED",
        last_ms + timedelta(milliseconds=1),
        cost=0.3333,
        base=0.0025,
    )
    _insert_run(
        raw_con, "r3", ACCOUNT_A, "render", "CRASHED", last_ms + timedelta(hours=1), cost=2.5, is_test=True
    )
    _insert_run(raw_con, "r4", ACCOUNT_A, "render", "COMPLETED", last_ms, cost=10, env="staging")
    raw_con.execute("set TimeZone = 'America/Los_Angeles'")
    apply_models(raw_con)
    rows = raw_con.execute(
        "select day, env_name, run_count, failed_run_count, round(total_cost_usd, 8) from analytics.daily_cost order by all"
    ).fetchall()
    assert rows == [
        (date(2026, 11, 10), "prod", 1, 0, Decimal("0.010075")),  # (1.005 + 0.0025) / 100
        (date(2026, 11, 10), "staging", 1, 0, Decimal("0.1")),
        (
            date(2026, 11, 11),
            "prod",
            2,
            2,
            Decimal("0.028358"),
        ),  # (0.3333 + 0.0025 + 2.5) / 100, test run included
    ]


@pytest.mark.slow
def test_money_is_decimal_and_sums_to_the_api_cents_exactly(world, sync, query) -> None:
    for run_id in list(world.runs)[::3]:  # 0.1 + 0.2 is not 0.3 in binary floating point
        world.change_run(run_id, costInCents=0.1, baseCostInCents=0.2)
    sync()
    stored = {run_id for (run_id,) in query("select run_id from analytics.runs")}
    cents = [(world.runs[r]["costInCents"], world.runs[r]["baseCostInCents"]) for r in stored]
    exact = sum((Decimal(repr(cost)) + Decimal(repr(base))) / 100 for cost, base in cents)
    assert len(stored) > 50
    types = query(
        "select table_name, column_name, data_type from duckdb_columns() where schema_name = 'analytics'"
        " and (column_name like '%cost_cents' or column_name like '%_usd') and data_type not like 'DECIMAL%'"
    )
    assert types == []
    assert query("select sum(total_cost_usd) from analytics.runs") == [(exact,)]
    assert query("select sum(total_cost_usd) from analytics.daily_cost") == [(exact,)]
    runs = query(
        "select cost_cents, base_cost_cents, total_cost_usd from analytics.runs where cost_cents = 0.1"
    )
    assert runs and set(runs) == {(Decimal("0.1"), Decimal("0.2"), Decimal("0.003"))}


def test_cost_by_task_and_cost_per_successful_run(raw_con) -> None:
    _insert_run(raw_con, "r1", ACCOUNT_A, "render", "COMPLETED", T0, cost=30, base=0.5)
    _insert_run(raw_con, "r2", ACCOUNT_A, "render", "COMPLETED", T0, cost=10, base=0.5)
    _insert_run(raw_con, "r3", ACCOUNT_A, "render", "FAILED", T0, cost=9, base=0)
    _insert_run(raw_con, "r4", ACCOUNT_B, "render", "FAILED", T0, cost=4)
    _insert_run(
        raw_con, "r5", ACCOUNT_A, "render", "COMPLETED", T0 - timedelta(days=40), cost=1000
    )  # outside
    apply_models(raw_con)
    _period(raw_con, date(2026, 11, 1), date(2026, 11, 30))
    rows = raw_con.execute(
        "select account_id, run_count, succeeded_run_count, failed_run_count, round(total_cost_usd, 6),"
        " round(cost_per_successful_run_usd, 6) from analytics.cost_by_task order by account_id"
    ).fetchall()
    assert rows == [
        (ACCOUNT_A, 3, 2, 1, Decimal("0.5"), Decimal("0.25")),
        (ACCOUNT_B, 1, 0, 1, Decimal("0.04"), None),
    ]


def test_reliability_by_task(raw_con) -> None:
    _insert_run(raw_con, "r1", ACCOUNT_A, "sync", "COMPLETED", T0, attempts=1)
    _insert_run(raw_con, "r2", ACCOUNT_A, "sync", "COMPLETED", T0, attempts=3)
    _insert_run(raw_con, "r3", ACCOUNT_A, "sync", "TIMED_OUT", T0, attempts=2, error="took too long")
    _insert_run(raw_con, "r4", ACCOUNT_A, "sync", "EXECUTING", T0, attempts=1)
    _insert_run(raw_con, "r5", ACCOUNT_A, "sync", "CANCELED", T0, attempts=0)
    _insert_run(raw_con, "r6", ACCOUNT_A, "sync", "FAILED", T0, attempts=1, error="took too long")
    _insert_run(raw_con, "r7", ACCOUNT_A, "sync", "CRASHED", T0, attempts=1, error="oom")
    apply_models(raw_con)
    _period(raw_con, date(2026, 11, 10), date(2026, 11, 10))
    row = raw_con.execute("select * from analytics.reliability_by_task").fetchall()
    # finished = 6 (all but EXECUTING); failed = 3 -> 0.5; retried = r2, r3
    assert row == [("sync", 7, 6, 3, 0.5, 2)]
    errors = raw_con.execute(
        "select error_message, run_count, error_rank from analytics.top_errors order by 3"
    ).fetchall()
    assert errors == [("took too long", 2, 1), ("oom", 1, 2)]


@pytest.mark.slow
def test_reliability_speed_and_errors_split_by_account_and_environment(raw_con) -> None:
    _insert_run(raw_con, "a1", ACCOUNT_A, "sync", "COMPLETED", T0, attempts=2, started=T0, duration_ms=10_000)
    _insert_run(raw_con, "a2", ACCOUNT_A, "sync", "FAILED", T0, error="boom", started=T0, duration_ms=30_000)
    _insert_run(raw_con, "a3", ACCOUNT_A, "sync", "CRASHED", T0, env="staging", error="oom", started=T0,
                duration_ms=5_000)  # fmt: skip
    _insert_run(raw_con, "b1", ACCOUNT_B, "sync", "FAILED", T0, error="boom", started=T0, duration_ms=2_000)
    _insert_run(raw_con, "b2", ACCOUNT_B, "sync", "FAILED", T0, error="boom", started=T0, duration_ms=4_000)
    _insert_run(raw_con, "b3", ACCOUNT_B, "sync", "EXECUTING", T0)
    apply_models(raw_con)
    _period(raw_con, date(2026, 11, 10), date(2026, 11, 10))
    reliability = raw_con.execute(
        "select * from analytics.reliability_by_account_env order by all"
    ).fetchall()
    assert reliability == [
        (ACCOUNT_A, "prod", "sync", 2, 2, 1, 0.5, 1),
        (ACCOUNT_A, "staging", "sync", 1, 1, 1, 1.0, 0),
        (ACCOUNT_B, "prod", "sync", 3, 2, 2, 1.0, 0),
    ]
    speed = raw_con.execute(
        "select account_id, env_name, run_count, duration_p50_s from analytics.speed_by_account_env order by all"
    ).fetchall()
    assert speed == [
        (ACCOUNT_A, "prod", 2, 20.0),
        (ACCOUNT_A, "staging", 1, 5.0),
        (ACCOUNT_B, "prod", 3, 3.0),
    ]
    errors = raw_con.execute(
        "select account_id, env_name, error_message, run_count, error_rank from analytics.top_errors_by_account_env"
        " order by all"
    ).fetchall()
    assert errors == [(ACCOUNT_A, "prod", "boom", 1, 1), (ACCOUNT_A, "staging", "oom", 1, 1),
                      (ACCOUNT_B, "prod", "boom", 2, 1)]  # fmt: skip
    whole = raw_con.execute(
        "select run_count, finished_run_count, failed_run_count from analytics.reliability_by_task"
    )
    assert whole.fetchall() == [(6, 5, 4)]  # the split adds up to the whole


@pytest.mark.slow
def test_period_views_leave_out_test_and_in_flight_runs_when_told(raw_con) -> None:
    _insert_run(raw_con, "done", ACCOUNT_A, "render", "COMPLETED", T0, cost=100, started=T0, duration_ms=4000)
    _insert_run(raw_con, "test", ACCOUNT_A, "render", "FAILED", T0, cost=10, is_test=True)
    _insert_run(raw_con, "busy", ACCOUNT_A, "render", "EXECUTING", T0, cost=1, started=T0)
    apply_models(raw_con)
    _period(raw_con, date(2026, 11, 10), date(2026, 11, 10))
    daily = "select status_group, run_count, total_cost_usd from analytics.daily_runs order by all"
    assert raw_con.execute(daily).fetchall() == [
        ("failed", 1, Decimal("0.1")),
        ("running", 1, Decimal("0.01")),
        ("succeeded", 1, Decimal("1")),
    ]  # every run unless told otherwise
    raw_con.execute("set variable include_test_runs = false")
    raw_con.execute("set variable include_in_flight_runs = false")
    assert raw_con.execute(daily).fetchall() == [("succeeded", 1, Decimal("1"))]
    health = raw_con.execute("select * from analytics.daily_task_health").fetchall()
    assert health == [(date(2026, 11, 10), "render", 1, 0, 4.0, 4.0)]


@pytest.mark.slow
def test_speed_by_task_percentiles_and_queue_wait(raw_con) -> None:
    for i, (wait_s, duration_s) in enumerate([(1, 10), (2, 20), (3, 30), (4, 40), (5, 50)]):
        _insert_run(raw_con, f"r{i}", ACCOUNT_A, "render", "COMPLETED", T0,
                    started=T0 + timedelta(seconds=wait_s), duration_ms=duration_s * 1000)  # fmt: skip
    _insert_run(raw_con, "queued", ACCOUNT_A, "render", "QUEUED", T0)  # never started: counts for neither
    apply_models(raw_con)
    _period(raw_con, date(2026, 11, 10), date(2026, 11, 10))
    row = raw_con.execute("select * from analytics.speed_by_task").fetchall()
    # total: (10 + 20 + 30 + 40 + 50) s = 150 s in hours; quantile_cont over 5 values: p50 = middle,
    # p95 = 4th + 0.8 * (5th - 4th)
    assert row == [("render", 6, 150 / 3600, 30.0, 48.0, 3.0, 4.8)]


@pytest.mark.slow
def test_cost_anomalies_against_the_trailing_7_day_median(raw_con) -> None:
    for day in range(8):
        cost = 100.0 if day < 7 else 500.0  # cents per day: $1 for a week, then $5
        _insert_run(raw_con, f"a{day}", ACCOUNT_A, "render", "COMPLETED", T0 + timedelta(days=day), cost=cost)
        _insert_run(
            raw_con, f"b{day}", ACCOUNT_B, "render", "COMPLETED", T0 + timedelta(days=day), cost=250.0
        )
    apply_models(raw_con)
    rows = raw_con.execute(
        "select day, account_id, total_cost_usd, trailing_median_usd, ratio from analytics.cost_anomalies"
    ).fetchall()
    assert rows == [(date(2026, 11, 17), ACCOUNT_A, 5.0, 1.0, 5.0)]
    raw_con.execute("set variable anomaly_multiple = 6")
    assert raw_con.execute("select count(*) from analytics.cost_anomalies").fetchall() == [(0,)]


def test_cost_anomalies_within_a_period_are_the_same_rows_for_its_days(raw_con) -> None:
    for day in range(8):  # $1 a day for a week, then $5
        _insert_run(raw_con, f"a{day}", ACCOUNT_A, "render", "COMPLETED", T0 + timedelta(days=day),
                    cost=100.0 if day < 7 else 500.0)  # fmt: skip
    # A run on day 0, then nothing until day 10: seven days of nothing before it, read or not.
    for day in (0, 10):
        _insert_run(
            raw_con, f"b{day}", ACCOUNT_B, "render", "COMPLETED", T0 + timedelta(days=day), cost=100.0
        )
    apply_models(raw_con)
    query = "select day, account_id, total_cost_usd, trailing_median_usd, ratio from analytics.cost_anomalies"
    everything = raw_con.execute(f"{query} order by all").fetchall()
    assert [(day, account) for day, account, *_ in everything] == [
        (date(2026, 11, 17), ACCOUNT_A),
        (date(2026, 11, 20), ACCOUNT_B),
    ]
    for start in range(4, 12):
        _period(raw_con, (T0 + timedelta(days=start)).date(), date(2026, 11, 30))
        within = [row for row in everything if row[0] >= (T0 + timedelta(days=start)).date()]
        assert raw_con.execute(f"{query} order by all").fetchall() == within, start


@pytest.mark.slow
def test_runs_carry_the_api_fields_latest_answer_first(raw_con) -> None:
    """The latest answer's value wins; a field it left null keeps the earlier answer's value."""
    _insert_run(raw_con, "child", ACCOUNT_A, "render", "FAILED", T0, error="boom")
    raw_con.execute("""
        update raw.runs set env_id = 'env_prod', version = '20261110.1', batch_id = 'batch_1', depth = 1,
            idempotency_key = 'idem-7', trigger_function = 'batchTrigger', task_kind = 'STANDARD',
            region = 'eu-central-1', error_name = 'Error', metadata = '{"artist": "Beyonc\u00e9"}',
            related_runs = '{"root": {"id": "run_root"}, "parent": {"id": "run_parent"}, "children": []}',
            ttl = '"10m"', delayed_until = ?, expired_at = null""", [T0 + timedelta(minutes=5)])  # fmt: skip
    raw_con.execute(
        "insert into raw.run_details (id, status, task_identifier, created_at, updated_at, seen_at, has_error,"
        " error_message, error_name, has_attempts, observation_id, version, ttl, related_runs, metadata)"
        " values ('child', 'SYSTEM_FAILURE', 'render', ?, ?, ?, true, 'out of memory', 'OOMError', false,"
        " 'child-det', '20261110.2', '600', null, '{\"artist\": \"Solange\"}')",
        [T0, T0, T0 + timedelta(hours=1)],
    )
    apply_models(raw_con)
    row = raw_con.execute("""
        select version, batch_id, depth, idempotency_key, trigger_function, task_kind, region, error_name,
            metadata ->> '$.artist', parent_run_id, root_run_id, delayed_until, expired_at, ttl, env_id,
            error_message
        from analytics.runs
    """).fetchall()  # fmt: skip
    assert row == [("20261110.2", "batch_1", 1, "idem-7", "batchTrigger", "STANDARD", "eu-central-1", "OOMError",
                    "Solange", "run_parent", "run_root", T0 + timedelta(minutes=5), None, "600", "env_prod",
                    "out of memory")]  # fmt: skip
    columns = [c for (c,) in raw_con.execute(
        "select column_name from duckdb_columns() where schema_name = 'analytics' and table_name = 'runs'"
        " order by column_index").fetchall()]  # fmt: skip
    assert columns[:17] == ["run_id", "account_id", "status", "status_group", "is_test", "env_name",
                            "task_identifier", "created_at", "updated_at", "started_at", "finished_at",
                            "duration_ms", "cost_cents", "base_cost_cents", "total_cost_usd", "attempt_count",
                            "error_message"]  # fmt: skip


def test_latest_observation_wins_and_details_fields_survive(raw_con) -> None:
    """A newer list answer without error keeps the error a retrieve answer gave earlier."""
    _insert_run(raw_con, "r1", ACCOUNT_A, "sync", "FAILED", T0, attempts=2)
    raw_con.execute("update raw.runs set has_error = false, has_attempts = false, seen_at = ?, env_name = 'prod'",
                    [T0 + timedelta(hours=1)])  # fmt: skip
    raw_con.execute(
        "insert into raw.run_details (id, status, task_identifier, created_at, updated_at, seen_at, has_error,"
        " error_message, has_attempts, attempt_count, observation_id)"
        " values ('r1', 'FAILED', 'sync', ?, ?, ?, true, 'boom', false, 4, 'r1-det')",
        [T0, T0, T0 + timedelta(minutes=5)],
    )
    apply_models(raw_con)
    row = raw_con.execute(
        "select status, env_name, error_message, attempt_count from analytics.runs"
    ).fetchall()
    assert row == [("FAILED", "prod", "boom", 4)]
    assert raw_con.execute("select count(*) from analytics.run_attempts").fetchall() == [(0,)]


@pytest.mark.slow
def test_recoup_alert_names_the_spike_and_the_account_over_budget_on_a_complete_day(
    raw_con, tmp_path: Path
) -> None:
    """Hand-made days: A spends $1 a day for a week then $5 (a 5x spike); B a steady $2.50."""
    for day in range(8):
        cost = 100.0 if day < 7 else 500.0
        _insert_run(raw_con, f"a{day}", ACCOUNT_A, "render", "COMPLETED", T0 + timedelta(days=day), cost=cost)
        _insert_run(
            raw_con, f"b{day}", ACCOUNT_B, "render", "COMPLETED", T0 + timedelta(days=day), cost=250.0
        )
    apply_models(raw_con)
    raw_con.close()
    env = {"RECOUP_DB": str(tmp_path / "given.duckdb")}
    spike = run_recoup(env, "alert", "--day", "2026-11-17")
    assert spike.returncode == 1, spike.stderr
    assert [ISO_UTC.sub("", line) for line in spike.stdout.splitlines()] == [
        f"alert: account {ACCOUNT_A}: $5.00 on 2026-11-17 · 5.0x its 7-day median $1.00",
        "alert: 1 account(s) over 3x the 7-day median on 2026-11-17",
    ]
    budget = run_recoup(env, "alert", "--day", "2026-11-17", "--multiple", "6", "--daily-budget", "2")
    assert budget.returncode == 1
    assert [ISO_UTC.sub("", line) for line in budget.stdout.splitlines()[:2]] == [
        f"alert: account {ACCOUNT_A}: $5.00 on 2026-11-17 · over the daily budget $2.00",
        f"alert: account {ACCOUNT_B}: $2.50 on 2026-11-17 · over the daily budget $2.00",
    ]
    calm = run_recoup(env, "alert", "--day", "2026-11-16")
    assert calm.returncode == 0 and calm.stdout.strip().endswith(
        "0 account(s) over 3x the 7-day median on 2026-11-16"
    )
    bad = run_recoup(env, "alert", "--daily-budget", "lots")
    assert bad.returncode == 2 and "--daily-budget must be a positive amount" in bad.stderr
