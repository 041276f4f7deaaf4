"""`make maintain`: DuckLake housekeeping for RECOUP_LAKE.

It merges small files, expires old snapshots and deletes the files nothing refers to any more.

Each sync commits a few small Parquet files; merging keeps reads fast. A snapshot is kept
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

import os
import sys
import tempfile
import time

import duckdb

from pipelines import defaults, warehouse
from pipelines.config import Settings, _integer, _lookup
from pipelines.lake import ALIAS, attach, describe, first_line, lake_lock
from pipelines.lake.commands import lake_only_settings
from pipelines.recoup.errors import ConfigError, LockHeld, RecoupError

LOCK_WAIT = 300.0  # seconds; at least this long, or RECOUP_LOCK_WAIT when longer
# Merging reads many small files and writes a few large ones (to S3 through part buffers, see
# pipelines/archive/s3.py); beyond the budget it spills into a temporary folder of its own.
MAINTAIN_LIMITS: dict[str, str | int] = {**warehouse.MODEL_LIMITS, "memory_limit": "256MB"}


def maintain(settings: Settings, keep_days: int, grace_minutes: int) -> list[tuple[str, float]]:
    """Runs each housekeeping step; returns (step, seconds) pairs."""
    grace = f"now() - interval '{grace_minutes} minutes'"
    steps = [
        ("flush inlined data", f"call ducklake_flush_inlined_data('{ALIAS}')"),
        ("merge adjacent files", f"call ducklake_merge_adjacent_files('{ALIAS}')"),
        ("expire snapshots", f"call ducklake_expire_snapshots('{ALIAS}', "
                             f"older_than => now() - interval '{keep_days} days')"),
        ("clean up old files", f"call ducklake_cleanup_old_files('{ALIAS}', older_than => {grace})"),
    ]  # fmt: skip
    timings = []
    with lake_lock(settings), tempfile.TemporaryDirectory(prefix="recoup-maintain-") as spill, \
            duckdb.connect() as con:  # fmt: skip
        warehouse.use_limits(con, {**MAINTAIN_LIMITS, "temp_directory": spill})
        attach(con, settings)
        for name, sql in steps:
            started = time.monotonic()
            con.execute(sql)
            timings.append((name, time.monotonic() - started))
    return timings


def main() -> int:
    """`make maintain` (`recoup maintain`): exit 0 done, 2 no lake configured, 75 a sync is writing."""
    try:
        keep_days = _integer(
            "lake_keep_days", _lookup("lake_keep_days", os.environ), defaults.LAKE_KEEP_DAYS, 0
        )
        grace_minutes = _integer(
            "lake_grace_minutes", _lookup("lake_grace_minutes", os.environ), defaults.LAKE_GRACE_MINUTES, 0
        )
        # A sync holds the lock for seconds: wait for it rather than skip the maintenance.
        wait = max(
            float(_integer("lock_wait", _lookup("lock_wait", os.environ), defaults.LOCK_WAIT, 0)), LOCK_WAIT
        )
        settings = lake_only_settings(wait)
        timings = maintain(settings, keep_days, grace_minutes)
    except (RecoupError, duckdb.Error) as exc:
        print(f"maintain: {first_line(exc)}", file=sys.stderr)
        return 75 if isinstance(exc, LockHeld) else 2 if isinstance(exc, ConfigError) else 1
    for name, seconds in timings:
        print(f"maintain: {name}: {seconds:.1f} s")
    print(
        f"maintain: {describe(settings.lake or '')}: snapshots older than {keep_days} days expired, "
        f"files unused for {grace_minutes} minutes deleted"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
