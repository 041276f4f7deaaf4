"""RECOUP_ARCHIVE_KEEP_DAYS: old points go, never one that a point still in the window needs.

Every point newer than the newest snapshot that is itself older than the window is kept (it, and
everything a restore to any point since needs); only the points before that snapshot go.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from pipelines.archive.store import Store

log = logging.getLogger("recoup")


def points_to_forget(store: Store, keep_days: int, now: datetime | None = None) -> list[str]:
    """The prefixes of the points older than the newest snapshot before the window."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    points = store.manifests()
    old_snapshots = [m for m in points if m.kind == "snapshot" and m.through_at < cutoff]
    if not old_snapshots:
        return []
    keep_from = old_snapshots[-1].through_at
    return [m.prefix for m in points if m.through_at < keep_from]


def forget_old_points(store: Store, keep_days: int) -> int:
    """Deletes the points `points_to_forget` names; returns how many."""
    prefixes = points_to_forget(store, keep_days)
    for prefix in prefixes:
        store.delete_point(prefix)
    if prefixes:
        log.info("archive: %d point(s) older than the window of %d days removed", len(prefixes), keep_days)
    return len(prefixes)
