"""The lake's commands besides the sync.

`python -m pipelines.lake migrate | install-extensions`, and the lake side of `make models` and
`make report`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb

from pipelines import warehouse
from pipelines.config import Settings, database_path, lake_settings
from pipelines.lake import (
    ALIAS,
    SIDE_TABLES,
    add_new_columns,
    attach,
    build_models,
    describe,
    ensure_tables,
    first_line,
    lake_lock,
    load_extensions,
    raw_tables,
    snapshot,
    sql_text,
)
from pipelines.models import load_models
from pipelines.query import scalar
from pipelines.recoup.errors import ConfigError, LockHeld, RecoupError
from pipelines.recoup.settings import RAW_DATASET


def lake_only_settings(lock_wait: float = 60.0) -> Settings:
    """The lake's settings alone, for the commands that need no API key."""
    values = lake_settings()
    if not values["lake"]:
        raise ConfigError("RECOUP_LAKE is not set")
    return Settings(api_key="", base_url="", accounts=[], db=database_path(), max_concurrency=1, max_rpm=0,
                    details="all", keep_private=False, lock_wait=lock_wait, **values)  # fmt: skip


def connect_reader(alias: str = "recoup") -> duckdb.DuckDBPyConnection:
    """A read-only connection to RECOUP_LAKE with the lake as its current database (`make report`)."""
    con = duckdb.connect()
    attach(con, lake_only_settings(), alias=alias, read_only=True)
    con.execute(f"use {alias}")
    return con


def rebuild_models() -> int:
    """`make models` with RECOUP_LAKE: rebuilds the models in one lake snapshot, under the lock."""
    try:
        settings = lake_only_settings()
        with lake_lock(settings) as lock, duckdb.connect() as con:
            attach(con, settings)
            ensure_tables(con)
            with snapshot(con, lock):
                build_models(con)
    except (RecoupError, duckdb.Error) as exc:
        print(f"models: {first_line(exc)}", file=sys.stderr)
        return 75 if isinstance(exc, LockHeld) else 1
    print(f"models: built {len(load_models())} models in the lake {describe(settings.lake or '')}")
    return 0


def migrate(settings: Settings, source: Path) -> dict[str, int]:
    """Copies every raw table of a file warehouse into an empty lake and builds the models."""
    with lake_lock(settings) as lock, duckdb.connect() as con:
        warehouse.use_limits(con, warehouse.MODEL_LIMITS)
        con.execute(f"attach {sql_text(str(source))} as source (read_only)")
        attach(con, settings)
        ensure_tables(con)
        if scalar(con.execute(f"select count(*) from {ALIAS}.{RAW_DATASET}.runs")):
            raise ConfigError(f"the lake {describe(settings.lake or '')} already holds runs; not migrating")
        tables = raw_tables(con, "source")
        counts = {}
        with snapshot(con, lock):
            for table, kind in sorted(tables.items()):
                if kind != "BASE TABLE":
                    continue  # a stand-in: the lake has a real empty table
                if table in warehouse.RAW_TABLES or table in SIDE_TABLES:
                    con.execute(f"delete from {ALIAS}.{RAW_DATASET}.{table}")  # the lake made them empty
                    add_new_columns(con, "source", table)
                    con.execute(f"insert into {ALIAS}.{RAW_DATASET}.{table} by name "
                                f"select * from source.{RAW_DATASET}.{table}")  # fmt: skip
                else:  # dlt's own tables, kept as they are
                    con.execute(f"create or replace table {ALIAS}.{RAW_DATASET}.{table} as "
                                f"select * from source.{RAW_DATASET}.{table}")  # fmt: skip
                count = f"select count(*) from {ALIAS}.{RAW_DATASET}.{table}"
                counts[table] = scalar(con.execute(count))
            build_models(con)
        return counts


def main(argv: list[str] | None = None) -> int:
    """`python -m pipelines.lake migrate`: moves the RECOUP_DB file warehouse into RECOUP_LAKE."""
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.lake", description="DuckLake commands of recoup-runs"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    moving = commands.add_parser("migrate", help="copy a file warehouse into an empty lake, losing nothing")
    moving.add_argument("--from", dest="source", type=Path, help="the DuckDB file (default: RECOUP_DB)")
    commands.add_parser(
        "install-extensions", help="install ducklake and postgres for DuckDB from their packages"
    )
    args = parser.parse_args(argv)
    if args.command == "install-extensions":
        with duckdb.connect() as con:
            load_extensions(con, "s3://")
            folder = con.execute(
                "select install_path from duckdb_extensions() where extension_name = 'ducklake'"
            )
            print(f"extensions: ducklake, postgres_scanner, httpfs in {Path(scalar(folder)).parent}")
        return 0
    try:
        settings = lake_only_settings()
        source = args.source or settings.db
        if not source.exists():
            raise ConfigError(f"no warehouse at {source}")
        counts = migrate(settings, source)
    except (RecoupError, duckdb.Error) as exc:
        print(f"migrate: {first_line(exc)}", file=sys.stderr)
        return 75 if isinstance(exc, LockHeld) else 2 if isinstance(exc, ConfigError) else 1
    for table, rows in counts.items():
        print(f"{RAW_DATASET}.{table}: {rows} rows")
    print(f"migrate: {source} is now in the lake {describe(settings.lake or '')}; models built")
    return 0
