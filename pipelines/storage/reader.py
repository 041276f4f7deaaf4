"""A read-only connection to the published warehouse, for the commands that only read it."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from pipelines import lake
from pipelines.config import LakeSettings, StorageSettings
from pipelines.recoup.errors import NoWarehouse, RecoupError

READER_ALIAS = "recoup"  # the lake's name in a reader's connection, made its current database


def describe(settings: StorageSettings) -> str:
    """The warehouse for messages: the file's path, or the lake's catalog without its password."""
    if isinstance(settings, LakeSettings):
        return f"the lake {lake.describe(settings.catalog)}"
    return str(settings.db)


def size_bytes(settings: StorageSettings) -> int | None:
    """The published file's size; None for a lake (its files are the store's)."""
    return None if isinstance(settings, LakeSettings) else Path(settings.db).stat().st_size


def open_reader(settings: StorageSettings) -> duckdb.DuckDBPyConnection:
    """Opens the published warehouse read-only: it never blocks a sync, nor a sync it.

    Raises:
        NoWarehouse: no file at RECOUP_DB.
        RecoupError: the file or the lake cannot be opened (the message says why, in one line).
    """
    if isinstance(settings, LakeSettings):
        con = duckdb.connect()
        try:
            lake.attach(con, settings, alias=READER_ALIAS, read_only=True)
        except BaseException:
            con.close()
            raise
        con.execute(f"use {READER_ALIAS}")
        return con
    if not settings.db.is_file():
        raise NoWarehouse(f"no warehouse at {settings.db}; run `recoup sync` (or `recoup demo`) first")
    try:
        try:
            return duckdb.connect(str(settings.db), read_only=True)
        except duckdb.IOException:  # an open that straddles a sync's publishing rename; the next one works
            time.sleep(0.2)
            return duckdb.connect(str(settings.db), read_only=True)
    except duckdb.Error as exc:
        raise RecoupError(f"{settings.db} cannot be read: {lake.first_line(exc)}") from None
