"""`recoup status`: how fresh the published warehouse is, per account, read without a lock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from pipelines.config import StorageSettings
from pipelines.config.values import age_text, iso, parse_duration
from pipelines.lake import first_line
from pipelines.models import models_behind
from pipelines.query import scalar
from pipelines.recoup.errors import ConfigError, NoWarehouse, RecoupError
from pipelines.recoup.settings import RAW_DATASET
from pipelines.storage.reader import describe, open_reader, size_bytes

__all__ = ["Status", "StatusError", "age_text", "iso", "parse_duration", "read_status"]


class StatusError(ConfigError):
    """The warehouse holds no sync log, or cannot be read: there is nothing to judge (exit 2)."""


@dataclass(frozen=True)
class AccountStatus:
    """One account as the sync log tells it."""

    account_id: str
    last_synced_at: datetime
    last_good_at: datetime | None  # when the last sync without an error finished; None: never
    error: str | None  # of the last sync; None when it synced
    gaps: int  # syncs that flagged a possible gap
    last_gap_at: datetime | None
    details_pending: int | None  # None when the warehouse does not record it


@dataclass(frozen=True)
class Status:
    """The published warehouse at one moment."""

    where: str  # the file's path, or the lake (no password)
    checked_at: datetime
    size_bytes: int | None  # None for a lake
    run_count: int | None
    accounts: list[AccountStatus]  # the ones judged: RECOUP_ACCOUNTS, or every one synced when unset
    models_behind: datetime | None = None  # the newest answer the models cover, when raw holds newer
    retired: list[AccountStatus] = field(default_factory=list)  # synced once, no longer configured
    never_synced: list[str] = field(default_factory=list)  # configured, without a sync_log row yet

    def stale(self, max_age: timedelta) -> list[AccountStatus]:
        """Accounts whose last good sync is older than `max_age`, or that never synced well."""
        oldest = self.checked_at - max_age
        return [a for a in self.accounts if a.last_good_at is None or a.last_good_at < oldest]

    def verdict(self, max_age: timedelta | None) -> str:
        """One word for the whole warehouse: ok, failed, stale, or empty (no sync recorded)."""
        if not self.accounts and not self.never_synced:
            return "empty"
        if max_age is not None and (self.stale(max_age) or self.never_synced):
            return "stale"
        return "failed" if self.failed else "ok"

    @property
    def failed(self) -> list[AccountStatus]:
        """The accounts whose latest sync failed."""
        return [a for a in self.accounts if a.error is not None]

    def lines(self, max_age: timedelta | None, problems_only: bool = False) -> list[str]:
        """What `recoup status` prints: the warehouse, one line per account, a closing count."""
        runs = "no analytics.runs" if self.run_count is None else f"{self.run_count:,} runs"
        size = [] if self.size_bytes is None else [f"{self.size_bytes / 1e6:.1f} MB"]
        out = [" · ".join([f"warehouse: {self.where}", *size, runs])]
        if self.models_behind is not None:
            out.append(f"models: BEHIND: analytics covers answers up to {iso(self.models_behind)} only "
                       "(the last model build failed); the next sync or `recoup models` catches up")  # fmt: skip
        stale = {a.account_id for a in self.stale(max_age)} if max_age is not None else set()
        for a in self.accounts:
            if problems_only and a.error is None and a.account_id not in stale:
                continue
            good = "never" if a.last_good_at is None else (
                f"{iso(a.last_good_at)} ({age_text(self.checked_at - a.last_good_at)} ago)")  # fmt: skip
            state = "ok" if a.error is None else f"FAILED at {iso(a.last_synced_at)}: {a.error}"
            parts = [f"account {a.account_id}: {state}", f"last good sync {good}"]
            if max_age is not None and a.account_id in stale:
                parts.append(f"STALE (older than {age_text(max_age)})")
            if a.gaps:
                parts.append(f"{a.gaps} possible gap(s), last {iso(a.last_gap_at)}")
            if a.details_pending:
                parts.append(f"{a.details_pending:,} details pending")
            out.append(" · ".join(parts))
        overdue = f" · STALE (older than {age_text(max_age)})" if max_age is not None else ""
        for account in self.never_synced:
            out.append(f"account {account}: never synced (it is in RECOUP_ACCOUNTS){overdue}")
        if self.retired and not problems_only:
            out.append(f"retired: {len(self.retired)} account(s) in the sync log but not in RECOUP_ACCOUNTS, "
                       f"not judged: {', '.join(a.account_id for a in self.retired[:5])}"
                       f"{' ...' if len(self.retired) > 5 else ''}")  # fmt: skip
        judged = len(self.accounts) + len(self.never_synced)
        summary = f"status: {judged} accounts, {len(self.failed)} failed"
        if max_age is not None:
            summary += f", {len(stale) + len(self.never_synced)} without a good sync in {age_text(max_age)}"
        out.append(summary if judged else "status: no sync recorded yet")
        return out

    def to_dict(self, max_age: timedelta | None) -> dict[str, Any]:
        """What `recoup status --json` prints: the warehouse and every account, stale ones marked."""
        stale = {a.account_id for a in self.stale(max_age)} if max_age is not None else set()
        return {
            "warehouse": self.where,
            "checked_at": iso(self.checked_at),
            "size_bytes": self.size_bytes,
            "run_count": self.run_count,
            "models_behind_since": iso(self.models_behind),
            "max_age_seconds": None if max_age is None else int(max_age.total_seconds()),
            "accounts": [
                {
                    "account_id": a.account_id,
                    "last_synced_at": iso(a.last_synced_at),
                    "last_good_sync_at": iso(a.last_good_at),
                    "age_seconds": None if a.last_good_at is None
                    else int((self.checked_at - a.last_good_at).total_seconds()),
                    "error": a.error,
                    "stale": a.account_id in stale,
                    "gaps": a.gaps,
                    "last_gap_at": iso(a.last_gap_at),
                    "details_pending": a.details_pending,
                }
                for a in self.accounts
            ],
            "failed": [a.account_id for a in self.failed],
            "stale": sorted(stale | ({*self.never_synced} if max_age is not None else set())),
            "never_synced": self.never_synced,
            "retired": [a.account_id for a in self.retired],
            "verdict": self.verdict(max_age),
        }  # fmt: skip


def _sync_log_table(con: duckdb.DuckDBPyConnection) -> tuple[str, set[str]]:
    """The sync log the sync writes (or the analysts' copy of an older warehouse), and its columns."""
    for schema in (RAW_DATASET, "analytics"):
        columns = {
            row[0]
            for row in con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = 'sync_log'",
                [schema],
            ).fetchall()
        }
        if columns:
            return f"{schema}.sync_log", columns
    raise StatusError("it holds no sync_log: not a recoup-runs warehouse, or never synced")


def _accounts(con: duckdb.DuckDBPyConnection) -> list[AccountStatus]:
    table, columns = _sync_log_table(con)
    # details_pending arrives with the details backlog; older warehouses do not have it.
    pending = "details_pending" if "details_pending" in columns else "null::integer"
    # Fresh as of when the sync finished (just before it published), not when it started.
    finished = "coalesce(finished_at, synced_at)" if "finished_at" in columns else "synced_at"
    rows = con.execute(f"""
        with latest as (
            select account_id, synced_at, error, {pending} as details_pending
            from {table}
            qualify row_number() over (partition by account_id order by synced_at desc) = 1
        ),
        history as (
            select account_id,
                   max({finished}) filter (where error is null) as last_good_at,
                   count(*) filter (where possible_gap) as gaps,
                   max(synced_at) filter (where possible_gap) as last_gap_at
            from {table}
            group by account_id
        )
        select l.account_id, l.synced_at, h.last_good_at, l.error, h.gaps, h.last_gap_at, l.details_pending
        from latest l join history h using (account_id)
        order by l.account_id
    """).fetchall()  # fmt: skip
    return [AccountStatus(*row) for row in rows]


def read_status(
    settings: StorageSettings, now: datetime | None = None, configured: Sequence[str] = ()
) -> Status:
    """Reads the published warehouse (a file or a lake) read-only.

    Args:
        configured: RECOUP_ACCOUNTS: only these are judged; others in the log are retired.

    Raises:
        NoWarehouse: there is none yet.
        StatusError: it holds no sync log, or cannot be read.
    """
    where = describe(settings)
    try:
        with open_reader(settings) as con:
            accounts = _accounts(con)
            behind = models_behind(con)
            try:
                run_count = scalar(con.execute("select count(*) from analytics.runs"))
            except duckdb.CatalogException:
                run_count = None
    except NoWarehouse:
        raise
    except StatusError as exc:
        raise StatusError(f"{where}: {exc}") from None
    except RecoupError as exc:
        raise StatusError(str(exc)) from None
    except duckdb.Error as exc:
        raise StatusError(f"{where} cannot be read: {first_line(exc)}") from None
    judged, retired, never = accounts, [], []
    if configured:
        judged = [a for a in accounts if a.account_id in configured]
        retired = [a for a in accounts if a.account_id not in configured]
        never = [account for account in configured if account not in {a.account_id for a in accounts}]
    return Status(
        where, now or datetime.now(UTC), size_bytes(settings), run_count, judged, behind, retired, never
    )
