"""The warehouse as a DuckLake (RECOUP_LAKE): a PostgreSQL catalog and Parquet data files.

A sync loads this sync's changes with dlt into a private, empty DuckDB working file, as the
file warehouse does; then one lake transaction deletes the changed runs (and their tags and
attempts) by id, inserts them again, appends `sync_log` and dlt's state, updates the
models for the keys those runs touch and commits. Readers see the previous snapshot or the
new one, never a mix, and the commit writes what changed, not the history. DuckLake has no keys or ON CONFLICT, so the merge
is explicit; a PostgreSQL advisory lock, held on a plain connection of its own, keeps writers
one at a time across machines (a second waits up to RECOUP_LOCK_WAIT or gets LockHeld).

One concern per module: `connection.py` the extensions, the catalog password and ATTACH;
`lock.py` the writer lock and the snapshot it commits; `merge.py` the merge of a sync's raw
changes and the raw tables; `publish.py` the sync's one transaction with the models. The
lake's commands (migrate a file warehouse, install the extensions) are in `commands.py`, its
housekeeping (`recoup maintain`) in `maintain.py`.
"""

from pipelines.lake.connection import (
    ALIAS,
    READER_GRANTS,
    attach,
    describe,
    first_line,
    load_extensions,
    sql_text,
)
from pipelines.lake.lock import LOCK_KEY, LakeLock, lake_lock, snapshot
from pipelines.lake.merge import (
    ROW_GROUP_ROWS,
    SIDE_TABLES,
    add_new_columns,
    ensure_tables,
    merge_changes,
    raw_tables,
)
from pipelines.lake.publish import (
    build_models,
    publish_to_lake,
    read_index,
    start_work,
)

__all__ = [
    "ALIAS",
    "LOCK_KEY",
    "READER_GRANTS",
    "ROW_GROUP_ROWS",
    "SIDE_TABLES",
    "LakeLock",
    "add_new_columns",
    "attach",
    "build_models",
    "describe",
    "ensure_tables",
    "first_line",
    "lake_lock",
    "load_extensions",
    "merge_changes",
    "publish_to_lake",
    "raw_tables",
    "read_index",
    "snapshot",
    "sql_text",
    "start_work",
]
