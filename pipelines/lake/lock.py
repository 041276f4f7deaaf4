"""The lake's writer lock: one sync writes at a time, across machines, and commits one snapshot."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import psycopg
from psycopg import sql

from pipelines.config import LakeSettings
from pipelines.lake.connection import describe, first_line, use_password
from pipelines.query import scalar
from pipelines.recoup.errors import LockHeld, RecoupError

log = logging.getLogger("recoup")

LOCK_KEY = 0x7265636F75700001  # pg advisory lock id of recoup-runs syncs ("recoup" + 1)
CATALOG_INDEX = "recoup_file_column_stats_by_column"


class LakeLock:
    """The one-writer-at-a-time lock of a lake; `check` proves it is still held."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    def index_catalog(self) -> None:
        """Indexes the PostgreSQL catalog's column statistics by table and column, once.

        DuckLake reads a table's column statistics by `(table_id, column_id)` when it plans a
        query, and its PostgreSQL catalog has no index for that (duckdb/ducklake#1398): each
        lookup scans every file's statistics, which grows with the lake. The writer creates the
        index (a reader's role could not); the lake works without it, only slower to plan.
        """
        try:
            schemas = self._connection.execute(
                "select table_schema from information_schema.tables where table_name = 'ducklake_file_column_stats'"
            ).fetchall()
            for (schema,) in schemas:
                self._connection.execute(
                    sql.SQL(
                        "create index if not exists {} on {}.ducklake_file_column_stats (table_id, column_id)"
                    ).format(sql.Identifier(CATALOG_INDEX), sql.Identifier(schema))
                )
        except psycopg.Error as exc:
            log.warning("lake: the catalog's column statistics are not indexed: %s", first_line(exc)[:200])

    def check(self) -> None:
        """Raises RecoupError when the session that holds the lock is gone: nothing may be committed."""
        try:
            self._connection.execute("select 1")  # the lock lives as long as this session
        except Exception:
            raise RecoupError("lost the connection that holds the lake lock; nothing committed") from None


@contextmanager
def lake_lock(lake: LakeSettings) -> Iterator[LakeLock]:
    """Holds the lake's writer lock.

    Raises LockHeld after RECOUP_LOCK_WAIT seconds. PostgreSQL frees the lock when the
    holder's session ends.
    """
    conninfo = lake.catalog.removeprefix("postgres:")
    use_password(lake)
    try:
        connection = psycopg.connect(conninfo, autocommit=True, connect_timeout=15,
                                     application_name="recoup-runs sync lock")  # fmt: skip
    except psycopg.Error as exc:
        raise RecoupError(
            f"cannot reach the lake catalog ({describe(lake.catalog)}): {first_line(exc)}"
        ) from None
    with connection:
        deadline = time.monotonic() + lake.lock_wait
        while not scalar(connection.execute("select pg_try_advisory_lock(%s)", [LOCK_KEY])):
            if time.monotonic() >= deadline:
                raise LockHeld(f"another sync is writing the lake {describe(lake.catalog)}; not starting")
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
