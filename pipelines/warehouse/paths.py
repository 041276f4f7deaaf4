"""Where a sync writes: every file lives in the folder of the analysts' database."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipelines.recoup.errors import ConfigError


@dataclass(frozen=True)
class Paths:
    """Every file a sync writes, all in the folder of the analysts' database."""

    db: Path

    @property
    def folder(self) -> Path:
        """The folder of the analysts' database."""
        return self.db.parent

    @property
    def lock(self) -> Path:
        """The lock file that keeps a second sync from starting on the same database."""
        return self.folder / f".{self.db.name}.lock"

    @property
    def outcomes(self) -> Path:
        """The journal of how syncs ended, until the next sync records them (`raw.sync_outcomes`)."""
        return self.folder / f".{self.db.name}-outcomes.jsonl"

    @property
    def work(self) -> Path:
        """The working folder of a sync: the copy it loads into, published when it succeeds."""
        # The whole file name: `recoup.duckdb` and `recoup.db` in one folder never share it.
        return self.folder / f".{self.db.name}-work"

    @property
    def work_db(self) -> Path:
        """The working copy of the database."""
        return self.work / self.db.name  # same file name: same catalog name inside DuckDB

    @property
    def pipelines_dir(self) -> Path:
        """The folder dlt keeps for analysts: state, schema and trace of the last published sync."""
        return self.folder / f".{self.db.name}-dlt-pipelines"

    @property
    def work_pipelines_dir(self) -> Path:
        """The folder dlt works in during a sync; it replaces `pipelines_dir` when the warehouse is published."""
        return self.work / "dlt-pipelines"


def prepare_folder(paths: Paths) -> None:
    """Creates the database folder and checks that it is writable."""
    try:
        paths.folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the database folder {paths.folder}: {exc.strerror}") from None
    if not os.access(paths.folder, os.W_OK | os.X_OK):
        raise ConfigError(f"the database folder {paths.folder} is not writable")
