"""The warehouse as one DuckDB file: a working copy loaded and modelled, then published by rename."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import duckdb

from pipelines import warehouse
from pipelines.archive.outcome import ArchiveOutcome
from pipelines.archive.write import archive_after_publish
from pipelines.config import ArchiveSettings, FileSettings
from pipelines.models import ModelError, apply_models
from pipelines.recoup.errors import NoWarehouse
from pipelines.recoup.index import Index
from pipelines.recoup.options import FetchOptions
from pipelines.storage import MODELS_LOCK_WAIT, Published

log = logging.getLogger("recoup")


class FileStorage:
    """RECOUP_DB, replaced whole by each sync's working copy (see `warehouse.working_copy`)."""

    def __init__(self, settings: FileSettings) -> None:
        self.settings = settings
        self.paths = warehouse.Paths(settings.db)
        self.where = str(settings.db)
        self._pending: dict[str, int] = {}

    @contextmanager
    def lock(self) -> Iterator[None]:
        """The folder's sync lock; a failed sync leaves no working copy behind."""
        warehouse.prepare_folder(self.paths)
        with warehouse.sync_lock(self.paths, self.settings.lock_wait), warehouse.discard_work(self.paths):
            yield

    def begin_work(self) -> duckdb.DuckDBPyConnection:
        """A private copy of the published file, opened once for the whole sync."""
        warehouse.start_work_copy(self.paths)
        con = warehouse.connect(self.paths.work_db, warehouse.step_limits("load", self.settings.memory_mb))
        warehouse.create_sync_tables(con)
        return con

    def read_known(self, con: duckdb.DuckDBPyConnection, options: FetchOptions) -> Index:
        """Read from the working copy, which is the published file as this sync found it."""
        return warehouse.read_index(con, options)

    def tables_to_create(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        """The raw tables the file lacks (dlt creates every raw table at its first load)."""
        return warehouse.missing_raw_tables(con)

    def backlog(self, con: duckdb.DuckDBPyConnection, options: FetchOptions) -> dict[str, int]:
        """Counted in the working copy, which holds this sync's answers; the publish reports it too."""
        self._pending = warehouse.details_pending(con, options)
        return self._pending

    def publish(
        self,
        con: duckdb.DuckDBPyConnection,
        synced_at: datetime,
        options: FetchOptions,
        changed: bool,
        large_bytes: int,
    ) -> Published:
        """Models for the changed runs, a checkpoint, then the atomic rename over RECOUP_DB."""
        warehouse.use_limits(con, warehouse.step_limits("models", self.settings.memory_mb, large_bytes))
        log.info("building models")
        error = None
        try:
            apply_models(con, unless_unchanged=not changed, changed_since=synced_at)
        except ModelError as exc:
            error = str(exc)
        con.execute("checkpoint")
        con.close()
        log.info("publishing %s", self.paths.db)
        warehouse.publish(self.paths)
        return Published(error, self._pending)

    def needs_dlt_folder(self) -> bool:
        """Dlt's folder travels with the published file; a wiped one is rebuilt from the warehouse."""
        return not self.paths.work_pipelines_dir.exists()

    def archive(self, settings: ArchiveSettings) -> ArchiveOutcome | None:
        """The published file's changes since the archive's newest point, when RECOUP_ARCHIVE is set."""
        if not settings.target:
            return None
        return archive_after_publish(self.paths.db, settings)

    def close(self) -> None:
        """Nothing is held open besides the working copy's connection."""

    def _rebuild_limits(self, runs: int) -> dict[str, str | int]:
        return warehouse.step_limits("rebuild", self.settings.memory_mb, runs=runs)

    def rebuild_models(self) -> int:
        """Every model rebuilt in a working copy, published by rename like a sync."""
        if not self.paths.db.is_file():
            raise NoWarehouse(f"no warehouse at {self.paths.db}; run `recoup sync` (or `recoup demo`) first")
        wait = max(self.settings.lock_wait, MODELS_LOCK_WAIT)
        with warehouse.sync_lock(self.paths, wait), warehouse.discard_work(self.paths):
            warehouse.start_work_copy(self.paths)
            with warehouse.connect(
                self.paths.work_db, warehouse.step_limits("models", self.settings.memory_mb)
            ) as con:
                warehouse.create_sync_tables(con)
                # Sized for the stored runs, as the sync's own rebuilds are not: a sync keeps its
                # peak memory where cron expects it (see docs/warehouse.md#memory).
                names = apply_models(con, rebuild_limits=self._rebuild_limits)
                con.execute("checkpoint")
            warehouse.publish(self.paths)
        return len(names)
