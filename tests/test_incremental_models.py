"""A sync updates the model tables for the runs it loaded; the result must equal a full rebuild."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipelines import warehouse
from pipelines.models import SQL_DIR, ModelError, apply_models, checks, load_models

START = datetime(2026, 11, 1, tzinfo=UTC)
STATUSES = ["COMPLETED", "FAILED", "EXECUTING", "QUEUED", "CANCELED", "CRASHED"]

answer = st.fixed_dictionaries({
    "run": st.integers(0, 11),
    "mode": st.sampled_from(["list", "retrieve"]),
    "account": st.sampled_from(["acct-a", "acct-b"]),
    "status": st.sampled_from(STATUSES),
    "created_hours": st.integers(-30, 30),  # moves a run across UTC days
    "cost": st.one_of(st.none(), st.floats(0, 500, allow_nan=False)),
    "tags": st.lists(st.sampled_from(["artist:x", "type:song", "plain", "k:"]), max_size=3, unique=True),
    "attempts": st.one_of(st.none(), st.integers(0, 3)),
    "error": st.one_of(st.none(), st.sampled_from(["boom", "timeout"])),
})  # fmt: skip
history = st.lists(st.lists(answer, min_size=1, max_size=6), min_size=1, max_size=6)


def _create_raw(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema raw")
    for table, columns in warehouse.RAW_TABLES.items():
        con.execute(f"create table raw.{table} ({', '.join(f'{c} {t}' for c, t in columns.items())})")
    warehouse.create_sync_tables(con)


def _store(con: duckdb.DuckDBPyConnection, step: int, item: dict, seen_at: datetime) -> None:
    """Merges one answer as dlt does: the run's row and child rows are replaced."""
    root = "runs" if item["mode"] == "list" else "run_details"
    run_id, oid = f"run_{item['run']}", f"{item['mode'][0]}:{item['run']}:{step}"
    for table in (root, f"{root}__tags", f"{root}__attempts"):
        con.execute(f"delete from raw.{table} where {'id' if table == root else 'run_id'} = ?", [run_id])
    created = START + timedelta(hours=item["created_hours"])
    row = {
        "id": run_id, "observation_id": oid, "account_id": item["account"], "status": item["status"],
        "task_identifier": f"task-{item['run'] % 3}", "created_at": created,
        "updated_at": created + timedelta(minutes=step), "seen_at": seen_at, "is_test": item["run"] % 4 == 0,
        "env_name": None if item["mode"] == "retrieve" else "prod", "cost_in_cents": item["cost"],
        "base_cost_in_cents": 1.5, "has_attempts": item["attempts"] is not None,
        "attempts_listed": item["attempts"], "has_error": item["error"] is not None,
        "error_message": item["error"], "attempt_count": item["attempts"],
        "version": None if item["mode"] == "retrieve" and item["run"] % 2 else f"v{step}",
    }  # fmt: skip
    columns = ", ".join(row)
    con.execute(
        f"insert into raw.{root} ({columns}) values ({', '.join('?' * len(row))})", list(row.values())
    )
    for index, tag in enumerate(item["tags"]):
        con.execute(
            f"insert into raw.{root}__tags (run_id, observation_id, tag_index, value, seen_at) values (?, ?, ?, ?, ?)",
            [run_id, oid, index, tag, seen_at],
        )
    for number in range(item["attempts"] or 0):
        con.execute(
            f"insert into raw.{root}__attempts (run_id, observation_id, attempt_id, attempt_number, status, seen_at)"
            " values (?, ?, ?, ?, 'COMPLETED', ?)",
            [run_id, oid, f"att_{item['run']}_{number}", number + 1, seen_at],
        )


def _difference(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows that differ between each model table and its SQL run from scratch."""
    differences = {}
    for model in load_models():
        if model.kind != "table":
            continue
        fresh = f"(\n{model.sql}\n)"
        differences[model.name] = con.execute(f"""
            select count(*) from (
                (select * from {model.name} except all select * from {fresh})
                union all
                (select * from {fresh} except all select * from {model.name}))
        """).fetchone()[0]
    return differences


def _each_update_equals_a_rebuild(path: Path, steps: list[list[dict]], fixed_creation: bool) -> None:
    """Stores each step's answers, updates the models for them, and compares with a rebuild."""
    path.unlink(missing_ok=True)  # a failing example leaves its file behind; hypothesis replays it
    with duckdb.connect(str(path)) as con:
        _create_raw(con)
        apply_models(con)
        for step, answers in enumerate(steps, start=1):
            synced_at = START + timedelta(days=step)
            for item in answers:
                if fixed_creation:  # one creation per run, runs up to 55 hours apart across UTC days
                    item = {**item, "created_hours": item["run"] * 5 - 30}
                _store(con, step, item, synced_at + timedelta(seconds=1))
            apply_models(con, changed_since=synced_at, fixed_creation=fixed_creation)
            assert _difference(con) == {"intermediate.run_versions": 0, "analytics.daily_cost": 0}
    path.unlink()


def _listed(run: int) -> dict:
    return {"run": run, "mode": "list", "account": "acct-a", "status": "COMPLETED", "created_hours": 0,
            "cost": 2.0, "tags": [], "attempts": None, "error": None}  # fmt: skip


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=history)
def test_incremental_models_equal_a_full_rebuild(tmp_path: Path, steps: list[list[dict]]) -> None:
    _each_update_equals_a_rebuild(tmp_path / "models.duckdb", steps, fixed_creation=False)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=history)
# A day's cost is rebuilt from runs of that day that this update did not change: created at
# midnight (run 6), two steps before the run created at 20:00 (run 10) that it changes.
@example(steps=[[_listed(6)], [_listed(10)], [_listed(10)]])
def test_an_update_bounded_by_fixed_creation_times_equals_a_full_rebuild(
    tmp_path: Path, steps: list[list[dict]]
) -> None:
    """The lake's update: every answer about a run gives it the same creation time, as the API's do."""
    _each_update_equals_a_rebuild(tmp_path / "fixed.duckdb", steps, fixed_creation=True)


def test_the_difference_check_sees_a_stale_table(tmp_path: Path) -> None:
    """The comparison above can fail: a change that skips the model update is caught."""
    with duckdb.connect(str(tmp_path / "stale.duckdb")) as con:
        _create_raw(con)
        apply_models(con)
        item = {"run": 1, "mode": "list", "account": "acct-a", "status": "FAILED", "created_hours": 0,
                "cost": 3.0, "tags": [], "attempts": None, "error": None}  # fmt: skip
        _store(con, 1, item, START)
        assert _difference(con)["intermediate.run_versions"] == 1
        versions = next(m for m in load_models() if m.name == "intermediate.run_versions")
        con.execute(f"create or replace table {versions.name} as {versions.sql}")  # only this one
        assert _difference(con) == {"intermediate.run_versions": 0, "analytics.daily_cost": 1}


@pytest.mark.parametrize("listed", [checks.LISTED, 0], ids=["keys-as-literals", "keys-in-a-table"])
def test_after_an_update_a_scoped_data_test_checks_the_changed_runs_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listed: int
) -> None:
    """A data test with `-- on update: run_id` reads only the changed runs after an update."""
    monkeypatch.setattr(checks, "LISTED", listed)
    sql = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql)
    item = {"run": 1, "mode": "list", "account": "acct-a", "status": "COMPLETED", "created_hours": 0,
            "cost": 3.0, "tags": [], "attempts": None, "error": None}  # fmt: skip
    with duckdb.connect(str(tmp_path / "scoped.duckdb")) as con:
        _create_raw(con)
        _store(con, 1, item, START - timedelta(hours=1))  # older than the newest answer the build covers
        _store(con, 1, {**item, "run": 2}, START)
        apply_models(con)
        (sql / "tests" / "run_1_is_never_failed.sql").write_text(
            "-- analytics.runs: run_1 never failed (a test this test breaks on purpose).\n"
            "-- on update: run_id\n"
            "select run_id from analytics.runs where run_id = 'run_1' and status = 'FAILED'\n"
        )
        # run_1 breaks the test in the built table, but is not among the next update's runs
        con.execute("update intermediate.run_versions set status = 'FAILED' where run_id = 'run_1'")
        _store(con, 2, {**item, "run": 2, "status": "FAILED"}, START + timedelta(days=1, seconds=1))
        apply_models(con, sql, changed_since=START + timedelta(days=1))  # run_2 alone is checked
        _store(con, 3, {**item, "status": "FAILED"}, START + timedelta(days=2, seconds=1))
        with pytest.raises(ModelError, match=r"data test sql/tests/run_1_is_never_failed\.sql failed"):
            apply_models(con, sql, changed_since=START + timedelta(days=2))
        with pytest.raises(ModelError, match=r"run_1_is_never_failed\.sql failed"):
            apply_models(con, sql)  # a full rebuild checks every run


def test_a_scoped_data_test_reads_from_a_day_before_the_oldest_changed_run(tmp_path: Path) -> None:
    """After an update, a scoped test's relations are bounded in time, and no changed row falls outside.

    The bound (a constant) lets DuckDB skip the row groups, and a lake the files, of older runs;
    a run created days before the others and answered now is still checked.
    """
    sql = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql)
    item = {"run": 1, "mode": "list", "account": "acct-a", "status": "COMPLETED", "created_hours": 0,
            "cost": 3.0, "tags": ["plain"], "attempts": 1, "error": None}  # fmt: skip
    old = {**item, "created_hours": -24 * 6}  # run_1 was created six days before run_2
    with duckdb.connect(str(tmp_path / "bounded.duckdb")) as con:
        _create_raw(con)
        _store(con, 1, old, START - timedelta(hours=1))  # older than the newest answer the build covers
        _store(con, 1, {**item, "run": 2}, START)
        apply_models(con)
        _store(con, 2, {**item, "run": 2, "status": "FAILED"}, START + timedelta(days=1, seconds=1))
        apply_models(con, sql, changed_since=START + timedelta(days=1))  # run_2 alone changed
        bound = "timestamptz '2026-10-31T00:00:00+00:00'"  # a day before run_2's creation
        bounds = checks.time_bounds(con, checks._oldest_bound(con))
        assert {name: bounds.get(name) for name in ("runs", "run_tags", "run_attempts")} == {
            "runs": f"created_at >= {bound}",
            "run_tags": f"answered_at >= {bound} and run_created_at >= {bound}",
            "run_attempts": f"answered_at >= {bound} and run_created_at >= {bound}",
        }
        test = "-- on update: run_id\nselect run_id from analytics.run_tags where tag = 'bad'"
        assert f"and answered_at >= {bound} and run_created_at >= {bound})" in checks.scoped(
            test, {"run_id": "'run_2'"}, bounds
        )

        (sql / "tests" / "no_tag_is_bad.sql").write_text(
            "-- analytics.run_tags: no run is tagged 'bad' (a test this test breaks on purpose).\n"
            + test
            + "\n"
        )
        _store(con, 3, {**old, "tags": ["bad"]}, START + timedelta(days=2, seconds=1))
        with pytest.raises(ModelError, match=r"no_tag_is_bad\.sql failed"):
            apply_models(con, sql, changed_since=START + timedelta(days=2))  # old run_1, answered now
