"""`recoup restore`: a warehouse rebuilt from the archive, one snapshot and the change sets after it.

The raw tables (dlt's state included) are replayed point by point into a new file in the target's
folder; the SQL models are then built from them, as `make models` would, and the file replaces
the target by atomic rename. A reader of the old file keeps it; nobody sees half a restore.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from pipelines import warehouse
from pipelines.archive.store import Manifest, Store
from pipelines.config.archive import ArchiveSettings
from pipelines.models import apply_models
from pipelines.recoup.errors import RecoupError
from pipelines.recoup.settings import RAW_DATASET


class RestoreError(RecoupError):
    """The archive cannot give the asked-for warehouse."""


class TargetExists(RestoreError):
    """The warehouse to rebuild exists and replacing it was not asked for."""


@dataclass
class Restored:
    """What a restore rebuilt."""

    path: Path
    point: Manifest
    chain: list[Manifest]
    seconds: float


def chain_to(points: list[Manifest], at: datetime | None) -> list[Manifest]:
    """The snapshot and the change sets, oldest first, that give the state of the newest sync at or before `at`.

    Raises:
        RestoreError: no point that early, or a gap (a change set whose point before is missing).
    """
    candidates = [m for m in points if at is None or m.through_at <= at]
    if not candidates:
        when = f" at or before {at.isoformat()}" if at else ""
        raise RestoreError(f"the archive holds no sync{when}")
    by_through: dict[datetime, list[Manifest]] = {}
    for point in points:
        by_through.setdefault(point.through_at, []).append(point)
    newest = max(candidates, key=lambda m: (m.through_at, m.kind == "snapshot"))
    chain = [newest]
    while chain[-1].kind != "snapshot":
        since = chain[-1].since
        before = by_through.get(datetime.fromisoformat(since)) if since else None
        if not before:
            raise RestoreError(
                f"the archive has a gap: {chain[-1].prefix} follows a sync of {since} that no point holds"
            )
        chain.append(max(before, key=lambda m: m.kind == "snapshot"))
    return chain[::-1]


def _ensure_table(con: duckdb.DuckDBPyConnection, name: str, ddl: str) -> None:
    """Creates the table from its archived statement, or adds the columns a later schema gave it."""
    exists = con.execute(
        "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?", [RAW_DATASET, name]
    ).fetchone()
    if not (exists and exists[0]):
        con.execute(ddl)
        return
    con.execute("create schema if not exists restore_scratch")
    con.execute(ddl.replace(f"CREATE TABLE {RAW_DATASET}.", "CREATE OR REPLACE TABLE restore_scratch.", 1))
    missing = con.execute("""
        select column_name, data_type from information_schema.columns n
        where table_schema = 'restore_scratch' and table_name = $1
          and column_name not in (select column_name from information_schema.columns
                                  where table_schema = $2 and table_name = $1)
        order by ordinal_position
    """, [name, RAW_DATASET]).fetchall()  # fmt: skip
    for column, kind in missing:
        con.execute(f'alter table {RAW_DATASET}.{name} add column "{column}" {kind}')
    con.execute("drop schema restore_scratch cascade")


def replay(con: duckdb.DuckDBPyConnection, store: Store, point: Manifest) -> None:
    """Applies one point's tables to the raw tables on `con`, in one transaction."""
    con.execute("begin transaction")
    for table in point.tables:
        name, file = table["name"], f"read_parquet('{store.url(point.prefix, table['name'] + '.parquet')}')"
        _ensure_table(con, name, table["ddl"])
        target = f"{RAW_DATASET}.{name}"
        mode = table["mode"]
        if mode == "replace":
            con.execute(f"delete from {target}")
        elif mode == "runs":
            con.execute(f"delete from {target} where id in (select id from {file})")
        elif mode == "children":
            runs = f"read_parquet('{store.url(point.prefix, table['of'] + '.parquet')}')"
            con.execute(f"delete from {target} where run_id in (select id from {runs})")
        if mode == "append":
            match = " and ".join(f'f."{k}" = t."{k}"' for k in table["key"])
            con.execute(f"insert into {target} by name select * from {file} f"
                        f" where not exists (select 1 from {target} t where {match})")  # fmt: skip
        else:
            con.execute(f"insert into {target} by name select * from {file}")
    con.execute("commit")


def _staging(target: Path) -> Path:
    """Where the restore builds: a folder beside the target, the same file name (the same catalog name)."""
    return target.parent / f".{target.stem}-restore" / target.name


def restore(
    settings: ArchiveSettings, target: Path, at: datetime | None = None, force: bool = False
) -> Restored:
    """Rebuilds the warehouse file `target` from the archive, as of the newest sync at or before `at`.

    Raises:
        TargetExists: `target` exists and `force` is not given.
        RestoreError: the archive cannot give that state.
        LockHeld: a sync is running on `target`.
    """
    started = time.monotonic()
    paths = warehouse.Paths(target)
    if target.exists() and not force:
        raise TargetExists(f"{target} exists; give --force to replace it with the archive's copy")
    warehouse.prepare_folder(paths)
    with warehouse.sync_lock(paths, 0), duckdb.connect() as reader:
        store = Store(reader, settings)
        chain = chain_to(store.manifests(), at)
        staged = _staging(target)
        shutil.rmtree(staged.parent, ignore_errors=True)
        staged.parent.mkdir(parents=True)
        try:
            with warehouse.connect(staged, warehouse.step_limits("restore")) as con:
                if settings.on_s3:
                    Store(con, settings)  # the same S3 access on the connection that reads the files
                con.execute(f"create schema if not exists {RAW_DATASET}")
                for point in chain:
                    replay(con, store, point)
                warehouse.date_child_rows(con, undated_too=True)  # points archived before the column
                apply_models(con)
                con.execute("checkpoint")
            wal = target.with_name(target.name + ".wal")
            wal.unlink(missing_ok=True)  # a dead session's log of the replaced file would break the new one
            warehouse.settle_access(target, staged)
            staged.replace(target)
            # dlt's local state described the old file: the next sync restores it from this one.
            shutil.rmtree(paths.pipelines_dir, ignore_errors=True)
        finally:
            shutil.rmtree(staged.parent, ignore_errors=True)
    return Restored(target, chain[-1], chain, time.monotonic() - started)
