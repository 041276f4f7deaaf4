"""The publish of a sync into the lake: one transaction with its raw changes and the models.

A sync loads this sync's changes with dlt into a private, empty DuckDB working file, as the
file warehouse does; then one lake transaction merges them (`merge.py`), updates the models
for the keys those runs touch and commits. Readers see the previous snapshot or the new one,
never a mix, and the commit writes what changed, not the history.
"""

from __future__ import annotations

import shutil
from datetime import datetime

import duckdb

from pipelines import warehouse
from pipelines.config import Settings
from pipelines.lake.connection import ALIAS, attach
from pipelines.lake.lock import LakeLock
from pipelines.lake.merge import ensure_tables, merge_changes
from pipelines.models import REBUILD_MEMORY, ModelError, apply_models
from pipelines.query import scalar
from pipelines.recoup.index import Index
from pipelines.recoup.options import FetchOptions
from pipelines.recoup.results import AccountResult


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
