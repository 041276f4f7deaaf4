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
from pipelines.config import LakeSettings
from pipelines.lake.connection import ALIAS, attach
from pipelines.lake.lock import LakeLock
from pipelines.lake.merge import ensure_tables, merge_changes
from pipelines.models import ModelError, apply_models
from pipelines.query import scalar
from pipelines.recoup.index import Index
from pipelines.recoup.options import FetchOptions


def start_work(paths: warehouse.Paths) -> None:
    """An empty working folder: dlt loads only this sync's changes there."""
    shutil.rmtree(paths.work, ignore_errors=True)
    paths.work.mkdir(parents=True)


def read_index(lake: LakeSettings, options: FetchOptions) -> tuple[Index, duckdb.DuckDBPyConnection]:
    """What the lake holds (see `warehouse.read_index`), read from its current snapshot.

    Creates the lake's tables on first use. Returns the index and the connection it reads lazily from; close it after the sync.
    """
    con = duckdb.connect()
    try:
        attach(con, lake)
        ensure_tables(con)
        con.execute(f"use {ALIAS}")
        return warehouse.read_index(con, options, database=ALIAS), con
    except BaseException:
        con.close()
        raise


def build_models(
    con: duckdb.DuckDBPyConnection,
    memory_mb: int,
    changed: bool = True,
    changed_since: datetime | None = None,
) -> None:
    """Builds the models of `sql/` in the lake, inside the caller's transaction.

    `pipelines.models.apply_models` runs with the lake as the current database, so that `raw.*`
    and the models' names resolve there. Skipped when no run changed and the models are the
    ones already built.
    """
    con.execute(f"use {ALIAS}")
    # The whole build is inside the lake's one transaction per sync: no staged rebuild here.
    # Tables built staged and renamed into place broke readers during `make maintain` inside the
    # DuckLake extension pinned here ("INTERNAL Error: Attempted to access index 0 within vector
    # of size 0"); at 20 M runs a full rebuild does not fit this transaction's 1 GB (see
    # docs/benchmarks.md, case 11).
    warehouse.use_limits(con, warehouse.step_limits("lake models", memory_mb))
    apply_models(
        con,
        unless_unchanged=not changed,
        changed_since=changed_since,
        own_transaction=False,
        fixed_creation=True,
    )


def publish_to_lake(
    work_con: duckdb.DuckDBPyConnection,
    lake: LakeSettings,
    synced_at: datetime,
    options: FetchOptions,
    lock: LakeLock,
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
    attach(work_con, lake)
    warehouse.use_limits(work_con, warehouse.step_limits("models", lake.memory_mb))
    try:
        ensure_tables(work_con)
        error = None
        for with_models in (True, False):
            work_con.execute("begin transaction")
            try:
                changed, pending = merge_changes(work_con, work, options)
                if with_models:  # only the keys this sync's runs touch, as in the file
                    build_models(work_con, lake.memory_mb, changed, changed_since=synced_at)
                lock.check()
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
