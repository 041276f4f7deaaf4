"""The archive's layout and its reads and writes, the same for a folder and for `s3://` (through DuckDB).

    <archive>/snapshots/<day>/<time>Z-<id>/   every raw table, whole
    <archive>/syncs/<day>/<time>Z-<id>/       what the syncs since the point before changed
        <table>.parquet ...                     one file per table
        manifest.json                           written last: a point without one is never trusted
    <archive>/latest.json                       a copy of the newest manifest, to find it cheaply

`<day>` and `<time>` are those (UTC) of the newest sync the point holds; a prefix is written
once and never again. Only the hint `latest.json` is overwritten, and it is only a hint: the
manifests beside it are searched from its day on.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pyarrow as pa

from pipelines.archive.s3 import configure, delete_object
from pipelines.config.archive import ArchiveSettings

KINDS = {"snapshot": "snapshots", "changes": "syncs"}
MANIFEST = "manifest.json"
HINT = "latest.json"
FORMAT = 1  # the layout's version, in every manifest


@dataclass
class Manifest:
    """One archived point: a snapshot or a change set, and how it chains to the point before.

    Attributes:
        since: the `through` of the point this change set follows (None for a snapshot).
        through: the newest sync it holds (its `synced_at`, ISO 8601).
        syncs: the sync times it holds (a snapshot: only the newest).
        tables: per table: name, mode (how restore applies it), rows, bytes, ddl.
        base: the `through` of the snapshot its chain starts from.
        bytes_since_snapshot: the bytes of the change sets since that snapshot, this one included.
    """

    kind: str
    prefix: str
    through: str
    since: str | None = None
    syncs: list[str] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)
    base: str = ""
    bytes_since_snapshot: int = 0
    written_at: str = ""
    format: int = FORMAT

    @property
    def through_at(self) -> datetime:
        """`through` as a datetime."""
        return datetime.fromisoformat(self.through)

    @property
    def bytes(self) -> int:
        """The bytes of its table files."""
        return sum(int(t["bytes"]) for t in self.tables)

    @property
    def rows(self) -> int:
        """The rows of its table files."""
        return sum(int(t["rows"]) for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON-ready values."""
        return dict(vars(self))


def new_prefix(kind: str, through: datetime) -> str:
    """A fresh prefix for a point holding syncs up to `through`."""
    moment = through.astimezone(UTC)
    return f"{KINDS[kind]}/{moment:%Y-%m-%d}/{moment:%H%M%S.%f}Z-{uuid.uuid4().hex[:8]}"


class Store:
    """The archive at `settings.target`, read and written through a DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, settings: ArchiveSettings) -> None:
        assert settings.target
        self.con, self.settings, self.root = con, settings, settings.target
        if settings.on_s3:
            configure(con, settings.s3)

    def url(self, *parts: str) -> str:
        """The address of a file or folder of the archive."""
        return "/".join([self.root, *parts])

    def _folder_for(self, url: str) -> None:
        if not self.settings.on_s3:
            Path(url).parent.mkdir(parents=True, exist_ok=True)

    def write_table(self, sql: str, params: list[Any], path: str) -> tuple[int, int]:
        """Writes the rows of `sql` as one Parquet file; returns its rows and bytes."""
        url = self.url(path)
        self._folder_for(url)
        stats = self.con.execute(
            f"copy ({sql}) to '{url}' (format parquet, compression zstd, return_stats true)", params
        ).fetchone()
        assert stats is not None
        return int(stats[1]), int(stats[2])

    def _write_json(self, value: dict[str, Any], path: str) -> None:
        url = self.url(path)
        self._folder_for(url)
        self.con.register("manifest_row", pa.Table.from_pylist([{"manifest": orjson.dumps(value).decode()}]))
        try:  # the JSON text itself, one line: `read_text` and any JSON tool read it back
            self.con.execute(
                f"copy (select manifest from manifest_row) to '{url}'"
                " (format csv, header false, quote '', escape '', delimiter '\x1f')"
            )
        finally:
            self.con.unregister("manifest_row")

    def write_manifest(self, manifest: Manifest) -> None:
        """Writes the manifest that makes a point trusted, then the hint that finds it."""
        manifest.written_at = datetime.now(UTC).isoformat()
        self._write_json(manifest.to_dict(), f"{manifest.prefix}/{MANIFEST}")
        self._write_json(manifest.to_dict(), HINT)

    def glob(self, pattern: str) -> list[str]:
        """The files matching `pattern` under the archive."""
        return [
            row[0] for row in self.con.execute(f"select file from glob('{self.url(pattern)}')").fetchall()
        ]

    def _read(self, urls: list[str]) -> list[Manifest]:
        if not urls:
            return []
        rows = self.con.execute("select content from read_text(?)", [urls]).fetchall()
        return [Manifest(**orjson.loads(content)) for (content,) in rows]

    def manifests(self, day: str = "*") -> list[Manifest]:
        """Every trusted point (of `day` only, if given), oldest first."""
        urls = [u for kind in KINDS.values() for u in self.glob(f"{kind}/{day}/*/{MANIFEST}")]
        return sorted(self._read(urls), key=lambda m: (m.through_at, m.kind != "snapshot"))

    def newest(self) -> Manifest | None:
        """The newest trusted point, found from the hint's day on (or by a full search without a hint)."""
        # A pattern without a wildcard is not looked up on S3: the `*` makes glob list what exists.
        hint = self._read([u for u in self.glob(f"{HINT}*") if u.endswith(f"/{HINT}")])
        if not hint:
            found = self.manifests()
            return found[-1] if found else None
        day, today = hint[0].through_at.astimezone(UTC).date(), datetime.now(UTC).date()
        if (today - day).days > 400:
            found = self.manifests()
            return found[-1] if found else None
        found = []
        while day <= today:
            found += self.manifests(f"{day:%Y-%m-%d}")
            day += timedelta(days=1)
        return max(found, key=lambda m: m.through_at) if found else None

    def delete_point(self, prefix: str) -> None:
        """Deletes one point: its manifest first, so that a half-deleted point is never trusted."""
        if not self.settings.on_s3:
            (Path(self.url(prefix)) / MANIFEST).unlink(missing_ok=True)
            shutil.rmtree(self.url(prefix), ignore_errors=True)
            return
        files = self.glob(f"{prefix}/*")
        files.sort(key=lambda u: not u.endswith(f"/{MANIFEST}"))
        with httpx.Client(timeout=30) as client:
            for url in files:
                delete_object(client, self.settings.s3, url)
