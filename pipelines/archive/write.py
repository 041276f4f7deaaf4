"""The archive step of a sync: after the publish, what the sync changed goes into a new archive point.

It reads the published file read-only (still under the sync's lock, so nothing changes under
it) and never writes the warehouse: an archive that cannot be written costs the archive one
point, not the warehouse anything. The point before is found in the archive itself, so the next
sync archives whatever this one missed, whichever machine runs it.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from pipelines.archive.changes import change_parts, holds_sync, raw_ddl, snapshot_parts, sync_times
from pipelines.archive.outcome import ArchiveOutcome
from pipelines.archive.retention import forget_old_points
from pipelines.archive.s3 import redact
from pipelines.archive.store import Manifest, Store, new_prefix
from pipelines.config.archive import ArchiveSettings

log = logging.getLogger("recoup")

READ_LIMITS: dict[str, str | bool | int | float | list[str]] = {
    "memory_limit": "256MB",
    "threads": 2,
}  # Parquet writes stream; this bounds a snapshot's


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _snapshot_due(con: duckdb.DuckDBPyConnection, newest: Manifest | None, settings: ArchiveSettings) -> str:
    """Why the next point must be a snapshot; empty when a change set will do."""
    if newest is None:
        return "the archive holds no point yet"
    if not holds_sync(con, newest.through_at):
        return "the warehouse does not hold the archive's newest sync (restored to an earlier one?)"
    if datetime.now(UTC) - datetime.fromisoformat(newest.base) > timedelta(hours=settings.snapshot_hours):
        return f"the newest snapshot is more than {settings.snapshot_hours} h old"
    if newest.bytes_since_snapshot >= settings.snapshot_bytes:
        return f"the change sets since the newest snapshot exceed {settings.snapshot_bytes // 2**20} MB"
    return ""


def write_point(con: duckdb.DuckDBPyConnection, store: Store, settings: ArchiveSettings) -> ArchiveOutcome:
    """Writes the next point (a change set, or a snapshot when one is due) from the warehouse on `con`."""
    outcome = ArchiveOutcome(store.root)
    newest = store.newest()
    pending = sync_times(con, newest.through_at if newest else None)
    if not pending:
        return outcome
    through = pending[-1]
    reason = _snapshot_due(con, newest, settings)
    ddl = raw_ddl(con)
    if reason:
        log.info("archive: a snapshot: %s", reason)
        kind, parts = "snapshot", snapshot_parts(ddl)
    else:
        assert newest is not None
        kind, parts = "changes", change_parts(ddl, newest.through_at)
    prefix = new_prefix(kind, through)
    tables = []
    for part in parts:
        rows, size = store.write_table(part.sql, list(part.params), f"{prefix}/{part.name}.parquet")
        tables.append({"name": part.name, "mode": part.mode, "of": part.of, "key": list(part.key),
                       "rows": rows, "bytes": size, "ddl": part.ddl})  # fmt: skip
    manifest = Manifest(kind, prefix, _iso(through), tables=tables)
    if kind == "snapshot":
        manifest.syncs, manifest.base = [_iso(through)], _iso(through)
    else:
        assert newest is not None
        manifest.since, manifest.base = newest.through, newest.base
        manifest.syncs = [_iso(t) for t in pending]
        manifest.bytes_since_snapshot = newest.bytes_since_snapshot + manifest.bytes
    store.write_manifest(manifest)
    outcome.kind, outcome.prefix, outcome.syncs = kind, prefix, len(pending)
    outcome.rows, outcome.bytes = manifest.rows, manifest.bytes
    return outcome


def archive_after_publish(db: Path, settings: ArchiveSettings) -> ArchiveOutcome:
    """Archives what the published warehouse at `db` holds beyond the archive's newest point.

    Never raises for the archive's sake: a failure is returned in `error`, one line, without any
    credential; the warehouse is left as published.
    """
    assert settings.target
    started = time.monotonic()
    log.info("archiving into %s", settings.target)
    try:
        with duckdb.connect(str(db), read_only=True, config=READ_LIMITS) as con:
            store = Store(con, settings)
            outcome = write_point(con, store, settings)
            if (
                settings.keep_days is not None and outcome.kind == "snapshot"
            ):  # a new snapshot frees the older
                outcome.deleted = forget_old_points(store, settings.keep_days)
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
        outcome = ArchiveOutcome(settings.target, error=redact(f"{type(exc).__name__}: {first}", settings.s3))
    outcome.seconds = time.monotonic() - started
    if outcome.error:  # the summary says so too; this line is for a log that keeps errors only
        log.error("%s", outcome.line())
    return outcome
