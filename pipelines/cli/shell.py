"""`recoup shell`: the published warehouse, or the lake, opened read-only in the DuckDB CLI.

The safe way made the easy way: a session opened like this never locks a reader out, never
writes into the warehouse and holds no write-ahead log a sync would refuse. It uses the DuckDB
CLI installed with the project (the same version as the `duckdb` package, so the lake's
extensions, installed from their packages, load offline).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pipelines.config import Config, LakeSettings
from pipelines.lake.connection import sql_text
from pipelines.recoup.errors import ConfigError, NoWarehouse
from pipelines.recoup.safety import mask_catalog


def duckdb_cli() -> str:
    """The DuckDB CLI beside this Python (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "duckdb"
    found = str(beside) if beside.is_file() else shutil.which("duckdb")
    if not found:
        raise ConfigError(
            "the DuckDB CLI is not installed: `make install` (package duckdb-cli) puts it in .venv/bin"
        )
    return found


def lake_statements(lake: LakeSettings) -> str:
    """What the CLI runs first to read the lake: its extensions, then a read-only ATTACH."""
    if mask_catalog(lake.catalog) != lake.catalog:
        raise ConfigError(
            "RECOUP_LAKE holds a password: give it in PGPASSWORD or ~/.pgpass for `recoup shell`"
        )
    options = f"data_path {sql_text(lake.data_path)}, read_only"
    return (
        "load ducklake; load postgres_scanner;"
        + (" load httpfs;" if lake.data_path.startswith("s3://") else "")
        + f" attach {sql_text('ducklake:' + lake.catalog)} as lake ({options}); use lake;\n"
    )


def run_shell(config: Config, extra: list[str]) -> int:
    """Runs the DuckDB CLI on the warehouse, read-only; returns its exit code."""
    cli = duckdb_cli()
    lake = config.lake
    if lake is None:
        if not config.db.is_file():
            raise NoWarehouse(f"no warehouse at {config.db}; run `recoup sync` (or `recoup demo`) first")
        return subprocess.call([cli, "-readonly", *extra, str(config.db)])
    from pipelines.lake.commands import install_extensions
    from pipelines.lake.connection import use_password

    install_extensions()  # into DuckDB's extension folder, where the CLI finds them
    use_password(lake)  # libpq reads it from the environment: never a file or an argument
    with tempfile.TemporaryDirectory(prefix="recoup-shell-") as folder:
        init = Path(folder) / "init.sql"
        init.write_text(lake_statements(lake))
        os.chmod(init, 0o600)
        return subprocess.call([cli, "-init", str(init), *extra])
