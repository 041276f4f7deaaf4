"""The models' comments in the catalog (`COMMENT ON`), each from its own file.

The opening paragraph of a model's comments describes the relation, and a `-- Columns:` block
lists `--   name: text` per column (indented lines continue the text). An `analytics` column the
block leaves out takes the comment of the same column in the analytics model it reads; one that
still has none, or a listed column the model does not have, fails the build.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from pipelines.models.files import Model, ModelError


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
    types: dict[tuple[str, str], str] = {}
    for relation, column, kind in con.execute("""
        select schema_name || '.' || table_name, column_name, data_type from duckdb_columns()
        where database_name = current_database() order by schema_name, table_name, column_index
    """).fetchall():  # fmt: skip
        columns.setdefault(relation, []).append(column)
        types[relation, column] = kind
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
    if only is None:  # a full build: the structure may have changed
        statements += _catalog(con, [m for m in models if m.schema == "analytics"], resolved, types)
    if statements:  # one call: a few hundred statements cost little inside DuckDB, a lot one by one
        con.execute(";\n".join(statements))


CATALOG = "analytics.catalog"
CATALOG_COLUMNS = {
    "relation": "the analytics table or view, e.g. analytics.runs",
    "relation_kind": "view or table",
    "relation_description": "what one row of the relation is, from its model file",
    "column_index": "the column's place in the relation, from 1",
    "column_name": "the column",
    "data_type": "its DuckDB type",
    "description": "what the column holds, from the model file (or the model it reads)",
    "built_from": "the relations the model reads, comma-separated: its lineage one step back",
}


def _catalog(
    con: duckdb.DuckDBPyConnection,
    models: list[Model],
    docs: dict[str, dict[str, str]],
    types: dict[tuple[str, str], str],
) -> list[str]:
    """`analytics.catalog`: every analytics column with its type, description and lineage.

    A table, so any tool lists the descriptions, a lake too (DuckLake keeps no comment on a
    view's columns). Returns the statements that comment it.
    """
    rows = [
        {"relation": m.name, "relation_kind": m.kind, "relation_description": m.description, "column_index": i,
         "column_name": column, "data_type": types[m.name, column], "description": text,
         "built_from": ", ".join(sorted(m.reads - {m.name}))}
        for m in models
        for i, (column, text) in enumerate(docs.get(m.name, {}).items(), start=1)
    ]  # fmt: skip
    schema = pa.schema([(c, pa.int32() if c == "column_index" else pa.string()) for c in CATALOG_COLUMNS])
    con.register("catalog_rows", pa.Table.from_pylist(rows, schema))
    try:  # one statement: a lake writes it as one insert
        con.execute(f"create or replace table {CATALOG} as select * from catalog_rows")
    finally:
        con.unregister("catalog_rows")
    return [
        f"comment on table {CATALOG} is "
        + _quote(
            "One row per column of every analytics table and view: its type, description and the relations it is built from."
        ),
        *(f'comment on column {CATALOG}."{c}" is {_quote(t)}' for c, t in CATALOG_COLUMNS.items()),
    ]
