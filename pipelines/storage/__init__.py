"""Where a sync's work is kept and published: one interface, a DuckDB file or a DuckLake behind it.

Both load a sync's changes with dlt into a private DuckDB working file beside RECOUP_DB. The
file warehouse starts that file as a copy of the published one and publishes it by atomic
rename; the lake starts it empty and publishes by merging it into one lake snapshot.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import duckdb

from pipelines.archive.outcome import ArchiveOutcome
from pipelines.config import ArchiveSettings, FileSettings, LakeSettings, StorageSettings
from pipelines.recoup.index import Index
from pipelines.recoup.options import FetchOptions
from pipelines.warehouse import Paths


@dataclass(frozen=True)
class Published:
    """What a publish made known: a model build that failed (the raw changes stand) and the backlog."""

    model_error: str | None
    details_pending: dict[str, int]  # by account: finished runs still waiting for their details


class Storage(Protocol):
    """The steps a sync takes on its warehouse, in this order: lock, begin, read, backlog, publish, archive."""

    paths: Paths  # the working folder and dlt's pipelines folder, beside RECOUP_DB
    where: str  # the warehouse, for messages (no password)

    def lock(self) -> AbstractContextManager[None]:
        """Holds the warehouse for this sync alone; raises LockHeld; cleans up the work if the block fails."""

    def begin_work(self) -> duckdb.DuckDBPyConnection:
        """Opens the working file dlt loads into, with the sync's own tables in it."""

    def read_known(self, con: duckdb.DuckDBPyConnection, options: FetchOptions) -> Index:
        """What the warehouse holds that this sync starts from."""

    def tables_to_create(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        """Raw tables dlt must create, empty if no rows come."""

    def backlog(self, con: duckdb.DuckDBPyConnection, options: FetchOptions) -> dict[str, int]:
        """By account, the finished runs still waiting for their details, for this sync's sync_log rows."""

    def publish(
        self,
        con: duckdb.DuckDBPyConnection,
        synced_at: datetime,
        options: FetchOptions,
        changed: bool,
        large_bytes: int,
    ) -> Published:
        """Builds the models and makes the work the warehouse readers see, all at once.

        Args:
            changed: whether any run was loaded (else the models need no update).
            large_bytes: how much large JSON the load held, for the model build's memory.
        """

    def needs_dlt_folder(self) -> bool:
        """Whether dlt's folder beside the warehouse is missing (wiped) and must be restored for its tools."""

    def archive(self, settings: ArchiveSettings) -> ArchiveOutcome | None:
        """Copies what the publish changed into RECOUP_ARCHIVE, still under the lock; None: not archived."""

    def close(self) -> None:
        """Releases what reading the warehouse held open."""

    def rebuild_models(self) -> int:
        """`recoup models`: every model built afresh and published like a sync, under the lock; their count.

        Raises:
            NoWarehouse: nothing to build on. ModelError: a model failed (the previous ones stand).
            LockHeld: a sync kept the lock past the wait.
        """


MODELS_LOCK_WAIT = 60.0  # seconds `recoup models` waits for a running sync, or RECOUP_LOCK_WAIT if longer


def open_storage(settings: StorageSettings) -> Storage:
    """The storage the settings name."""
    from pipelines.storage.file import FileStorage
    from pipelines.storage.lake import LakeStorage

    if isinstance(settings, LakeSettings):
        return LakeStorage(settings)
    assert isinstance(settings, FileSettings)
    return FileStorage(settings)


__all__ = ["MODELS_LOCK_WAIT", "Published", "Storage", "open_storage"]
