"""The merge of one sync's raw changes into the lake, and the raw tables it writes.

DuckLake has no keys or ON CONFLICT, so the merge is explicit: the changed runs (and their tags
and attempts) are deleted by id and inserted again, and `sync_log`, `lost_runs` and dlt's state
are appended, inside the caller's transaction.

The answers are partitioned by the month of `created_at`, and the deletes are bounded: the
runs by `created_at`, their tags and attempts by the answer's `seen_at`. A run's stored
row has the `created_at` of its new one, and every answer about a run was seen after the run
was created (a day of margin for the API's clock). DuckLake skips every Parquet file whose
range lies before the bound, so a sync reads the files of its runs' months, not the history.
"""

from __future__ import annotations

import logging

import duckdb
import pyarrow as pa

from pipelines import warehouse
from pipelines.lake.connection import ALIAS
from pipelines.query import scalar, timestamptz
from pipelines.recoup.options import FetchOptions
from pipelines.recoup.settings import CLOCK_MARGIN, RAW_DATASET
from pipelines.recoup.tables import ROOTS

log = logging.getLogger("recoup")

ROW_GROUP_ROWS = 10_000
# The answers of runs are partitioned by the month of the run's creation. Their tags and attempts
# are not: with them partitioned by the month of `seen_at`, readers during `make maintain` failed
# inside the DuckLake extension pinned here ("INTERNAL Error: Attempted to access index 0 within
# vector of size 0"); their deletes are still bounded by `seen_at`, which each sync's files hold
# in a narrow range.
PARTITIONS = {name: "created_at" for name in ROOTS.values()}
# Tables the sync writes besides dlt's raw tables (described in pipelines/warehouse/raw_schema.py).
SIDE_TABLES = {
    **{name: warehouse.side_table_columns(name) for name in warehouse.SIDE_TABLES},
    # dlt's own state table, as dlt creates it: the lake keeps the state of every sync's load.
    "_dlt_pipeline_state": "version bigint, engine_version bigint, pipeline_name varchar, state varchar, "
    "created_at timestamptz, version_hash varchar, _dlt_load_id varchar, _dlt_id varchar",
}


def ensure_tables(con: duckdb.DuckDBPyConnection, alias: str = ALIAS) -> None:
    """Creates every raw table the sync and the models use, empty, if the lake lacks it.

    A lake made before the tags and attempts carried their answer's `seen_at` gets the column,
    filled once: the merge's deletes are bounded by it (see the module's notes), and a child
    row without it would never be replaced.
    """
    have: dict[str, set[str]] = {}
    for table, column in con.execute(
        "select table_name, column_name from duckdb_columns() where database_name = ? and schema_name = ?",
        [alias, RAW_DATASET],
    ).fetchall():
        have.setdefault(table, set()).add(column)
    if set(have) >= {*warehouse.RAW_TABLES, *SIDE_TABLES}:
        for child in (t for t in warehouse.RAW_TABLES if "__" in t and "seen_at" not in have[t]):
            _date_children(con, alias, child)
        return
    # DuckLake holds a whole Parquet row group in memory while it writes one, and cannot spill
    # it: 10,000 rows keep a first sync of ~100k runs within the 64 MB the sync allows itself.
    con.execute(f"call {alias}.set_option('parquet_row_group_size', {ROW_GROUP_ROWS})")
    con.execute(f"create schema if not exists {alias}.{RAW_DATASET}")
    tables = {**{t: ", ".join(f'"{c}" {k}' for c, k in cols.items()) for t, cols in warehouse.RAW_TABLES.items()},
              **SIDE_TABLES}  # fmt: skip
    for name, columns in tables.items():
        con.execute(f"create table if not exists {alias}.{RAW_DATASET}.{name} ({columns})")
    partition_tables(con, alias)


def partition_tables(con: duckdb.DuckDBPyConnection, alias: str = ALIAS) -> None:
    """Partitions each answer table by month, if it is not yet.

    Only files written afterwards are split by month: `make maintain` rewrites the older ones.
    """
    done = {name for (name,) in con.execute(f"""
        select t.table_name from __ducklake_metadata_{alias}.ducklake_partition_info p
        join __ducklake_metadata_{alias}.ducklake_table t using (table_id)
        where p.end_snapshot is null and t.end_snapshot is null
    """).fetchall()}  # fmt: skip
    for name, column in PARTITIONS.items():
        if name not in done:
            con.execute(
                f"alter table {alias}.{RAW_DATASET}.{name} set partitioned by (year({column}), month({column}))"
            )


def raw_tables(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, str]:
    """The tables and views of schema raw in an attached database, by name."""
    rows = con.execute(
        "select table_name, table_type from information_schema.tables where table_catalog = ? and table_schema = ?",
        [catalog, RAW_DATASET],
    ).fetchall()
    return dict(rows)


def add_new_columns(con: duckdb.DuckDBPyConnection, work: str, table: str) -> None:
    """A column dlt added in the working file (a new API field) is added to the lake table too."""
    columns = """select column_name, data_type from information_schema.columns
                 where table_catalog = ? and table_schema = ? and table_name = ?"""
    have = dict(con.execute(columns, [ALIAS, RAW_DATASET, table]).fetchall())
    for name, kind in con.execute(columns, [work, RAW_DATASET, table]).fetchall():
        if name not in have:
            con.execute(f'alter table {ALIAS}.{RAW_DATASET}.{table} add column "{name}" {kind}')


def _date_children(con: duckdb.DuckDBPyConnection, alias: str, table: str) -> None:
    """Adds `seen_at` to the stored tags or attempts of `table`, each row its answer's."""
    lake = f"{alias}.{RAW_DATASET}"
    con.execute(f'alter table {lake}.{table} add column "seen_at" {warehouse.RAW_TABLES[table]["seen_at"]}')
    con.execute(f"""update {lake}.{table} as child set seen_at = answer.seen_at
                    from {lake}.{table.split("__")[0]} as answer
                    where answer.observation_id = child.observation_id""")  # fmt: skip


def _oldest(con: duckdb.DuckDBPyConnection, table: str) -> str | None:
    """The earliest `created_at` of the changed runs, as a literal; None when one has none."""
    nulls, oldest = con.execute(
        f"select count(*) - count(created_at), min(created_at) from {table}"
    ).fetchone() or (0, None)
    return None if nulls or oldest is None else timestamptz(oldest)


def merge_changes(
    con: duckdb.DuckDBPyConnection, work: str, options: FetchOptions
) -> tuple[bool, dict[str, int]]:
    """Merges the working file's raw rows into the lake.

    Returns whether any run changed, and each account's details backlog after the merge.
    """
    tables = raw_tables(con, work)
    raw, lake = f"{work}.{RAW_DATASET}", f"{ALIAS}.{RAW_DATASET}"
    changed = False
    for root in ROOTS.values():
        if tables.get(root) != "BASE TABLE":
            continue  # a stand-in view: dlt loaded nothing of this kind
        ids = f"select id from {raw}.{root}"
        answers = f"select observation_id from {raw}.{root}"
        oldest = _oldest(con, f"{raw}.{root}")
        for child in ("tags", "attempts"):
            bound = "" if oldest is None else f" and seen_at >= {oldest} - {CLOCK_MARGIN}"
            con.execute(f"delete from {lake}.{root}__{child} where run_id in ({ids}){bound}")
        bound = "" if oldest is None else f" and created_at >= {oldest}"
        deleted = scalar(con.execute(f"delete from {lake}.{root} where id in ({ids}){bound}"))
        add_new_columns(con, work, root)
        inserted = scalar(con.execute(f"insert into {lake}.{root} by name select * from {raw}.{root}"))
        changed = changed or bool(deleted or inserted)
        for child in ("tags", "attempts"):
            if tables.get(f"{root}__{child}") == "BASE TABLE":
                add_new_columns(con, work, f"{root}__{child}")
                # Only the children of the answer that won (a run answered twice in one load).
                con.execute(f"""insert into {lake}.{root}__{child} by name select * from {raw}.{root}__{child}
                                where observation_id in ({answers})""")  # fmt: skip
    add_new_columns(con, work, "sync_log")  # a lake made before a column was added
    con.execute(f"""insert into {lake}.lost_runs by name select * from {raw}.lost_runs
                    where run_id not in (select run_id from {lake}.lost_runs)""")  # fmt: skip
    con.execute(f"""insert into {lake}.sync_outcomes by name select * from {raw}.sync_outcomes
                    where synced_at not in (select synced_at from {lake}.sync_outcomes)""")  # fmt: skip
    # The backlog is the lake's, not the working file's (which holds only this sync's runs).
    con.execute(f"use {ALIAS}")
    pending = warehouse.details_pending(con, options)
    con.execute(f"use {work}")
    con.register("pending_rows", pa.table({"account_id": list(pending), "n": list(pending.values())}))
    con.execute(f"""insert into {lake}.sync_log by name
                    select s.* replace (coalesce(p.n, 0)::integer as details_pending)
                    from {raw}.sync_log s left join pending_rows p on p.account_id = s.account_id""")  # fmt: skip
    con.unregister("pending_rows")
    if (
        tables.get("_dlt_pipeline_state") == "BASE TABLE"
    ):  # the page marks of this sync (pipelines/recoup/pages.py)
        con.execute(f"insert into {lake}._dlt_pipeline_state by name select * from {raw}._dlt_pipeline_state")
        con.execute(f"use {ALIAS}")
        warehouse.keep_recent_states(con)
        con.execute(f"use {work}")
    log.debug("merged this sync's changes into the lake (not committed yet)")
    return changed, pending
