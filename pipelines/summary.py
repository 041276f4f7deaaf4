"""What one sync did, computed once at its end from the account logs: the closing lines and the exit code.

`Progress` logs how far the lists are while they run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from pipelines import exit_codes
from pipelines.archive.outcome import ArchiveOutcome
from pipelines.recoup.errors import ErrorKind
from pipelines.recoup.outcomes import AccountListing, AccountLog, Followups

log = logging.getLogger("recoup")
SHARED_FAILURE = 3  # more accounts failing the same way than this make one line


@dataclass(frozen=True)
class SyncSummary:
    """What one sync did, for the closing lines, the exit code and tests."""

    results: list[AccountLog] = field(default_factory=list)
    accounts: int = 0  # configured
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    model_error: str | None = None
    followups: Followups = field(default_factory=Followups)
    details_pending: int = 0  # the backlog left in the warehouse after this sync
    stopped: bool = False  # a signal ended the sync early
    lists_seconds: float = 0.0  # what listing every account costs at the configured rate
    lists_done: float = 0.0  # seconds into the sync when the last list answer was read
    budget_seconds: int = 0
    max_rpm: int = 0
    archive: ArchiveOutcome | None = None  # the archive step after the publish, with RECOUP_ARCHIVE
    synced_at: datetime | None = None  # when the sync started: its key in sync_log

    @property
    def failed(self) -> list[AccountLog]:
        """The accounts with an error or a rejected run."""
        return [r for r in self.results if not r.ok]

    @property
    def unlisted(self) -> int:
        """How many accounts the sync did not get to list."""
        return self.accounts - len(self.results)

    @property
    def nothing_listed(self) -> bool:
        """Every account's list call failed: nothing could be synced."""
        return bool(self.results) and all(r.list_failed for r in self.results)

    @property
    def unreachable(self) -> bool:
        """Every account's list call failed in transport: the base URL is wrong or its host is down."""
        return self.nothing_listed and all(r.error_kind is ErrorKind.TRANSPORT for r in self.results)

    @property
    def exit_code(self) -> int:
        """PARTIAL when an account failed or went unlisted, the models or the archive failed; else OK."""
        archive_failed = bool(self.archive and self.archive.error)
        failed = self.failed or self.model_error or self.unlisted or archive_failed
        return exit_codes.PARTIAL if failed else exit_codes.OK

    def lines(self) -> list[str]:
        """The summary to log: each problem on its own line, then one line of totals."""
        return [line for _, line in self.entries()]

    def entries(self) -> list[tuple[int, str]]:
        """The lines of `lines()` with the level each is logged at: a failure is an ERROR."""
        return [(logging.ERROR, line) for line in self._failure_lines()] + self._notes()

    def fields(self) -> dict[str, int | float]:
        """The totals as numbers, for the JSON log line and the metrics file."""
        return {
            "accounts": self.accounts, "accounts_failed": len(self.failed), "accounts_unlisted": self.unlisted,
            "runs_new": sum(r.new for r in self.results),
            "runs_updated": sum(len(r.updated) for r in self.results),
            "runs_refreshed": sum(r.refreshed for r in self.results),
            "runs_lost": sum(len(r.lost) for r in self.results),
            "requests": self.requests, "retries": self.retries,
            "details_deferred": self.followups.details_deferred, "details_pending": self.details_pending,
            "seconds": round(self.seconds, 3), "exit_code": self.exit_code,
        }  # fmt: skip

    def _failure_lines(self) -> list[str]:
        """One line per failed account; a cause shared by more than three accounts is one line."""
        by_cause: dict[str, list[AccountLog]] = {}
        for r in self.failed:  # the cause: the error without the account's own id
            cause = (
                (r.summary_error() or "")
                .replace(f"account {r.account}: ", "")
                .replace(r.account, "<account>")
            )
            by_cause.setdefault(cause, []).append(r)
        out = []
        for cause, logs in by_cause.items():
            if len(logs) > SHARED_FAILURE:
                out.append(
                    f"{len(logs)} accounts FAILED: {cause} (e.g. {', '.join(r.account for r in logs[:3])})"
                )
            else:
                out += [f"account {r.account}: FAILED: {r.summary_error()}" for r in logs]
        if self.model_error:
            out.append(f"models: FAILED: {self.model_error}")
        if self.archive and self.archive.error:
            out.append(self.archive.line())
        return out

    def _notes(self) -> list[tuple[int, str]]:
        """Everything else worth a line, each at its level, then the totals."""
        warning, info = logging.WARNING, logging.INFO
        out = [
            (
                warning,
                f"account {r.account}: possible gap: the list was full and reached back to no stored run",
            )
            for r in self.results
            if r.possible_gap
        ]
        out += [
            (warning, f"account {r.account}: {len(r.foreign)} listed run(s) belong to another account and were"
                      f" left with it (e.g. {next(iter(r.foreign))} of {next(iter(r.foreign.values()))})")
            for r in self.results
            if r.foreign
        ]  # fmt: skip
        out += [
            (info, f"account {r.account}: first sync: history before {r.oldest_listed or 'its oldest listed run'}"
                   " is not available from the API")
            for r in self.results
            if r.first_sync
        ]  # fmt: skip
        if self.archive and not self.archive.error:
            out.append((info, self.archive.line()))
        if self.stopped:
            left = self.followups.details_deferred + self.followups.refreshes_deferred
            out.append((warning, f"sync: stopped early by a signal: {self.unlisted} account(s) not listed, "
                                 f"{left} run(s) left for the next sync"))  # fmt: skip
        if self.budget_seconds and self.lists_seconds > self.budget_seconds:
            need = -(-len(self.results) * 60 // self.budget_seconds)  # requests/min that fit the lists
            out.append((warning,
                f"sync: listing {self.accounts} accounts takes {self.lists_seconds:.0f} s at RECOUP_MAX_RPM="
                f"{self.max_rpm}, more than RECOUP_SYNC_SECONDS={self.budget_seconds}: details wait; set "
                f"RECOUP_SYNC_SECONDS to at least {self.lists_seconds * 1.2:.0f} (and the cron interval above it)"
                f" or RECOUP_MAX_RPM to at least {need}"))  # fmt: skip
        n = self.fields()
        out.append((info,
            f"sync: {len(self.results) - len(self.failed)}/{self.accounts} accounts ok, {len(self.failed)} failed · "
            f"runs {n['runs_new']} new, {n['runs_updated']} updated, {n['runs_refreshed']} refreshed, "
            f"{n['runs_lost']} unknown to the API · {self.requests} requests, {self.retries} retries, "
            f"{sum(r.unchanged_page for r in self.results)} pages unchanged · "
            f"details {n['details_deferred']} deferred, {self.details_pending} pending · {self.seconds:.1f} s"))  # fmt: skip
        return out


class Progress:
    """Logs how far the sync is, at most every `every` seconds, and at the end."""

    def __init__(self, total: int, every: float = 2.0) -> None:
        self.total, self.every = total, every
        self.done = self.new = self.updated = self.failed = 0
        self._last = time.monotonic()

    def __call__(self, listing: AccountListing) -> None:
        """Counts one more account listed, and logs the totals when it is time."""
        self.done += 1
        verdict = listing.verdict
        self.new += verdict.new if verdict else 0
        self.updated += len(verdict.updated) if verdict else 0
        self.failed += listing.error is not None or bool(verdict and verdict.problems)
        now = time.monotonic()
        if now - self._last >= self.every or self.done == self.total:
            self._last = now
            log.info("accounts %d/%d · runs %d new, %d updated · %d failed",
                     self.done, self.total, self.new, self.updated, self.failed)  # fmt: skip
