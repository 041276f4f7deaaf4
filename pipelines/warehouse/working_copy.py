"""A private working copy of the warehouse file, published over RECOUP_DB by atomic rename.

Analysts open RECOUP_DB while syncs run. DuckDB allows one writer per file and a reader holding
the file makes a load fail, so a sync never writes RECOUP_DB in place: it copies it to a private
working folder beside it, loads and models there, then publishes by atomic rename. A reader
keeps the version it opened; the next reader gets the new one; nobody sees half a load. A crash
at any point leaves RECOUP_DB as the last complete sync left it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from pipelines.recoup.errors import ConfigError, RecoupError
from pipelines.recoup.settings import RAW_DATASET
from pipelines.warehouse.dlt_folder import publish_pipelines, start_work_pipelines
from pipelines.warehouse.paths import Paths

log = logging.getLogger("recoup")


READ_BITS = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_FICLONE = 0x40049409  # Linux ioctl: share the source's blocks, copy-on-write


def copy_file(source: Path, target: Path) -> None:
    """Copies `source` to `target`, as a clone of its blocks where the filesystem allows.

    A reflink clone (btrfs, XFS, bcachefs) is instant whatever the size; elsewhere the kernel
    copies the bytes.
    """
    with open(source, "rb") as src, open(target, "wb") as dst:
        try:
            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
            return
        except OSError:
            pass  # ext4, tmpfs, another filesystem: copy the bytes
    shutil.copyfile(source, target)


def wal(path: Path) -> Path:
    """The write-ahead log DuckDB keeps beside a database opened read-write."""
    return path.with_name(path.name + ".wal")


def published_file(paths: Paths) -> Path:
    """The file RECOUP_DB names: itself, or what its symlink points to (replaced, the link kept)."""
    return Path(os.path.realpath(paths.db))


_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (.*?) \(PID (\d+)\)")


def held_by(exc: BaseException) -> str | None:
    """`<program> PID <n>` when DuckDB refused a file because another process holds it read-write."""
    found = _LOCK_HOLDER.search(str(exc))
    return f"{Path(found.group(1)).name} PID {found.group(2)}" if found else None


def live_writer(path: Path) -> str | None:
    """The process that has `path` open read-write now (DuckDB's own file lock tells), or None."""
    try:
        duckdb.connect(str(path), read_only=True).close()
    except duckdb.Error as exc:
        return held_by(exc)
    return None


def _open_elsewhere(paths: Paths, holder: str, log_file: Path | None = None) -> ConfigError:
    """What to do about a DuckDB session that holds the warehouse read-write."""
    session = f"a running DuckDB session ({holder}), which holds {log_file.name}" if log_file else (
        f"a DuckDB session ({holder})")  # fmt: skip
    keep = " (do not remove the .wal)" if log_file else ""
    return ConfigError(
        f"{paths.db} is open read-write in {session}: close that session{keep}, and open the warehouse "
        "read-only from now on (`recoup shell`, or -readonly)"
    )


def check_publishable(paths: Paths) -> None:
    """Refuses to replace RECOUP_DB when a reader could not open the result.

    A DuckDB session that opened the file read-write and died leaves a `.wal` beside it; the
    next reader would replay it into the new file and fail.

    Raises:
        ConfigError: what is in the way, and what to do about it.
    """
    target = published_file(paths)
    for log_file in dict.fromkeys((wal(paths.db), wal(target))):
        if log_file.exists():
            holder = live_writer(target)
            if holder:
                raise _open_elsewhere(paths, holder, log_file)
            raise ConfigError(
                f"{log_file} is left by a DuckDB session that did not close: open the warehouse once read-write "
                f"with DuckDB (after `chmod u+w`) to replay it, or remove {log_file.name} if it is known to be stale"
            )
    if target.exists() and not target.is_file():
        raise ConfigError(f"RECOUP_DB {paths.db} is not a file")


def check_warehouse(paths: Paths, source: Path) -> None:
    """Refuses a DuckDB file at RECOUP_DB that holds tables but no recoup-runs warehouse.

    Raises:
        ConfigError: the file is another DuckDB database; it is left untouched.
        RecoupError: DuckDB cannot open it (not a DuckDB file); it is left untouched.
    """
    try:
        with duckdb.connect(str(source), read_only=True) as con:
            tables = set(con.execute(
                "select schema_name, table_name from duckdb_tables() where database_name = current_database()"
            ).fetchall())  # fmt: skip
    except duckdb.Error as exc:
        holder = held_by(exc)
        if holder:
            raise _open_elsewhere(paths, holder) from None
        raise RecoupError(f"the warehouse cannot be used: {str(exc).splitlines()[0][:300]}") from None
    if tables and (RAW_DATASET, "sync_log") not in tables:
        raise ConfigError(
            f"RECOUP_DB {paths.db} is a DuckDB database but not a recoup-runs warehouse (no {RAW_DATASET}.sync_log);"
            " it is left untouched: point RECOUP_DB at another file"
        )


# Room beyond the copy itself: the load writes its data, a write-ahead log and spill files. It
# grows with the warehouse (a sync's changes are a part of it) up to 64 MB, so that a sync with
# little to load still runs on a nearly full disk.
SPACE_MARGIN = 64 * 2**20
MIN_SPACE_MARGIN = 4 * 2**20


def space_margin(size: int) -> int:
    """The room a sync of a warehouse of `size` bytes asks for beyond its copy."""
    return min(SPACE_MARGIN, max(MIN_SPACE_MARGIN, size // 4))


def start_work_copy(paths: Paths) -> None:
    """Replaces any leftover working folder by a fresh copy of the published database.

    Raises:
        ConfigError: RECOUP_DB cannot be published safely (see `check_publishable`).
        RecoupError: the disk has no room for the copy.
    """
    check_publishable(paths)
    shutil.rmtree(paths.work, ignore_errors=True)
    paths.work.mkdir(parents=True)
    start_work_pipelines(paths)
    source = published_file(paths)
    if not source.exists():
        return
    check_warehouse(paths, source)
    margin = space_margin(source.stat().st_size)
    need = source.stat().st_size + margin
    free = shutil.disk_usage(paths.work).free
    if free < need:
        raise RecoupError(
            f"not enough free space in {paths.work}: the working copy needs {need / 2**20:,.0f} MB "
            f"(the warehouse and {margin / 2**20:,.0f} MB for the load), {free / 2**20:,.0f} MB are free"
        )
    copy_file(source, paths.work_db)


@contextmanager
def discard_work(paths: Paths) -> Iterator[None]:
    """Removes the working folder when the block ends, whatever the end.

    A failed sync leaves no copy taking disk space, and a lake sync no working file holding the
    sync's answers (payloads included). A published file warehouse took its folder with it.
    Enter it while holding the lock: the folder belongs to the lock's holder.
    """
    try:
        yield
    finally:
        shutil.rmtree(paths.work, ignore_errors=True)


def settle_access(published: Path, staged: Path) -> None:
    """Gives the new file the mode and group of the one it replaces (the umask would not).

    The first publish makes the file read-only by mode (the umask's read bits, no write bit):
    DuckDB's CLI, a SQL IDE or `duckdb.connect(path)`, which open read-write by default, are
    refused with `Permission denied` instead of locking every reader and the sync out; sessions
    opened read-only read it as before. An operator's later `chmod` is kept by every publish.
    """
    try:
        old = published.stat()
    except FileNotFoundError:
        os.chmod(staged, stat.S_IMODE(staged.stat().st_mode) & READ_BITS)
        return
    mode = stat.S_IMODE(old.st_mode)
    try:
        os.chown(staged, -1, old.st_gid)
    except PermissionError:  # not a member of that group: no other group gets its access
        log.warning("cannot keep group %d of %s; group permissions dropped", old.st_gid, published)
        mode &= ~stat.S_IRWXG
    os.chmod(staged, mode)


def publish(paths: Paths) -> None:
    """Moves the finished working database over RECOUP_DB in one atomic step.

    A symlinked RECOUP_DB is followed: the file it points to is replaced and the link stays.

    Raises:
        ConfigError: RECOUP_DB cannot be published safely (see `check_publishable`); it is left as it is.
    """
    check_publishable(paths)
    if wal(paths.work_db).exists():
        raise RecoupError(f"the working copy {paths.work_db} was not checkpointed; nothing published")
    target = published_file(paths)
    staged = paths.work_db
    if os.stat(paths.work).st_dev != os.stat(target.parent).st_dev:
        # A link into another file system: stage beside the target so that the rename is atomic.
        staged = target.with_name(f".{target.name}.publishing")
        shutil.copyfile(paths.work_db, staged)
    with open(staged, "rb+") as handle:
        os.fsync(handle.fileno())
    settle_access(target, staged)
    os.replace(staged, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    publish_pipelines(paths)
    shutil.rmtree(paths.work, ignore_errors=True)
