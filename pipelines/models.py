"""Applies the SQL models in `sql/` to a warehouse, in dependency order, all or nothing.

Each file is one model named after the file: `sql/staging/*.sql` become views in schema
`staging` (rename and cast only), `sql/intermediate/*.sql` views in `intermediate`, and
`sql/marts/*.sql` tables in `analytics` (a `-- materialized: view` line makes a mart a view,
for marts that read session variables such as the reporting period). A model's dependencies are the other models its SQL
names. Everything runs in one transaction: a broken model changes nothing and is reported with
its file name and DuckDB's message.

A sync updates the tables for the runs it loaded instead of rebuilding them: a table model
with an `-- incremental: <keys>` line is rebuilt only for the keys those runs touch, before and
after the change (`run_id` itself, or a select list over `analytics.runs` such as a day and
an account). `make models` rebuilds everything, and gives the same tables.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from datetime import datetime
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

    @property
    def keys(self) -> list[tuple[str, str]] | None:
        """The `-- incremental:` keys as (expression over analytics.runs, column) pairs."""
        found = re.search(r"^--\s*incremental:\s*(.+?)\s*$", self.sql, re.MULTILINE)
        if not found:
            return None
        pairs = []
        for part in found.group(1).split(","):
            expression, _, alias = part.strip().rpartition(" as ")
            pairs.append((expression.strip() or alias.strip(), alias.strip()))
        return pairs


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


CHANGED_RUNS = "changed_runs"  # a temp table of the run ids a sync loaded


def _key_filter(model: Model, keys: str) -> str:
    columns = ", ".join(column for _, column in model.keys or [])
    return f"({columns}) in (select {columns} from {keys})"


def _touched_keys(model: Model, name: str) -> str:
    """A temp table of the model's keys that the changed runs have now (appended to `name`)."""
    select = ", ".join(f"{expression} as {column}" for expression, column in model.keys or [])
    return f"""
        insert into {name} select distinct {select} from analytics.runs
        where run_id in (select run_id from {CHANGED_RUNS})
    """


def _update(con: duckdb.DuckDBPyConnection, models: list[Model], built: set[str]) -> None:
    """Brings table models up to date for the runs in CHANGED_RUNS; views need nothing."""
    tables = [m for m in models if m.kind == "table"]
    for model in tables:  # the keys the changed runs held before anything moves
        if model.keys and model.keys != [("run_id", "run_id")] and model.name in built:
            select = ", ".join(f"{e} as {c}" for e, c in model.keys)
            con.execute(
                f"create or replace temp table keys_{model.path.stem} as select {select} from analytics.runs limit 0"
            )
            con.execute(_touched_keys(model, f"keys_{model.path.stem}"))
    for model in tables:
        if not model.keys or model.name not in built:
            con.execute(f"create or replace table {model.name} as\n{model.sql}")
            continue
        if model.keys == [("run_id", "run_id")]:
            keys = CHANGED_RUNS
        else:
            keys = f"keys_{model.path.stem}"
            con.execute(_touched_keys(model, keys))
        con.execute(f"delete from {model.name} where {_key_filter(model, keys)}")
        con.execute(
            f"insert into {model.name} select * from (\n{model.sql}\n) where {_key_filter(model, keys)}"
        )


def _built(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "select table_schema || '.' || table_name from information_schema.tables where table_type = 'BASE TABLE'"
    ).fetchall()
    return {name for (name,) in rows}


def apply_models(
    con: duckdb.DuckDBPyConnection,
    sql_dir: Path = SQL_DIR,
    unless_unchanged: bool = False,
    changed_since: datetime | None = None,
) -> list[str]:
    """Builds every model in one transaction; returns their names in build order.

    Args:
        unless_unchanged: skip the build when the models are the ones already built (the
            caller knows no data changed since); returns an empty list then.
        changed_since: update the tables only for the runs answered since then (a sync's
            start), when the models are the ones already built; otherwise rebuild everything.
    """
    models = load_models(sql_dir)
    fingerprint = _fingerprint(models)
    same = _stored_fingerprint(con) == fingerprint
    if unless_unchanged and same:
        return []
    incremental = changed_since is not None and same
    con.execute("begin transaction")
    try:
        for schema in {m.schema for m in models}:
            con.execute(f"create schema if not exists {schema}")
        current = None
        try:
            if incremental:
                current = "the changed runs"
                con.execute(f"""
                    create or replace temp table {CHANGED_RUNS} as
                    select id as run_id from raw.runs where seen_at >= $1
                    union select id from raw.run_details where seen_at >= $1
                """, [changed_since])  # fmt: skip
                _update(con, models, _built(con))
            else:
                for model in models:
                    current = str(model.path.relative_to(sql_dir.parent))
                    con.execute(f"create or replace {model.kind} {model.name} as\n{model.sql}")
        except duckdb.Error as exc:
            message = str(exc).splitlines()[0]
            raise ModelError(f"{current}: {message}") from None
        con.execute(f"create or replace table {FINGERPRINT_TABLE} as select ? as fingerprint", [fingerprint])
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")
    return [m.name for m in models]


def main() -> int:
    """`make models`: rebuild the models of RECOUP_DB, published like a sync publishes."""
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
