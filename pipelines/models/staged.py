"""A full rebuild in committed steps, swapped in by one short transaction.

DuckDB keeps a transaction's own new rows in memory it cannot spill as freely as committed
ones: built in one transaction, the models of 476 k runs ran out of 128 MB (and those of two
million runs out of 512 MB), where each statement committed on its own needs no more than
128 MB. So a full rebuild creates every table under a staged name (`<name>__next`), each in
its own transaction, reading the staged tables and views before it. One transaction then
swaps the staged tables in by rename, creates the views, and runs what must hold before the
models are shown (the comments, the data tests); a failure anywhere drops the staged objects
and leaves the previous models as they were.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import duckdb

from pipelines.models.files import Model, ModelError

STAGED = "__next"


def _staged_sql(models: list[Model]) -> Callable[[str], str]:
    """Rewrites a model's SQL to read the staged relations instead of the built ones."""
    names = sorted((m.name for m in models), key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b", re.IGNORECASE)
    return lambda sql: pattern.sub(lambda found: found.group(1) + STAGED, sql)


def _existing(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Every relation of the database as `schema.name` -> `table` or `view`."""
    rows = con.execute(
        "select table_schema || '.' || table_name, table_type from information_schema.tables"
        " where table_catalog = current_database()"
    ).fetchall()
    return {name: "view" if kind == "VIEW" else "table" for name, kind in rows}


def _drop_staged(con: duckdb.DuckDBPyConnection) -> None:
    for name, kind in _existing(con).items():
        if name.endswith(STAGED):
            con.execute(f"drop {kind} if exists {name}")


def rebuild(
    con: duckdb.DuckDBPyConnection, models: list[Model], sql_dir: Path, before_commit: Callable[[], None]
) -> None:
    """Builds every model staged, then swaps them in; `before_commit` runs inside the swap.

    Raises:
        ModelError: a model's statement failed (named by its file); or whatever `before_commit`
            raises. Either way the previous models stand and nothing staged is left.
    """
    staged = _staged_sql(models)
    for schema in {m.schema for m in models}:
        con.execute(f"create schema if not exists {schema}")
    _drop_staged(con)  # an earlier rebuild killed before its end
    try:
        for model in models:
            try:
                con.execute(f"create or replace {model.kind} {model.name}{STAGED} as\n{staged(model.sql)}")
            except duckdb.OutOfMemoryException:
                raise
            except duckdb.Error as exc:
                name = model.path.relative_to(sql_dir.parent)
                raise ModelError(f"{name}: {str(exc).splitlines()[0]}") from None
        existing = _existing(con)
        con.execute("begin transaction")
        try:
            for model in models:
                if model.kind == "table":
                    if model.name in existing:
                        con.execute(f"drop {existing[model.name]} {model.name}")
                    con.execute(f"alter table {model.name}{STAGED} rename to {model.path.stem}")
                else:
                    if existing.get(model.name) == "table":
                        con.execute(f"drop table {model.name}")
                    con.execute(f"create or replace view {model.name} as\n{model.sql}")
            before_commit()
        except BaseException:
            con.execute("rollback")
            raise
        con.execute("commit")
    finally:
        _drop_staged(con)
