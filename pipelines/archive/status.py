"""`recoup archive status`: the archive's newest sync, its age, and the syncs it does not hold yet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from pipelines.archive.changes import sync_times
from pipelines.archive.store import Manifest, Store
from pipelines.config.archive import ArchiveSettings
from pipelines.config.values import age_text, iso


@dataclass
class ArchiveStatus:
    """The archive's newest point, compared with the warehouse's sync_log."""

    target: str
    newest: Manifest | None
    unarchived: list[datetime]  # syncs the warehouse records after the newest point
    warehouse: bool  # whether the warehouse file exists to compare with

    def age(self, now: datetime | None = None) -> timedelta | None:
        """The age of the newest archived sync."""
        return (now or datetime.now(UTC)) - self.newest.through_at if self.newest else None

    def stale(self, max_age: timedelta) -> bool:
        """No archived sync, or the newest older than `max_age`."""
        age = self.age()
        return age is None or age > max_age

    def to_dict(self, max_age: timedelta | None = None) -> dict[str, Any]:
        """The status as JSON-ready values."""
        age = self.age()
        newest = self.newest
        return {
            "archive": self.target,
            "newest_sync": iso(newest.through_at) if newest else None,
            "newest_kind": newest.kind if newest else None,
            "newest_prefix": newest.prefix if newest else None,
            "snapshot_of": iso(datetime.fromisoformat(newest.base)) if newest else None,
            "age_seconds": int(age.total_seconds()) if age is not None else None,
            "unarchived_syncs": len(self.unarchived) if self.warehouse else None,
            "oldest_unarchived": iso(self.unarchived[0]) if self.unarchived else None,
            "stale": self.stale(max_age) if max_age else None,
        }

    def lines(self, max_age: timedelta | None = None) -> list[str]:
        """The status as lines for a person."""
        if self.newest is None:
            out = [f"archive {self.target}: no archived sync yet"]
        else:
            age = self.age()
            assert age is not None
            flag = " (STALE)" if max_age and self.stale(max_age) else ""
            out = [f"archive {self.target}: newest sync {iso(self.newest.through_at)}, {age_text(age)} ago{flag}"
                   f" ({self.newest.kind}; snapshot of {iso(datetime.fromisoformat(self.newest.base))})"]  # fmt: skip
        if not self.warehouse:
            out.append("warehouse: not found; nothing to compare with")
        elif self.unarchived:
            out.append(f"not archived yet: {len(self.unarchived)} sync(s) since {iso(self.unarchived[0])}")
        else:
            out.append("not archived yet: nothing; the archive holds every sync of the warehouse")
        return out


def read_archive_status(settings: ArchiveSettings, db: Path) -> ArchiveStatus:
    """Reads the archive's newest point and the warehouse's syncs after it."""
    assert settings.target
    with duckdb.connect() as con:
        newest = Store(con, settings).newest()
    unarchived: list[datetime] = []
    if db.exists():
        with duckdb.connect(str(db), read_only=True) as con:
            tables = con.execute(
                "select count(*) from duckdb_tables() where schema_name = 'raw' and table_name = 'sync_log'"
            ).fetchone()
            if tables and tables[0]:
                unarchived = sync_times(con, newest.through_at if newest else None)
    return ArchiveStatus(settings.target, newest, unarchived, db.exists())
