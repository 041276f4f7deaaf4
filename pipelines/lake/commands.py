"""The lake's commands besides the sync: `recoup lake migrate` and `recoup lake install-extensions`."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines import warehouse
from pipelines.config import LakeSettings
from pipelines.lake import (
    ALIAS,
    SIDE_TABLES,
    add_new_columns,
    attach,
    build_models,
    describe,
    ensure_tables,
    lake_lock,
    load_extensions,
    raw_tables,
    snapshot,
    sql_text,
)
from pipelines.query import scalar
from pipelines.recoup.errors import ConfigError, NoWarehouse
from pipelines.recoup.settings import RAW_DATASET


def migrate(settings: LakeSettings, source: Path) -> dict[str, int]:
    """Copies every raw table of a file warehouse into an empty lake and builds the models.

    Raises:
        NoWarehouse: no file at `source`.
        ConfigError: the lake already holds runs.
    """
    if not source.is_file():
        raise NoWarehouse(f"no warehouse at {source}")
    with lake_lock(settings) as lock, duckdb.connect() as con:
        warehouse.use_limits(con, warehouse.step_limits("models", settings.memory_mb))
        con.execute(f"attach {sql_text(str(source))} as source (read_only)")
        attach(con, settings)
        ensure_tables(con)
        if scalar(con.execute(f"select count(*) from {ALIAS}.{RAW_DATASET}.runs")):
            raise ConfigError(f"the lake {describe(settings.catalog)} already holds runs; not migrating")
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
            build_models(con, settings.memory_mb)
        return counts


def install_extensions() -> Path:
    """Installs ducklake, postgres_scanner and httpfs from their packages; returns DuckDB's extension folder."""
    with duckdb.connect() as con:
        load_extensions(con, "s3://")
        folder = con.execute("select install_path from duckdb_extensions() where extension_name = 'ducklake'")
        return Path(scalar(folder)).parent
