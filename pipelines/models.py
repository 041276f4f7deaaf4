"""Applies the SQL models in `sql/` to a warehouse, in dependency order, all or nothing.

Each file is one model named after the file: `sql/staging/*.sql` become views in schema
`staging` (rename and cast only), `sql/intermediate/*.sql` views in `intermediate`, and
`sql/marts/*.sql` tables in `analytics` (a `-- materialized: view` line makes a mart a view,
for marts that read session variables such as the reporting period). A model's dependencies are the other models its SQL
names. Everything runs in one transaction: a broken model changes nothing and is reported with
its file name and DuckDB's message.

A sync updates the tables for the runs it loaded instead of rebuilding them: a table model
with an `-- incremental: <keys> from <source>` line is rebuilt only for the keys the changed
runs' source rows hold, before and after the change (a run id, or a day and an account).
`make models` rebuilds everything, and gives the same tables.

Each model explains itself in the catalog (`COMMENT ON`), from its own file: the opening
paragraph of comments describes the relation, and a `-- Columns:` block lists `--   name: text` per column
(indented lines continue the text). An `analytics` column the block leaves out takes the
comment of the same column in the analytics model it reads; one that still has none, or a
listed column the model does not have, fails the build.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, time
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import duckdb

from pipelines import warehouse
from pipelines.config import database_path
from pipelines.query import one_row, scalar
from pipelines.recoup.errors import ConfigError, RecoupError
from pipelines.recoup.settings import RAW_DATASET

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
    """One SQL file of `sql/`: the schema it builds in, a view or a table, and its text."""

    path: Path
    schema: str
    kind: str  # view or table
    sql: str

    @property
    def name(self) -> str:
        """The relation the model creates, as `schema.name`."""
        return f"{self.schema}.{self.path.stem}"

    @property
    def reads(self) -> set[str]:
        """The relations (`schema.name`) its SQL names outside comments."""
        code = re.sub(r"--[^\n]*", "", self.sql.lower())  # a name in a comment is no dependency
        return {f"{s}.{t}" for s, t in re.findall(r"\b(staging|intermediate|analytics)\.(\w+)", code)}

    @property
    def description(self) -> str:
        """The opening comment's first paragraph, without directives."""
        lines = []
        for line in self.sql.splitlines():
            if not line.startswith("--") or re.match(r"--\s*(columns:.*)?$", line, re.IGNORECASE):
                break  # the opening paragraph ends at a bare `--` or the column block
            if not re.match(r"--\s*(materialized|incremental):", line):
                lines.append(line[2:].strip())
        return " ".join(lines)

    @property
    def column_docs(self) -> dict[str, str]:
        """The `-- Columns:` block: column name to its text."""
        docs: dict[str, str] = {}
        block = re.search(
            r"^--\s*columns:\s*\n((?:--[ \t]{2,}.*\n?)+)", self.sql, re.MULTILINE | re.IGNORECASE
        )
        for line in block.group(1).splitlines() if block else []:
            entry = re.match(r"--\s{2,3}(\w+):\s*(.*)$", line)
            if entry:
                name = entry.group(1)
                docs[name] = entry.group(2).strip()
            else:  # deeper indentation continues the previous column's text
                docs[name] = f"{docs[name]} {line[2:].strip()}"
        return docs

    @property
    def incremental(self) -> Incremental | None:
        """What an `-- incremental: <key select list> from <source>` line declares."""
        found = re.search(r"^--\s*incremental:\s*(.+?)\s+from\s+([\w.]+)\s*$", self.sql, re.MULTILINE)
        if not found:
            return None
        keys = []
        for part in found.group(1).split(","):
            expression, _, alias = part.strip().rpartition(" as ")
            keys.append((expression.strip() or alias.strip(), alias.strip()))
        return Incremental(found.group(2), keys)


@dataclass(frozen=True)
class Incremental:
    """A table whose rows for a key depend only on the `source` rows with that key."""

    source: str
    keys: list[tuple[str, str]]  # (expression over the source, column of the table)

    @property
    def columns(self) -> str:
        """The table's key columns as a SQL select list."""
        return ", ".join(column for _, column in self.keys)

    def touched(self) -> str:
        """The keys that the changed runs' source rows hold now."""
        if self.keys == [("run_id", "run_id")]:
            return f"select run_id from {CHANGED_RUNS}"  # no need to look
        select = ", ".join(f"{expression} as {column}" for expression, column in self.keys)
        return (
            f"select distinct {select} from {self.source} where run_id in (select run_id from {CHANGED_RUNS})"
        )

    def matching(self, keys: str, since: datetime | None = None) -> str:
        """The source rows whose keys are in the table `keys`, none created before `since`."""
        expressions = ", ".join(expression for expression, _ in self.keys)
        where = f"({expressions}) in (select {self.columns} from {keys})"
        if since is not None:
            # A constant bound on created_at lets DuckDB skip the row groups (and DuckLake the
            # Parquet files) of older runs by their min/max, instead of probing every run.
            where = f"{PRUNE_COLUMN} >= '{since.isoformat()}'::timestamptz and {where}"
        return f"(select * from {self.source} where {where})"

    def oldest(self, con: duckdb.DuckDBPyConnection, keys: str) -> datetime | None:
        """A lower bound of created_at over the source rows of `keys`; None when there is none.

        A UTC day among the keys bounds it by that day's midnight. Otherwise the earliest
        created_at of the matching rows is read: two columns, a fraction of reading every
        column of every run. Either way every matching row is at or after the bound.
        """
        for expression, column in self.keys:
            if expression == UTC_DAY:  # a row of a day is created no earlier than its midnight
                day = scalar(con.execute(f"select min({column}) from {keys}"))
                return None if day is None else datetime.combine(day, time(), UTC)
        query = f"""select min({PRUNE_COLUMN}), count(*) filter (where {PRUNE_COLUMN} is null)
                    from {self.matching(keys)}"""  # fmt: skip
        oldest, undated = one_row(con.execute(query))
        return None if undated else oldest


def load_models(sql_dir: Path = SQL_DIR) -> list[Model]:
    """Every model under `sql_dir`, sorted so that each comes after what it reads."""
    models = {}
    for folder, (schema, kind) in LAYERS.items():
        for path in sorted((sql_dir / folder).glob("*.sql")):
            sql = path.read_text().strip().rstrip(";")
            materialized = re.search(r"^--\s*materialized:\s*(view|table)\s*$", sql, re.MULTILINE)
            model = Model(path, schema, materialized.group(1) if materialized else kind, sql)
            models[model.name] = model
    graph = {
        name: {read for read in model.reads if read in models and read != name}
        for name, model in models.items()
    }
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise ModelError(f"models depend on each other in a cycle: {' -> '.join(exc.args[1])}") from None
    return [models[name] for name in order]


def _label(model: Model) -> str:
    return f"sql/{model.path.parent.name}/{model.path.name}"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def describe(con: duckdb.DuckDBPyConnection, models: list[Model], only: set[str] | None = None) -> None:
    """Writes the comments of the built models (or of those in `only`) into the catalog.

    A `create or replace` drops a relation's comments, so this follows every build. Models come
    in build order: an analytics model's inherited descriptions are resolved before it is.
    """
    if only is not None and not only:
        return
    columns: dict[str, list[str]] = {}
    for relation, column in con.execute("""
        select schema_name || '.' || table_name, column_name from duckdb_columns()
        where database_name = current_database() order by schema_name, table_name, column_index
    """).fetchall():  # fmt: skip
        columns.setdefault(relation, []).append(column)
    resolved: dict[str, dict[str, str]] = {}
    statements = []
    # DuckLake comments on tables, views and table columns, not on view columns.
    catalog = con.execute(
        "select type from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    view_columns = not catalog or catalog[0] != "ducklake"
    for model in models:
        have, docs = columns.get(model.name, []), model.column_docs
        unknown = sorted(set(docs) - set(have))
        if unknown:
            raise ModelError(f"{_label(model)} describes columns it does not have: {', '.join(unknown)}")
        if model.schema == "analytics":
            inherited: dict[str, str] = {}
            for read in sorted(model.reads - {model.name}, reverse=True):  # the first name read wins
                inherited.update(resolved.get(read, {}))
            docs = {column: docs.get(column) or inherited.get(column, "") for column in have}
            missing = [column for column, text in docs.items() if not text]
            if missing:
                raise ModelError(
                    f"{_label(model)} does not describe its columns {', '.join(missing)} (see `-- Columns:`)"
                )
            resolved[model.name] = docs
        if only is None or model.name in only:
            kind = "view" if model.kind == "view" else "table"
            statements.append(f"comment on {kind} {model.name} is {_quote(model.description)}")
            if kind == "table" or view_columns:
                statements += [
                    f'comment on column {model.name}."{c}" is {_quote(t)}' for c, t in docs.items()
                ]
    if statements:  # one call: a few hundred statements cost little inside DuckDB, a lot one by one
        con.execute(";\n".join(statements))


FINGERPRINT_TABLE = "intermediate.models_fingerprint"
DLT_STAGING = f"{RAW_DATASET}_staging"


def _fingerprint(models: list[Model]) -> str:
    return hashlib.sha256("\n".join(f"{m.name}\n{m.kind}\n{m.sql}" for m in models).encode()).hexdigest()


def _stored_fingerprint(con: duckdb.DuckDBPyConnection) -> str | None:
    try:
        row = con.execute(f"select fingerprint from {FINGERPRINT_TABLE}").fetchone()
    except duckdb.CatalogException:
        return None
    return row[0] if row else None


CHANGED_RUNS = "changed_runs"  # a temp table of the run ids a sync loaded
PRUNE_COLUMN = "created_at"  # every incremental source has it; runs are stored roughly in its order
UTC_DAY = f"({PRUNE_COLUMN} at time zone 'UTC')::date"  # a key that bounds PRUNE_COLUMN by itself
REBUILD_MEMORY = "1GB"  # the second try of a build that ran out of the caller's budget


def _update(con: duckdb.DuckDBPyConnection, models: list[Model], built: set[str]) -> None:
    """Brings table models up to date for the runs in CHANGED_RUNS; views need nothing.

    For each incremental table: the keys the changed runs held before anything moved and the
    keys they hold now; the rows of those keys are deleted and built again from the source
    rows of those keys only.
    """
    tables = [m for m in models if m.kind == "table"]
    rebuilt: set[str] = set()
    for model in tables:
        if model.incremental and model.name in built:
            con.execute(
                f"create or replace temp table keys_{model.path.stem} as {model.incremental.touched()}"
            )
    for model in tables:
        plan = model.incremental
        if not plan or model.name not in built:
            con.execute(f"create or replace table {model.name} as\n{model.sql}")
            rebuilt.add(model.name)
            continue
        keys = f"keys_{model.path.stem}"
        if plan.keys != [("run_id", "run_id")]:  # a run's id does not change; other keys may
            con.execute(f"insert into {keys} {plan.touched()}")
        con.execute(f"delete from {model.name} where ({plan.columns}) in (select {plan.columns} from {keys})")
        sql = re.sub(rf"\b{re.escape(plan.source)}\b", plan.matching(keys, plan.oldest(con, keys)), model.sql)
        con.execute(f"insert into {model.name} {sql}")
    describe(con, models, only=rebuilt)


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
    retry_out_of_memory: bool = True,
) -> list[str]:
    """Builds every model in one transaction; returns their names in build order.

    Args:
        unless_unchanged: skip the build when the models are the ones already built (the
            caller knows no data changed since); returns an empty list then.
        changed_since: update the tables only for the runs answered since then (a sync's
            start), when the models are the ones already built; otherwise rebuild everything.
        retry_out_of_memory: roll back and build again with more memory when DuckDB runs out
            (not when the caller owns the transaction, as the lake does).
    """
    models = load_models(sql_dir)
    fingerprint = _fingerprint(models)
    same = _stored_fingerprint(con) == fingerprint
    if unless_unchanged and same:
        return []
    incremental = changed_since is not None and same
    budget = scalar(con.execute("select current_setting('memory_limit')"))
    # DuckDB 1.5 cannot spill every aggregate: a build that runs out of the caller's budget is
    # rolled back and tried once more with REBUILD_MEMORY (a full rebuild over two million runs
    # needs between 256 MB and 512 MB), so small warehouses keep a small footprint.
    budgets = [budget, REBUILD_MEMORY] if retry_out_of_memory else [budget]
    try:
        for attempt, memory in enumerate(budgets):
            con.execute(f"set memory_limit = '{memory}'")
            con.execute("begin transaction")
            try:
                _build(con, models, fingerprint, sql_dir, changed_since if incremental else None)
            except duckdb.OutOfMemoryException:
                con.execute("rollback")
                if attempt + 1 == len(budgets):
                    raise
                continue
            except BaseException:
                con.execute("rollback")
                raise
            con.execute("commit")
            return [m.name for m in models]
    except duckdb.OutOfMemoryException as exc:
        raise ModelError(f"out of memory at {memory}: {str(exc).splitlines()[0]}") from None
    finally:
        con.execute(f"set memory_limit = '{budget}'")
    raise AssertionError("unreachable")


def _build(
    con: duckdb.DuckDBPyConnection,
    models: list[Model],
    fingerprint: str,
    sql_dir: Path,
    changed_since: datetime | None,
) -> None:
    """The statements of one build, inside the caller's transaction."""
    for schema in {m.schema for m in models}:
        con.execute(f"create schema if not exists {schema}")
    current = None
    try:
        if changed_since is not None:
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
            current = "the comments"
            describe(con, models)
    except duckdb.OutOfMemoryException:
        raise
    except duckdb.Error as exc:
        message = str(exc).splitlines()[0]
        raise ModelError(f"{current}: {message}") from None
    con.execute(f"create or replace table {FINGERPRINT_TABLE} as select ? as fingerprint", [fingerprint])
    # dlt's merge staging (its `<dataset>_staging` layout) only holds the last load's copy, and
    # dlt creates it again at the next load: out of the analysts' catalog once models are built.
    con.execute(f"drop schema if exists {DLT_STAGING} cascade")


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
        with warehouse.sync_lock(paths, wait_seconds=60), warehouse.discard_work_on_failure(paths):
            warehouse.start_work_copy(paths)
            with warehouse.connect(paths.work_db, warehouse.MODEL_LIMITS) as con:
                warehouse.create_sync_tables(con)
                names = apply_models(con)
                con.execute("checkpoint")
            warehouse.publish(paths)
    except (RecoupError, duckdb.Error) as exc:
        print(f"models: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    print(f"models: built {len(names)} models in {paths.db}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
