"""The warehouse as a DuckLake: an empty working file per sync, merged into one lake snapshot."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime

import duckdb

from pipelines import lake, warehouse
from pipelines.archive.outcome import ArchiveOutcome
from pipelines.config import ArchiveSettings, LakeSettings
from pipelines.models import load_models
from pipelines.recoup.index import Index
from pipelines.recoup.options import FetchOptions
from pipelines.storage import MODELS_LOCK_WAIT, Published

log = logging.getLogger("recoup")


class LakeStorage:
    """RECOUP_LAKE: a PostgreSQL catalog and Parquet files; one sync is one snapshot."""

    def __init__(self, settings: LakeSettings) -> None:
        self.settings = settings
        self.paths = warehouse.Paths(settings.db)
        self.where = f"the lake {lake.describe(settings.catalog)}"
        self._lock: lake.LakeLock | None = None
        self._reader: duckdb.DuckDBPyConnection | None = None

    @contextmanager
    def lock(self) -> Iterator[None]:
        """The working folder's lock, then the lake's writer lock, held until the commit."""
        warehouse.prepare_folder(self.paths)
        with ExitStack() as stack:
            stack.enter_context(warehouse.sync_lock(self.paths, self.settings.lock_wait))
            stack.enter_context(warehouse.discard_work(self.paths))
            self._lock = stack.enter_context(lake.lake_lock(self.settings))
            try:
                yield
            finally:
                self._lock = None

    def begin_work(self) -> duckdb.DuckDBPyConnection:
        """An empty working file: dlt loads only this sync's changes there."""
        shutil.rmtree(self.paths.work, ignore_errors=True)
        self.paths.work.mkdir(parents=True)
        con = warehouse.connect(self.paths.work_db, warehouse.step_limits("load", self.settings.memory_mb))
        warehouse.create_sync_tables(con)
        return con

    def read_known(self, con: duckdb.DuckDBPyConnection, options: FetchOptions) -> Index:
        """Read from the lake's current snapshot, on a connection of its own (closed by `close`)."""
        index, self._reader = lake.read_index(self.settings, options)
        if self._lock is not None:  # the lake's tables exist now: its catalog gets its index
            self._lock.index_catalog()
        return index

    def tables_to_create(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        """None: the lake creates its own raw tables."""
        return []

    def backlog(self, con: duckdb.DuckDBPyConnection, options: FetchOptions) -> dict[str, int]:
        """None yet: the lake counts it once this sync's changes are merged there (see the publish)."""
        return {}

    def publish(
        self,
        con: duckdb.DuckDBPyConnection,
        synced_at: datetime,
        options: FetchOptions,
        changed: bool,
        large_bytes: int,
    ) -> Published:
        """One lake transaction: the raw changes and the models for them, committed under the lock."""
        assert self._lock is not None, "publish runs inside lock()"
        log.info("publishing into %s", self.where)
        error, pending = lake.publish_to_lake(con, self.settings, synced_at, options, self._lock)
        con.close()
        return Published(error, pending)

    def needs_dlt_folder(self) -> bool:
        """Never: dlt's state lives in the lake, and each sync starts dlt afresh in an empty file."""
        return False

    def archive(self, settings: ArchiveSettings) -> ArchiveOutcome | None:
        """Never: a lake is backed up by its store and `pg_dump` (RECOUP_ARCHIVE with RECOUP_LAKE is refused)."""
        return None

    def close(self) -> None:
        """Closes the connection that read the lake's snapshot."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def rebuild_models(self) -> int:
        """Every model rebuilt in one lake snapshot, under the lake's lock."""
        settings = self.settings.waiting(MODELS_LOCK_WAIT)
        with lake.lake_lock(settings) as lock, duckdb.connect() as con:
            lake.attach(con, settings)
            lake.ensure_tables(con)
            with lake.snapshot(con, lock):
                lake.build_models(con, settings.memory_mb)
        return len(load_models())
