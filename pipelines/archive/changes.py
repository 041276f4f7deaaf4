"""Which rows of the published warehouse an archive point holds, and how a restore applies each table.

A sync changes the raw tables in a few ways only, and each table's rows are chosen to match:

- a root table (`runs`, `run_details`) gets the runs answered in the sync (`seen_at` after the
  point before): their rows are archived whole, and a restore replaces those runs by id;
- a child table (`__tags`, `__attempts`) loses and gets rows only for those runs (dlt's merge
  replaces them, the sync prunes the orphans): every row of those runs is archived, and a
  restore deletes the runs' rows and inserts these, so a dropped tag stays dropped. Those rows
  are the ones stamped with their answer's `seen_at` after the point before (every row of a
  run belongs to its current answer), which DuckDB finds without reading the older rows;
- `sync_log`, `lost_runs`, `sync_outcomes`, `_dlt_loads` and `_dlt_version` only get rows appended, stamped
  after the point before; a restore inserts those it does not hold yet;
- `_dlt_pipeline_state` keeps its newest few states (`keep_recent_states`): archived whole,
  replaced whole. So is any raw table this module does not know.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from pipelines.recoup.settings import RAW_DATASET
from pipelines.recoup.tables import ROOTS

# table: (the column stamped when the row was written, the columns that identify a row)
APPENDED = {
    "sync_log": ("synced_at", ["synced_at", "account_id"]),
    "lost_runs": ("lost_at", ["run_id"]),
    "sync_outcomes": ("recorded_at", ["synced_at"]),
    "_dlt_loads": ("inserted_at", ["load_id"]),
    "_dlt_version": ("inserted_at", ["version_hash", "inserted_at"]),
}
CHILDREN = ("tags", "attempts")


@dataclass(frozen=True)
class TablePart:
    """The rows of one raw table a point holds, and how a restore applies them.

    Attributes:
        mode: `runs` (replace by id), `children` (replace by the runs of `of`), `append`
            (insert the rows not held yet, by `key`) or `replace` (the whole table).
    """

    name: str
    mode: str
    sql: str
    params: tuple[object, ...] = ()
    of: str | None = None
    key: tuple[str, ...] = ()
    ddl: str = ""


def raw_ddl(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Each raw base table's CREATE TABLE statement, by name."""
    rows = con.execute(
        "select table_name, sql from duckdb_tables() where database_name = current_database() and schema_name = ?",
        [RAW_DATASET],
    ).fetchall()
    return dict(rows)


def sync_times(con: duckdb.DuckDBPyConnection, since: datetime | None) -> list[datetime]:
    """The syncs the warehouse records after `since` (all of them when None), oldest first."""
    where, params = ("where synced_at > ?", [since]) if since else ("", [])
    rows = con.execute(
        f"select distinct synced_at from {RAW_DATASET}.sync_log {where} order by 1", params
    ).fetchall()
    return [row[0] for row in rows]


def holds_sync(con: duckdb.DuckDBPyConnection, synced_at: datetime) -> bool:
    """Whether the warehouse records a sync at `synced_at` (it does not after a restore to an earlier point)."""
    row = con.execute(
        f"select count(*) from {RAW_DATASET}.sync_log where synced_at = ?", [synced_at]
    ).fetchone()
    return bool(row and row[0])


def snapshot_parts(ddl: dict[str, str]) -> list[TablePart]:
    """Every raw table, whole."""
    return [TablePart(n, "replace", f"select * from {RAW_DATASET}.{n}", ddl=ddl[n]) for n in sorted(ddl)]


def change_parts(ddl: dict[str, str], since: datetime) -> list[TablePart]:
    """What the syncs after `since` changed, table by table (see the module's docstring)."""
    parts: list[TablePart] = []
    known: set[str] = set()
    for root in ROOTS.values():
        if root not in ddl:
            continue
        changed = f"select id from {RAW_DATASET}.{root} where seen_at > ?"
        parts.append(TablePart(root, "runs", f"{changed.replace('select id', 'select *')}", (since,),
                               key=("id",), ddl=ddl[root]))  # fmt: skip
        known.add(root)
        for child in (f"{root}__{c}" for c in CHILDREN):
            if child in ddl:
                sql = f"select * from {RAW_DATASET}.{child} where seen_at > ?"
                parts.append(
                    TablePart(child, "children", sql, (since,), of=root, key=("run_id",), ddl=ddl[child])
                )
                known.add(child)
    for name, (stamp, key) in APPENDED.items():
        if name in ddl:
            sql = f"select * from {RAW_DATASET}.{name} where {stamp} > ?"
            parts.append(TablePart(name, "append", sql, (since,), key=tuple(key), ddl=ddl[name]))
            known.add(name)
    for name in sorted(set(ddl) - known):  # _dlt_pipeline_state, and any table added later
        parts.append(TablePart(name, "replace", f"select * from {RAW_DATASET}.{name}", ddl=ddl[name]))
    return parts
