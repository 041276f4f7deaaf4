"""The warehouse as a DuckLake (RECOUP_LAKE): a PostgreSQL catalog and Parquet data files.

A sync loads this sync's changes with dlt into a private, empty DuckDB working file, as the
file warehouse does; then one lake transaction deletes the changed runs (and their tags and
attempts) by id, inserts them again, appends `sync_log` and dlt's state, updates the
models for the keys those runs touch and commits. Readers see the previous snapshot or the
new one, never a mix, and the commit writes what changed, not the history. DuckLake has no keys or ON CONFLICT, so the merge
is explicit; a PostgreSQL advisory lock, held on a plain connection of its own, keeps writers
one at a time across machines (a second waits up to RECOUP_LOCK_WAIT or gets LockHeld).

The lake's commands (migrate a file warehouse, install the extensions, `make models` and the
report's reader) are in `commands.py`; `make maintain` is `pipelines/lake_maintain.py`.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa

from pipelines import warehouse
from pipelines.config import Settings
from pipelines.models import REBUILD_MEMORY, ModelError, apply_models
from pipelines.query import scalar
from pipelines.recoup.errors import LockHeld, RecoupError
from pipelines.recoup.index import Index
from pipelines.recoup.options import FetchOptions
from pipelines.recoup.results import AccountResult
from pipelines.recoup.settings import RAW_DATASET
from pipelines.recoup.tables import ROOTS

ALIAS = "lake"  # the lake's name inside the sync's own connection
LOCK_KEY = 0x7265636F75700001  # pg advisory lock id of recoup-runs syncs ("recoup" + 1)
ROW_GROUP_ROWS = 10_000
# Tables the sync writes besides dlt's raw tables; DuckLake takes no PRIMARY KEY or UNIQUE.
SIDE_TABLES = {
    "sync_log": "synced_at timestamptz, account_id varchar, runs_seen integer, runs_new integer, "
    "runs_updated integer, runs_refreshed integer, runs_lost integer, possible_gap boolean, error varchar, "
    "details_pending integer, first_sync boolean, runs_foreign integer",
    "lost_runs": "run_id varchar, lost_at timestamptz",
    # dlt's own state table, as dlt creates it: the lake keeps the state of every sync's load.
    "_dlt_pipeline_state": "version bigint, engine_version bigint, pipeline_name varchar, state varchar, "
    "created_at timestamptz, version_hash varchar, _dlt_load_id varchar, _dlt_id varchar",
}
# What a read-only role needs in the catalog database (README, and the tests' fixture).
READER_GRANTS = """
    grant connect on database {database} to {reader};
    grant usage on schema public to {reader};
    grant select on all tables in schema public to {reader};
    alter default privileges for role {owner} in schema public grant select on tables to {reader};
"""


def sql_text(text: str) -> str:
    """`text` as a SQL string literal, its quotes doubled."""
    return "'" + text.replace("'", "''") + "'"


def describe(lake: str) -> str:
    """The catalog without a password, for messages."""
    kind, _, rest = lake.partition(":")
    if kind != "postgres":
        return lake
    return "postgres " + " ".join(p for p in rest.split() if not p.lower().startswith("password="))


def load_extensions(con: duckdb.DuckDBPyConnection, data: str | None = None) -> None:
    """Loads ducklake and postgres (and httpfs for s3://) from their Python packages.

    Extensions cannot be downloaded here: each is installed from the `duckdb-extension-*`
    package into DuckDB's extension folder once, where analysts' DuckDB finds it too.
    """
    from duckdb_extensions import import_extension

    names = ["ducklake", "postgres_scanner"] + (["httpfs"] if data and data.startswith("s3://") else [])
    for name in names:
        try:
            con.execute(f"load {name}")
        except duckdb.Error:
            import_extension(name, con=con)
            con.execute(f"load {name}")


def _use_password(settings: Settings) -> None:
    # libpq (psycopg's and DuckDB's postgres extension alike) reads PGPASSWORD at connect
    # time; a password from .dlt/secrets.toml goes there, never into a string or a message.
    if settings.lake_password and "PGPASSWORD" not in os.environ:
        os.environ["PGPASSWORD"] = settings.lake_password


def attach(
    con: duckdb.DuckDBPyConnection, settings: Settings, alias: str = ALIAS, read_only: bool = False
) -> None:
    """Attaches the lake to `con` as `alias`, creating it on first use."""
    assert settings.lake and settings.lake_data
    _use_password(settings)
    load_extensions(con, settings.lake_data)
    if "://" not in settings.lake_data:
        Path(settings.lake_data).mkdir(parents=True, exist_ok=True)
    options = f"data_path {sql_text(settings.lake_data)}" + (", read_only" if read_only else "")
    try:
        con.execute(f"attach {sql_text('ducklake:' + settings.lake)} as {alias} ({options})")
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0][:300]
        raise RecoupError(f"cannot attach the lake ({describe(settings.lake)}): {first}") from None


def ensure_tables(con: duckdb.DuckDBPyConnection, alias: str = ALIAS) -> None:
    """Creates every raw table the sync and the models use, empty, if the lake lacks it."""
    have = {name for (name,) in con.execute(
        "select table_name from duckdb_tables() where database_name = ? and schema_name = ?", [alias, RAW_DATASET]
    ).fetchall()}  # fmt: skip
    if have >= {*warehouse.RAW_TABLES, *SIDE_TABLES}:
        return
    # DuckLake holds a whole Parquet row group in memory while it writes one, and cannot spill
    # it: 10,000 rows keep a first sync of ~100k runs within the 64 MB the sync allows itself.
    con.execute(f"call {alias}.set_option('parquet_row_group_size', {ROW_GROUP_ROWS})")
    con.execute(f"create schema if not exists {alias}.{RAW_DATASET}")
    tables = {**{t: ", ".join(f'"{c}" {k}' for c, k in cols.items()) for t, cols in warehouse.RAW_TABLES.items()},
              **SIDE_TABLES}  # fmt: skip
    for name, columns in tables.items():
        con.execute(f"create table if not exists {alias}.{RAW_DATASET}.{name} ({columns})")


class LakeLock:
    """The one-writer-at-a-time lock of a lake; `check` proves it is still held."""

    def __init__(self, connection: psycopg.Connection[Any] | None = None) -> None:
        self._connection = connection

    def check(self) -> None:
        """Raises RecoupError when the session that holds the lock is gone: nothing may be committed."""
        if self._connection is None:
            return
        try:
            self._connection.execute("select 1")  # the lock lives as long as this session
        except Exception:
            raise RecoupError("lost the connection that holds the lake lock; nothing committed") from None


@contextmanager
def lake_lock(settings: Settings) -> Iterator[LakeLock]:
    """Holds the lake's writer lock (a no-op without RECOUP_LAKE).

    Raises LockHeld after RECOUP_LOCK_WAIT seconds. PostgreSQL frees the lock when the
    holder's session ends.
    """
    if not settings.lake:
        yield LakeLock()
        return
    conninfo = settings.lake.removeprefix("postgres:")
    _use_password(settings)
    try:
        connection = psycopg.connect(conninfo, autocommit=True, connect_timeout=15,
                                     application_name="recoup-runs sync lock")  # fmt: skip
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise RecoupError(f"cannot reach the lake catalog ({describe(settings.lake)}): {first}") from None
    with connection:
        deadline = time.monotonic() + settings.lock_wait
        while not scalar(connection.execute("select pg_try_advisory_lock(%s)", [LOCK_KEY])):
            if time.monotonic() >= deadline:
                raise LockHeld(f"another sync is writing the lake {describe(settings.lake)}; not starting")
            time.sleep(0.2)
        yield LakeLock(connection)  # closing the session releases the lock


@contextmanager
def snapshot(con: duckdb.DuckDBPyConnection, lock: LakeLock) -> Iterator[None]:
    """One lake transaction, committed as one snapshot while the writer lock is still held.

    Rolled back on any error.
    """
    con.execute("begin transaction")
    try:
        yield
        lock.check()
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def start_work(paths: warehouse.Paths) -> None:
    """An empty working folder: dlt loads only this sync's changes there."""
    shutil.rmtree(paths.work, ignore_errors=True)
    paths.work.mkdir(parents=True)


class _InLake:
    """A connection whose cursors, too, read the lake's tables by their unqualified names."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def __getattr__(self, name: str) -> object:
        return getattr(self._con, name)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor whose current database is the lake."""
        cursor = self._con.cursor()
        cursor.execute(f"use {ALIAS}")
        return cursor


def read_index(settings: Settings, options: FetchOptions) -> tuple[Index, duckdb.DuckDBPyConnection]:
    """What the lake holds (see `warehouse.read_index`), read from its current snapshot.

    Creates the lake's tables on first use. Returns the index and the connection it reads lazily from; close it after the sync.
    """
    con = duckdb.connect()
    try:
        attach(con, settings)
        ensure_tables(con)
        con.execute(f"use {ALIAS}")
        return warehouse.read_index(_InLake(con), options), con  # type: ignore[arg-type]
    except BaseException:
        con.close()
        raise


def raw_tables(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, str]:
    """The tables and views of schema raw in an attached database, by name."""
    rows = con.execute(
        "select table_name, table_type from information_schema.tables where table_catalog = ? and table_schema = ?",
        [catalog, RAW_DATASET],
    ).fetchall()
    return dict(rows)


def add_new_columns(con: duckdb.DuckDBPyConnection, work: str, table: str) -> None:
    """A column dlt added in the working file (a new API field) is added to the lake table too."""
    columns = """select column_name, data_type from information_schema.columns
                 where table_catalog = ? and table_schema = ? and table_name = ?"""
    have = dict(con.execute(columns, [ALIAS, RAW_DATASET, table]).fetchall())
    for name, kind in con.execute(columns, [work, RAW_DATASET, table]).fetchall():
        if name not in have:
            con.execute(f'alter table {ALIAS}.{RAW_DATASET}.{table} add column "{name}" {kind}')


def merge_changes(
    con: duckdb.DuckDBPyConnection, work: str, results: list[AccountResult], options: FetchOptions
) -> tuple[bool, dict[str, int]]:
    """Merges the working file's raw rows into the lake.

    Returns whether any run changed, and each account's details backlog after the merge.
    """
    tables = raw_tables(con, work)
    raw, lake = f"{work}.{RAW_DATASET}", f"{ALIAS}.{RAW_DATASET}"
    changed = False
    for root in ROOTS.values():
        if tables.get(root) != "BASE TABLE":
            continue  # a stand-in view: dlt loaded nothing of this kind
        ids = f"select id from {raw}.{root}"
        answers = f"select observation_id from {raw}.{root}"
        for child in ("tags", "attempts"):
            con.execute(f"delete from {lake}.{root}__{child} where run_id in ({ids})")
        deleted = scalar(con.execute(f"delete from {lake}.{root} where id in ({ids})"))
        add_new_columns(con, work, root)
        inserted = scalar(con.execute(f"insert into {lake}.{root} by name select * from {raw}.{root}"))
        changed = changed or bool(deleted or inserted)
        for child in ("tags", "attempts"):
            if tables.get(f"{root}__{child}") == "BASE TABLE":
                add_new_columns(con, work, f"{root}__{child}")
                # Only the children of the answer that won (a run answered twice in one load).
                con.execute(f"""insert into {lake}.{root}__{child} by name select * from {raw}.{root}__{child}
                                where observation_id in ({answers})""")  # fmt: skip
    add_new_columns(con, work, "sync_log")  # a lake made before a column was added
    con.execute(f"""insert into {lake}.lost_runs by name select * from {raw}.lost_runs
                    where run_id not in (select run_id from {lake}.lost_runs)""")  # fmt: skip
    # The backlog is the lake's, not the working file's (which holds only this sync's runs).
    con.execute(f"use {ALIAS}")
    pending = warehouse.details_pending(con, options.details)
    con.execute(f"use {work}")
    con.register("pending_rows", pa.table({"account_id": list(pending), "n": list(pending.values())}))
    con.execute(f"""insert into {lake}.sync_log by name
                    select s.* replace (coalesce(p.n, 0)::integer as details_pending)
                    from {raw}.sync_log s left join pending_rows p on p.account_id = s.account_id""")  # fmt: skip
    con.unregister("pending_rows")
    if (
        tables.get("_dlt_pipeline_state") == "BASE TABLE"
    ):  # the page marks of this sync (pipelines/recoup/pages.py)
        con.execute(f"insert into {lake}._dlt_pipeline_state by name select * from {raw}._dlt_pipeline_state")
        con.execute(f"use {ALIAS}")
        warehouse.keep_recent_states(con)
        con.execute(f"use {work}")
    return changed, pending


class _InTransaction:
    """A connection on which `begin`, `commit` and `rollback` do nothing.

    `apply_models` brackets its work in a transaction of its own; in the lake it runs inside
    the sync's one transaction, which only the caller begins and ends.
    """

    _OWN = frozenset({"begin transaction", "commit", "rollback"})

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def __getattr__(self, name: str) -> object:
        return getattr(self._con, name)

    def execute(self, sql: str, *args: object) -> duckdb.DuckDBPyConnection:
        if sql.strip().lower() in self._OWN:
            return self._con
        return self._con.execute(sql, *args)


def build_models(
    con: duckdb.DuckDBPyConnection, changed: bool = True, changed_since: datetime | None = None
) -> None:
    """Builds the models of `sql/` in the lake, inside the caller's transaction.

    `pipelines.models.apply_models` runs with the lake as the current database, so that `raw.*`
    and the models' names resolve there. Skipped when no run changed and the models are the
    ones already built.
    """
    con.execute(f"use {ALIAS}")
    con.execute(f"set memory_limit = '{REBUILD_MEMORY}'")  # no second try inside the lake's transaction
    apply_models(
        _InTransaction(con),  # type: ignore[arg-type]
        unless_unchanged=not changed,
        changed_since=changed_since,
        retry_out_of_memory=False,
    )


def publish_to_lake(
    work_con: duckdb.DuckDBPyConnection,
    settings: Settings,
    synced_at: datetime,
    results: list[AccountResult],
    options: FetchOptions,
    lock: LakeLock | None = None,
) -> tuple[str | None, dict[str, int]]:
    """Merges this sync's changes and the updated models into the lake as one snapshot.

    A model that fails to build is reported (returned) and the raw changes are committed
    alone, as the file warehouse keeps loading when a model breaks.

    Args:
        work_con: the connection of the working file that dlt and the sync log wrote.
        synced_at: when the sync started: the runs answered since are the ones to remodel.
        options: the sync's options, for the details backlog it records.
    """
    work = scalar(work_con.execute("select current_database()"))
    attach(work_con, settings)
    warehouse.use_limits(work_con, warehouse.MODEL_LIMITS)
    try:
        ensure_tables(work_con)
        error = None
        for with_models in (True, False):
            work_con.execute("begin transaction")
            try:
                changed, pending = merge_changes(work_con, work, results, options)
                if with_models:  # only the keys this sync's runs touch, as in the file
                    build_models(work_con, changed, changed_since=synced_at)
                (lock or LakeLock()).check()
                work_con.execute("commit")
                return error, pending
            except ModelError as exc:
                work_con.execute("rollback")
                error = str(exc)
            except BaseException:
                work_con.execute("rollback")
                raise
            finally:
                work_con.execute(f"use {work}")
        raise AssertionError("unreachable")  # the second pass builds no model
    finally:
        work_con.execute(f"detach {ALIAS}")
