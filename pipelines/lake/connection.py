"""The lake's connection: its extensions, the catalog password, ATTACH, and its name for messages."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from pipelines.config import LakeSettings
from pipelines.recoup.errors import RecoupError
from pipelines.recoup.safety import mask_catalog

ALIAS = "lake"  # the lake's name inside the sync's own connection
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
    """The catalog with its password masked, for messages."""
    kind, _, rest = lake.partition(":")
    return mask_catalog(f"postgres {rest}" if kind == "postgres" else lake)


def first_line(exc: BaseException) -> str:
    """The first line of an error, its catalog passwords masked: DuckDB echoes the connection string."""
    text = str(exc).strip()
    return mask_catalog(text.splitlines()[0][:300]) if text else type(exc).__name__


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


def use_password(lake: LakeSettings) -> None:
    """Hands the catalog password from the settings to libpq, if the environment has none.

    libpq (psycopg's and DuckDB's postgres extension alike) reads PGPASSWORD at connect time;
    a password from .dlt/secrets.toml goes there, never into a string or a message.
    """
    if lake.password and "PGPASSWORD" not in os.environ:
        os.environ["PGPASSWORD"] = lake.password


def attach(
    con: duckdb.DuckDBPyConnection, lake: LakeSettings, alias: str = ALIAS, read_only: bool = False
) -> None:
    """Attaches the lake to `con` as `alias`, creating it on first use."""
    use_password(lake)
    load_extensions(con, lake.data_path)
    if lake.data_path.startswith("s3://"):  # the AWS_* variables, else a persistent DuckDB secret
        from pipelines.archive.s3 import configure

        configure(con, lake.s3)
    if "://" not in lake.data_path:
        Path(lake.data_path).mkdir(parents=True, exist_ok=True)
    options = f"data_path {sql_text(lake.data_path)}" + (", read_only" if read_only else "")
    try:
        con.execute(f"attach {sql_text('ducklake:' + lake.catalog)} as {alias} ({options})")
    except duckdb.Error as exc:
        raise RecoupError(f"cannot attach the lake ({describe(lake.catalog)}): {first_line(exc)}") from None
