"""The raw tables: their DuckDB types, which dlt has not created yet, and the sync's own tables."""

from __future__ import annotations

from datetime import datetime

import duckdb

from pipelines.query import scalar
from pipelines.recoup.settings import RAW_DATASET
from pipelines.recoup.tables import RAW_TABLES, ROOTS


def table_kinds(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Each table and view of the raw dataset, by name: `BASE TABLE` or `VIEW`."""
    rows = con.execute(
        "select table_name, table_type from information_schema.tables"
        " where table_catalog = current_database() and table_schema = ?",
        [RAW_DATASET],
    ).fetchall()
    return dict(rows)


def missing_raw_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The raw tables dlt has not created yet, or that an earlier version stood in for with a view.

    dlt materialises them, empty, at the sync's load.
    """
    tables = table_kinds(con)
    return [name for name in RAW_TABLES if tables.get(name) != "BASE TABLE"]


def drop_stand_ins(con: duckdb.DuckDBPyConnection) -> None:
    """Removes the empty views that earlier versions left in place of raw tables not loaded yet.

    dlt can then create the real ones.
    """
    for name, kind in table_kinds(con).items():
        if kind == "VIEW" and name in RAW_TABLES:
            con.execute(f'drop view "{RAW_DATASET}"."{name}"')


# The tables the sync writes beside dlt's, described once for the file and the lake: column,
# type. A column added later is added to an older warehouse by `create_sync_tables` (the file)
# and `pipelines.lake.merge` (the lake); DuckLake takes no PRIMARY KEY or UNIQUE, so none is
# declared (lost_runs is written with anti-joins).
SIDE_TABLES: dict[str, dict[str, str]] = {
    "sync_log": {  # for analysts: one row per account per sync
        "synced_at": "timestamptz", "account_id": "varchar", "runs_seen": "integer", "runs_new": "integer",
        "runs_updated": "integer", "runs_refreshed": "integer", "runs_lost": "integer",
        "possible_gap": "boolean", "error": "varchar", "details_pending": "integer", "first_sync": "boolean",
        "runs_foreign": "integer", "finished_at": "timestamptz",
    },
    "lost_runs": {"run_id": "varchar", "lost_at": "timestamptz"},  # the runs the API forgot, never asked again
    "sync_outcomes": {  # how each sync ended, recorded by the next one (pipelines/warehouse/outcomes.py)
        "synced_at": "timestamptz", "ended_at": "timestamptz", "exit_code": "integer", "published": "boolean",
        "accounts": "integer", "accounts_failed": "integer", "runs_new": "integer", "runs_updated": "integer",
        "runs_refreshed": "integer", "runs_lost": "integer", "requests": "integer", "retries": "integer",
        "budget_seconds": "integer", "lists_seconds": "double", "details_pending": "integer",
        "archive": "varchar", "archive_error": "varchar", "error": "varchar", "recorded_at": "timestamptz",
    },
}  # fmt: skip


def side_table_columns(name: str) -> str:
    """The column list of a side table, for CREATE TABLE."""
    return ", ".join(f"{column} {kind}" for column, kind in SIDE_TABLES[name].items())


def create_sync_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Creates the tables the sync itself writes beside dlt's (SIDE_TABLES), adding newer columns."""
    con.execute(f"create schema if not exists {RAW_DATASET}")
    for name, columns in SIDE_TABLES.items():
        con.execute(f"create table if not exists {RAW_DATASET}.{name} ({side_table_columns(name)})")
        for column, kind in columns.items():
            con.execute(f"alter table {RAW_DATASET}.{name} add column if not exists {column} {kind}")
    date_child_rows(con)
    # The page marks moved into dlt's state (pipelines/recoup/pages.py): the old cache goes.
    con.execute(f"drop table if exists {RAW_DATASET}.list_pages")


def date_child_rows(con: duckdb.DuckDBPyConnection, undated_too: bool = False) -> None:
    """Gives the tags and attempts stored without one their answer's `seen_at`.

    A child row's answer is the root row with its `observation_id` (rows whose answer was
    replaced are pruned at every sync, so each one finds its answer). A sync adds and fills the
    column only where a warehouse made before it lacks it, so it costs nothing afterwards;
    `undated_too` also fills the rows an older archive's tables brought into a restore.
    """
    have = {table for (table,) in con.execute(
        "select table_name from duckdb_columns() where database_name = current_database()"
        " and schema_name = ? and column_name = 'seen_at'", [RAW_DATASET],
    ).fetchall()}  # fmt: skip
    tables = table_kinds(con)
    for root in ROOTS.values():
        for child in (f"{root}__{c}" for c in ("tags", "attempts")):
            if tables.get(child) != "BASE TABLE" or tables.get(root) != "BASE TABLE":
                continue
            if child in have and not undated_too:
                continue
            con.execute(f"alter table {RAW_DATASET}.{child} add column if not exists seen_at timestamptz")
            con.execute(f"""
                update {RAW_DATASET}.{child} c set seen_at = r.seen_at
                from {RAW_DATASET}.{root} r
                where c.seen_at is null and r.observation_id = c.observation_id
            """)  # fmt: skip


def prune_answers(con: duckdb.DuckDBPyConnection, since: datetime) -> None:
    """Drops tags and attempts of answers that were replaced (their run's new answer had none).

    Only runs answered since `since` (this sync) can have such rows, so only they are looked at:
    their answers, new and replaced, were all seen after the run was created (a day of margin
    for the API's clock), so the child rows are read from the oldest such creation on, and
    DuckDB skips the row groups before it.
    """
    tables = table_kinds(con)
    for root in ROOTS.values():
        if tables.get(root) != "BASE TABLE":
            continue
        changed = f"select id from {RAW_DATASET}.{root} where seen_at >= $since"
        oldest = scalar(con.execute(  # none when a changed run has no creation time
            f"""select if(count(*) = count(created_at), min(created_at) - interval 1 day, null)
                from {RAW_DATASET}.{root} where seen_at >= ?""", [since]
        ))  # fmt: skip
        bound = "" if oldest is None else "and c.seen_at >= $oldest"
        for child in ("tags", "attempts"):
            if tables.get(f"{root}__{child}") != "BASE TABLE":
                continue  # a stand-in: nothing of this kind was ever loaded
            con.execute(f"""
                delete from {RAW_DATASET}.{root}__{child} c
                where c.run_id in ({changed}) {bound}
                  and not exists (select 1 from {RAW_DATASET}.{root} r
                                  where r.seen_at >= $since and r.observation_id = c.observation_id)
            """, {"since": since, **({"oldest": oldest} if bound else {})})  # fmt: skip
