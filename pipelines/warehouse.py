"""The DuckDB warehouse file: the sync lock, a private working copy, and atomic publishing.

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
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import filelock
import pyarrow as pa

from pipelines.recoup.errors import ConfigError, LockHeld, RecoupError
from pipelines.recoup.fetch import AccountResult, FetchOptions, Index, Job, PageMark
from pipelines.recoup.settings import GROUP_OF_STATUS, RAW_DATASET, TERMINAL_GROUPS
from pipelines.recoup.tables import RAW_TABLES, ROOTS

log = logging.getLogger("recoup")

PLACEHOLDER = "recoup-runs placeholder: no rows of this kind loaded yet"


@dataclass(frozen=True)
class Paths:
    """Every file a sync writes, all in the folder of the analysts' database."""

    db: Path

    @property
    def folder(self) -> Path:
        return self.db.parent

    @property
    def lock(self) -> Path:
        return self.folder / f".{self.db.name}.lock"

    @property
    def work(self) -> Path:
        return self.folder / f".{self.db.stem}-work"

    @property
    def work_db(self) -> Path:
        return self.work / self.db.name  # same file name: same catalog name inside DuckDB

    @property
    def pipelines_dir(self) -> Path:
        return self.work / "dlt"


def prepare_folder(paths: Paths) -> None:
    """Creates the database folder and checks that it is writable."""
    try:
        paths.folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the database folder {paths.folder}: {exc.strerror}") from None
    if not os.access(paths.folder, os.W_OK | os.X_OK):
        raise ConfigError(f"the database folder {paths.folder} is not writable")


@contextmanager
def sync_lock(paths: Paths, wait_seconds: float) -> Iterator[None]:
    """Holds the one-sync-at-a-time lock; the kernel frees it if the holder dies."""
    lock = filelock.FileLock(paths.lock, timeout=max(0.0, wait_seconds))
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LockHeld(f"another sync is running on {paths.db} (lock {paths.lock}); not starting") from None
    try:
        yield
    finally:
        lock.release()


_FICLONE = 0x40049409  # Linux ioctl: share the source's blocks, copy-on-write


def copy_file(source: Path, target: Path) -> None:
    """Copies `source` to `target`: a reflink clone where the filesystem has them (btrfs, XFS,
    bcachefs: instant, whatever the size), else a kernel-side copy.
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
            raise ConfigError(
                f"{log_file} is left by a DuckDB session that did not close; open {paths.db} once "
                f"read-write with DuckDB to replay it, or remove {log_file.name} if it is known to be stale"
            )
    if target.exists() and not target.is_file():
        raise ConfigError(f"RECOUP_DB {paths.db} is not a file")


# Room beyond the copy itself: the load writes its data, a write-ahead log and spill files.
SPACE_MARGIN = 64 * 2**20


def start_work_copy(paths: Paths) -> None:
    """Replaces any leftover working folder by a fresh copy of the published database.

    Raises:
        ConfigError: RECOUP_DB cannot be published safely (see `check_publishable`).
        RecoupError: the disk has no room for the copy.
    """
    check_publishable(paths)
    shutil.rmtree(paths.work, ignore_errors=True)
    paths.work.mkdir(parents=True)
    source = published_file(paths)
    if not source.exists():
        return
    need = source.stat().st_size + SPACE_MARGIN
    free = shutil.disk_usage(paths.work).free
    if free < need:
        raise RecoupError(
            f"not enough free space in {paths.work}: the working copy needs {need / 2**20:,.0f} MB "
            f"(the warehouse and {SPACE_MARGIN // 2**20} MB for the load), {free / 2**20:,.0f} MB are free"
        )
    copy_file(source, paths.work_db)


@contextmanager
def discard_work_on_failure(paths: Paths) -> Iterator[None]:
    """Removes the working folder when the block fails, so a failed sync leaves no copy taking
    disk space. Enter it while holding the lock: the folder belongs to the lock's holder."""
    try:
        yield
    except BaseException:
        shutil.rmtree(paths.work, ignore_errors=True)
        raise


def _keep_access(published: Path, staged: Path) -> None:
    """Gives the new file the mode and group of the one it replaces (the umask would not)."""
    try:
        old = published.stat()
    except FileNotFoundError:
        return  # the first publish: the umask decides
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
    _keep_access(target, staged)
    with open(staged, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(staged, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    shutil.rmtree(paths.work, ignore_errors=True)


# DuckDB takes up to 80% of RAM by default. Both steps run within a small budget and spill
# beyond it: the load on one thread (a second one needs more memory than it saves time) within
# 128 MB (DuckDB 1.5 ran out of 64 MB merging the tags of a 95k-run first sync, and dlt retried
# the job), the model updates on every core within 128 MB (an update at two million runs needs
# more than 64 MB; a build that runs out is tried again with more, see pipelines/models.py).
LOAD_LIMITS = {"memory_limit": "128MB", "threads": 1}
MODEL_LIMITS = {"memory_limit": "128MB", "threads": os.cpu_count() or 1}


def memory_for(large_bytes: int) -> str:
    """DuckDB's budget for a load holding `large_bytes` of large JSON values.

    Rows of ordinary size spill to disk within 64 MB; large values do not (300 runs with 50 KB of
    metadata each failed the load at 64 MB, 300 with 200 KB failed at 128 MB and the checkpoint
    after at 64 MB), so each byte of them gets five of budget beyond the load's 128 MB, up to a quarter of the
    memory.
    """
    ceiling = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    budget = min(128 * 2**20 + 5 * large_bytes, ceiling)
    return f"{budget // 2**20}MB"


def use_limits(con: duckdb.DuckDBPyConnection, limits: dict[str, object]) -> None:
    """Moves an open connection to other limits (the load's budget, then the models')."""
    for name, value in limits.items():
        con.execute(f"set {name} = '{value}'")


def connect(path: Path, limits: dict[str, object] = LOAD_LIMITS) -> duckdb.DuckDBPyConnection:
    """A read-write connection with bounded memory: large work spills to disk instead."""
    return duckdb.connect(str(path), config={**limits, "preserve_insertion_order": False})


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    rows = con.execute(
        "select table_name, table_type from information_schema.tables where table_schema = ?", [RAW_DATASET]
    ).fetchall()
    return dict(rows)


def drop_placeholders(con: duckdb.DuckDBPyConnection) -> None:
    """Removes the empty stand-in views so that dlt can create the real tables."""
    for name, kind in _tables(con).items():
        if kind == "VIEW" and name in RAW_TABLES:
            con.execute(f'drop view "{RAW_DATASET}"."{name}"')


def add_placeholders(con: duckdb.DuckDBPyConnection) -> None:
    """Gives every raw table the models read an empty stand-in until dlt has loaded one."""
    con.execute(f"create schema if not exists {RAW_DATASET}")
    existing = _tables(con)
    for name, columns in RAW_TABLES.items():
        if name in existing:
            continue
        select = ", ".join(f'null::{kind} as "{column}"' for column, kind in columns.items())
        con.execute(f'create view "{RAW_DATASET}"."{name}" as select {select} where false')
        con.execute(f'comment on view "{RAW_DATASET}"."{name}" is \'{PLACEHOLDER}\'')
    con.execute(f"""
        create table if not exists {RAW_DATASET}.sync_log (
            synced_at timestamptz, account_id varchar, runs_seen integer, runs_new integer,
            runs_updated integer, runs_refreshed integer, runs_lost integer, possible_gap boolean,
            error varchar)
    """)
    for column, kind in (
        ("details_pending", "integer"),
        ("first_sync", "boolean"),
        ("runs_foreign", "integer"),
    ):
        con.execute(f"alter table {RAW_DATASET}.sync_log add column if not exists {column} {kind}")
    con.execute(
        f"create table if not exists {RAW_DATASET}.lost_runs (run_id varchar primary key, lost_at timestamptz)"
    )
    columns = con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = 'list_pages'",
        [RAW_DATASET],
    ).fetchall()
    if columns and ("runs_listed",) not in columns:  # an earlier layout of this cache: start it again
        con.execute(f"drop table {RAW_DATASET}.list_pages")
    con.execute(f"""
        create table if not exists {RAW_DATASET}.list_pages (
            account_id varchar primary key, digest varchar, runs_listed integer, in_flight_listed varchar[],
            stored_runs integer, options varchar, read_at timestamptz)
    """)


# The list shows runs of about the last 7 days; the index holds twice that, measured back from
# the newest stored run (not the wall clock), plus every run still in flight or awaiting details.
INDEX_HORIZON_DAYS = 14


def _stored_runs_sql(where: str = "true") -> str:
    """Each run's latest status and updatedAt, for the runs whose list answer matches `where`
    (filtering the list answers first keeps the join small on a large history)."""
    # The same rule as sql/intermediate/run_versions.sql (a later retrieve answer wins), read
    # from the raw tables so that a failed model build never misleads the next sync.
    return f"""
        select l.id, l.account_id,
               case when d.seen_at > l.seen_at then d.status else l.status end as status,
               epoch_us(case when d.seen_at > l.seen_at then d.updated_at else l.updated_at end) as updated_us,
               epoch_us(d.updated_at) as detailed_us,
               epoch_us(l.created_at) as created_us
        from (select * from {RAW_DATASET}.runs where {where}) l
        left join {RAW_DATASET}.run_details d on d.id = l.id
    """


def _backlog_sql() -> str:
    """Finished runs not yet detailed at their current updatedAt (`?` = the statuses that qualify).

    A list answer that carried attempts and error needs no details; a retrieve answer newer
    than the list answer is itself the details.
    """
    listed = "coalesce(list_contains(?, status), false) and not coalesce(has_attempts and has_error, false)"
    return f"""
        select id, account_id, status, created_us from ({_stored_runs_sql(listed)})
        where detailed_us is distinct from updated_us
          and id not in (select run_id from {RAW_DATASET}.lost_runs)
    """


def _detail_statuses(details: str) -> list[str]:
    groups = {"all": TERMINAL_GROUPS, "failed": {"failed"}, "none": set()}[details]
    return [status for status, group in GROUP_OF_STATUS.items() if group in groups]


def read_index(con: duckdb.DuckDBPyConnection, options: FetchOptions) -> Index:
    """What the warehouse holds: each recent run's latest status and updatedAt and its details
    mark, the runs in flight, the details backlog, and each account's last list page read
    under the same `options`.

    Needs `add_placeholders` to have run, so that a warehouse with no runs yet reads as empty.
    """
    index = Index()
    terminal = _detail_statuses("all")
    in_flight = f"not coalesce(list_contains({terminal!r}, status), false)"  # a finished run stays finished
    newest = con.execute(f"select max(created_at) from {RAW_DATASET}.runs").fetchone()[0]
    recent = in_flight
    if newest is not None:
        horizon = newest - timedelta(days=INDEX_HORIZON_DAYS)
        recent = f"created_at >= '{horizon.isoformat()}'::timestamptz or {in_flight}"
    latest = f"select id, account_id, status, updated_us, detailed_us from ({_stored_runs_sql(recent)})"
    # Read only if a page changed, maybe from a listing thread while this connection loads:
    # it gets a connection of its own, closed with the sync's.
    reader = con.cursor()
    index.read_latest = lambda: reader.execute(latest).to_arrow_table()
    flying = con.execute(f"""
        select account_id, list(id order by id) from ({_stored_runs_sql(in_flight)})
        where not coalesce(list_contains(?, status), false)
          and id not in (select run_id from {RAW_DATASET}.lost_runs)
        group by account_id
    """, [terminal]).fetchall()  # fmt: skip
    index.in_flight_ids = dict(flying)
    if options.details != "none":
        failed = set(_detail_statuses("failed"))
        for run_id, account, status, created_us in con.execute(
            _backlog_sql(), [_detail_statuses(options.details)]
        ).fetchall():
            job = Job(run_id, account, status in failed, created_us or 0, listed=True)
            index.backlog.setdefault(account, []).append(job)
    # A page is known only while the account's stored runs are the ones stored when it was
    # read (someone may have deleted rows to have them read again).
    stored = dict(
        con.execute(f"select account_id, count(*) from {RAW_DATASET}.runs group by account_id").fetchall()
    )
    index.accounts_stored = set(stored)
    pages = con.execute(f"""
        select account_id, digest, runs_listed, in_flight_listed, stored_runs from {RAW_DATASET}.list_pages
        where options = ?
    """, [str(options)]).fetchall()  # fmt: skip
    index.pages = {
        account: PageMark(digest, listed, in_flight)
        for account, digest, listed, in_flight, runs in pages
        if stored.get(account) == runs
    }
    return index


def details_pending(con: duckdb.DuckDBPyConnection, details: str) -> dict[str, int]:
    """Each account's details backlog as the warehouse now holds it."""
    if details == "none":
        return {}
    rows = con.execute(
        f"select account_id, count(*) from ({_backlog_sql()}) group by account_id",
        [_detail_statuses(details)],
    ).fetchall()
    return dict(rows)


def prune_answers(con: duckdb.DuckDBPyConnection, since: datetime) -> None:
    """Drops tags and attempts of answers that were replaced (their run's new answer had none).

    Only runs answered since `since` (this sync) can have such rows, so only they are looked at.
    """
    tables = _tables(con)
    for root in ROOTS.values():
        for child in ("tags", "attempts"):
            if tables.get(f"{root}__{child}") != "BASE TABLE":
                continue  # a stand-in: nothing of this kind was ever loaded
            con.execute(f"""
                delete from {RAW_DATASET}.{root}__{child} c
                where c.run_id in (select id from {RAW_DATASET}.{root} where seen_at >= ?)
                  and not exists (select 1 from {RAW_DATASET}.{root} r where r.observation_id = c.observation_id)
            """, [since])  # fmt: skip


def record_sync(
    con: duckdb.DuckDBPyConnection, synced_at: datetime, results: list[AccountResult], options: FetchOptions
) -> dict[str, int]:
    """Appends one sync_log row per account, remembers runs the API has forgotten, and each
    account's list page when it was read and stored without a problem.

    Returns each account's details backlog after this sync.
    """
    lost = pa.table({"run_id": pa.array([run_id for r in results for run_id in r.lost], pa.string())})
    if lost.num_rows:  # one statement: executemany costs milliseconds a row
        con.register("lost_rows", lost)
        con.execute(
            f"insert or ignore into {RAW_DATASET}.lost_runs select distinct run_id, ? from lost_rows",
            [synced_at],
        )
        con.unregister("lost_rows")
    pending = details_pending(con, options.details)
    log = pa.table({
        "synced_at": pa.array([synced_at] * len(results), pa.timestamp("us", tz="UTC")),
        "account_id": [r.account for r in results],
        "runs_seen": pa.array([r.runs_seen for r in results], pa.int32()),
        "runs_new": pa.array([r.new for r in results], pa.int32()),
        "runs_updated": pa.array([len(r.updated) for r in results], pa.int32()),
        "runs_refreshed": pa.array([r.refreshed for r in results], pa.int32()),
        "runs_lost": pa.array([len(r.lost) for r in results], pa.int32()),
        "possible_gap": pa.array([r.possible_gap for r in results], pa.bool_()),
        "error": pa.array([r.full_error() for r in results], pa.string()),
        "runs_foreign": pa.array([len(r.foreign) for r in results], pa.int32()),
        "details_pending": pa.array([pending.get(r.account, 0) for r in results], pa.int32()),
        "first_sync": pa.array([r.first_sync for r in results], pa.bool_()),
    })  # fmt: skip
    con.register("sync_log_rows", log)
    con.execute(f"insert into {RAW_DATASET}.sync_log by name select * from sync_log_rows")
    con.unregister("sync_log_rows")
    # A page read again to the same digest keeps its row; a page with a problem loses its row.
    rewritten = [r for r in results if not (r.ok and r.unchanged_page)]
    marks = [r.page if r.ok else None for r in rewritten]
    pages = pa.table({
        "account_id": pa.array([r.account for r in rewritten], pa.string()),
        "digest": [m.digest if m else None for m in marks],
        "runs_listed": pa.array([m.listed if m else None for m in marks], pa.int32()),
        "in_flight_listed": pa.array([m.in_flight if m else None for m in marks], pa.list_(pa.string())),
    })  # fmt: skip
    con.register("list_page_rows", pages)
    con.execute(
        f"delete from {RAW_DATASET}.list_pages where account_id in (select account_id from list_page_rows)"
    )
    con.execute(f"""
        insert into {RAW_DATASET}.list_pages
        select p.account_id, p.digest, p.runs_listed, p.in_flight_listed, count(r.id), ?, ?
        from list_page_rows p left join {RAW_DATASET}.runs r on r.account_id = p.account_id
        where p.digest is not null
        group by all
    """, [str(options), synced_at])  # fmt: skip
    con.unregister("list_page_rows")
    owners = sorted({owner for r in results for owner in r.foreign.values()})
    if owners:  # another account listed their runs: read their own pages in full next time
        con.execute(f"delete from {RAW_DATASET}.list_pages where list_contains(?, account_id)", [owners])
    return pending
