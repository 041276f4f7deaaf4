"""Applies the SQL models in `sql/` to a warehouse, in dependency order, all or nothing.

Each file is one model named after the file: `sql/staging/*.sql` become views in schema
`staging` (rename and cast only), `sql/intermediate/*.sql` views in `intermediate`, and
`sql/marts/*.sql` tables in `analytics` (a `-- materialized: view` line makes a mart a view,
for marts that read session variables such as the reporting period). A model's dependencies are the other models its SQL
names. Everything runs in one transaction: a broken model changes nothing and is reported with
its file name and DuckDB's message.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import duckdb

from pipelines import warehouse
from pipelines.config import database_path
from pipelines.recoup.errors import RecoupError

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
LAYERS = {
    "staging": ("staging", "view"),
    "intermediate": ("intermediate", "view"),
    "marts": ("analytics", "table"),
}


class ModelError(RecoupError):
    """A model could not be built; the previous models are still in place."""


@dataclass(frozen=True)
class Model:
    path: Path
    schema: str
    kind: str  # view or table
    sql: str

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.path.stem}"


def load_models(sql_dir: Path = SQL_DIR) -> list[Model]:
    """Every model under `sql_dir`, sorted so that each comes after what it reads."""
    models = {}
    for folder, (schema, kind) in LAYERS.items():
        for path in sorted((sql_dir / folder).glob("*.sql")):
            sql = path.read_text().strip().rstrip(";")
            materialized = re.search(r"^--\s*materialized:\s*(view|table)\s*$", sql, re.MULTILINE)
            model = Model(path, schema, materialized.group(1) if materialized else kind, sql)
            models[model.name] = model
    graph = {}
    for name, model in models.items():
        code = re.sub(r"--[^\n]*", "", model.sql.lower())  # a name in a comment is no dependency
        named = set(re.findall(r"\b(staging|intermediate|analytics)\.(\w+)", code))
        graph[name] = {f"{s}.{t}" for s, t in named if f"{s}.{t}" in models and f"{s}.{t}" != name}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise ModelError(f"models depend on each other in a cycle: {' -> '.join(exc.args[1])}") from None
    return [models[name] for name in order]


FINGERPRINT_TABLE = "intermediate.models_fingerprint"


def _fingerprint(models: list[Model]) -> str:
    return hashlib.sha256("\n".join(f"{m.name}\n{m.kind}\n{m.sql}" for m in models).encode()).hexdigest()


def _stored_fingerprint(con: duckdb.DuckDBPyConnection) -> str | None:
    try:
        row = con.execute(f"select fingerprint from {FINGERPRINT_TABLE}").fetchone()
    except duckdb.CatalogException:
        return None
    return row[0] if row else None


def apply_models(
    con: duckdb.DuckDBPyConnection, sql_dir: Path = SQL_DIR, unless_unchanged: bool = False
) -> list[str]:
    """Builds every model in one transaction; returns their names in build order.

    Args:
        unless_unchanged: skip the build when the models are the ones already built (the
            caller knows no data changed since); returns an empty list then.
    """
    models = load_models(sql_dir)
    fingerprint = _fingerprint(models)
    if unless_unchanged and _stored_fingerprint(con) == fingerprint:
        return []
    con.execute("begin transaction")
    try:
        for schema in {m.schema for m in models}:
            con.execute(f"create schema if not exists {schema}")
        for model in models:
            try:
                con.execute(f"create or replace {model.kind} {model.name} as\n{model.sql}")
            except duckdb.Error as exc:
                message = str(exc).splitlines()[0]
                raise ModelError(f"{model.path.relative_to(sql_dir.parent)}: {message}") from None
        con.execute(f"create or replace table {FINGERPRINT_TABLE} as select ? as fingerprint", [fingerprint])
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")
    return [m.name for m in models]


def main() -> int:
    """`make models`: rebuild the models of RECOUP_DB, published like a sync publishes."""
    if os.environ.get("RECOUP_LAKE"):  # a DuckLake warehouse: see pipelines/lake/
        from pipelines.lake.commands import rebuild_models

        return rebuild_models()
    paths = warehouse.Paths(database_path())
    if not paths.db.exists():
        print(f"models: no warehouse at {paths.db}; run `make sync` (or `make demo`) first", file=sys.stderr)
        return 2
    try:
        with warehouse.sync_lock(paths, wait_seconds=60):
            warehouse.start_work_copy(paths)
            with warehouse.connect(paths.work_db, warehouse.MODEL_LIMITS) as con:
                warehouse.add_placeholders(con)
                names = apply_models(con)
                con.execute("checkpoint")
            warehouse.publish(paths)
    except (RecoupError, duckdb.Error) as exc:
        print(f"models: {exc}", file=sys.stderr)
        return 1
    print(f"models: built {len(names)} models in {paths.db}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
