"""`recoup maintain` (`make maintain`): DuckLake housekeeping for RECOUP_LAKE.

It rewrites the files that carry deletes, merges small files, expires old snapshots and deletes
the files nothing refers to any more.

Each sync commits a few small Parquet files; merging keeps reads fast. A sync's merge deletes
the rows of the runs it updates, and DuckLake records that in a delete file beside the data
file, which every reader then applies; `merge_adjacent_files` leaves a file with deletes as it
is, so the files with any delete are first rewritten without the deleted rows (a sync updates
recent runs, whose files are recent and small), and then merged. A snapshot is kept
RECOUP_LAKE_KEEP_DAYS (default 7) before it expires, so a reader (or `AT (VERSION => ...)`
time travel) within that window never loses a file under it. A file is deleted only once it
has been unused for RECOUP_LAKE_GRACE_MINUTES (default 60): a query that was reading an
expired snapshot when maintenance began finishes unharmed, and the next maintenance deletes
what this one scheduled. It runs under the lake's writer lock, so it never races a sync.

Only files this lake's catalog wrote and scheduled for deletion are deleted (DuckLake's
`ducklake_files_scheduled_for_deletion`, data and delete files alike), never a file the catalog
does not know: `ducklake_delete_orphaned_files` deletes every file under the data path that this
catalog does not list, and so the files of a second lake sharing the data path, or an
operator's backup kept there. A file left by a sync killed mid-commit is left in place too.
"""

from __future__ import annotations

import tempfile
import time

import duckdb

from pipelines import warehouse
from pipelines.config import LakeSettings
from pipelines.lake.connection import ALIAS, attach
from pipelines.lake.lock import lake_lock
from pipelines.lake.merge import partition_tables

LOCK_WAIT = 300.0  # seconds; at least this long, or RECOUP_LOCK_WAIT when longer
# Merging reads many small files and writes a few large ones (to S3 through part buffers, see
# pipelines/archive/s3.py); beyond its budget (warehouse.step_limits) it spills into a
# temporary folder of its own.
REWRITE_THRESHOLD = 0.0  # the share of deleted rows from which a file is rewritten: any


def maintain(settings: LakeSettings) -> list[tuple[str, float]]:
    """Runs each housekeeping step, waiting up to LOCK_WAIT for a running sync; returns (step, seconds) pairs."""
    keep_days, grace = settings.keep_days, f"now() - interval '{settings.grace_minutes} minutes'"
    settings = settings.waiting(LOCK_WAIT)
    steps = [
        ("flush inlined data", f"call ducklake_flush_inlined_data('{ALIAS}')"),
        ("rewrite files with deletes",
         f"call ducklake_rewrite_data_files('{ALIAS}', delete_threshold => {REWRITE_THRESHOLD})"),
        ("merge adjacent files", f"call ducklake_merge_adjacent_files('{ALIAS}')"),
        ("expire snapshots", f"call ducklake_expire_snapshots('{ALIAS}', "
                             f"older_than => now() - interval '{keep_days} days')"),
        ("clean up old files", f"call ducklake_cleanup_old_files('{ALIAS}', older_than => {grace})"),
    ]  # fmt: skip
    timings = []
    with lake_lock(settings), tempfile.TemporaryDirectory(prefix="recoup-maintain-") as spill, \
            duckdb.connect() as con:  # fmt: skip
        warehouse.use_limits(
            con, {**warehouse.step_limits("maintain", settings.memory_mb), "temp_directory": spill}
        )
        attach(con, settings)
        started = time.monotonic()
        partition_tables(con)  # a lake made before its runs were partitioned: new files split by month
        timings.append(("partition by month", time.monotonic() - started))
        for name, sql in steps:
            started = time.monotonic()
            con.execute(sql)
            timings.append((name, time.monotonic() - started))
    return timings
